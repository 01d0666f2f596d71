"""Build small SpreadsheetBench-format suites with openpyxl for the task/checker tests."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl


def write_book(path: Path, sheets: dict[str, dict[str, object]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, cells in sheets.items():
        ws = wb.create_sheet(name)
        for coord, value in cells.items():
            ws[coord] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def make_suite(root: Path, *, naming: str = "original", cases: int = 3) -> Path:
    """Three tasks: 'a-1' (sum into Sheet1!C2:C3), 7 (an int id; upper-case in 'Out'!A1)
    and 'b-2' (two ranges on two sheets)."""
    rows = [
        {
            "id": "a-1",
            "instruction": "Put A+B into column C.",
            "spreadsheet_path": "spreadsheet/a-1",
            "instruction_type": "Cell-Level Manipulation",
            "answer_position": "C2:C3",
        },
        {
            "id": 7,
            "instruction": "Upper-case the name into Out!A1.",
            "spreadsheet_path": "spreadsheet/7",
            "instruction_type": "Sheet-Level Manipulation",
            "answer_position": "'Out'!A1",
            "answer_sheet": "Out",
        },
        {
            "id": "b-2",
            "instruction": "Copy.",
            "spreadsheet_path": "spreadsheet/b-2",
            "instruction_type": "Cell-Level Manipulation",
            "answer_position": "'S1'!A1:B2,'S2'!A1",
        },
    ]
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(rows))
    for k in range(1, cases + 1):
        a, b = 10 * k, k
        books = {
            "a-1": (
                {"Sheet1": {"A1": "a", "B1": "b", "C1": "sum", "A2": a, "B2": b, "A3": 2, "B3": 3}},
                {
                    "Sheet1": {
                        "A1": "a",
                        "B1": "b",
                        "C1": "sum",
                        "A2": a,
                        "B2": b,
                        "A3": 2,
                        "B3": 3,
                        "C2": a + b,
                        "C3": 5,
                    }
                },
            ),
            "7": ({"In": {"A1": f"name{k}"}, "Out": {}}, {"In": {"A1": f"name{k}"}, "Out": {"A1": f"NAME{k}"}}),
            "b-2": (
                {"S1": {"A1": 1}, "S2": {}},
                {"S1": {"A1": 1, "B1": "x", "A2": 2.5, "B2": None}, "S2": {"A1": "done"}},
            ),
        }
        for tid, (inp, ans) in books.items():
            folder = root / "spreadsheet" / tid
            if naming == "original":
                write_book(folder / f"{k}_{tid}_input.xlsx", inp)
                write_book(folder / f"{k}_{tid}_answer.xlsx", ans)
            else:
                write_book(folder / f"{k}_{tid}_init.xlsx", inp)
                write_book(folder / f"{k}_{tid}_golden.xlsx", ans)
    return root
