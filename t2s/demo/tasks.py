"""The demo's task suite: small spreadsheet tasks generated with openpyxl.

Five task families, each with a characteristic mistake that an agent makes unless its
skill carries the matching lesson (see :mod:`t2s.demo.simulation`). The suite is written
in SpreadsheetBench's layout (``dataset.json``, ``splits.json``,
``spreadsheet/<id>/1_<id>_init.xlsx`` and ``1_<id>_golden.xlsx``), so the ordinary
suite loader, checker and harness run it. Generation is deterministic.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook

PRODUCTS = ["Widget", "Gadget", "Sprocket", "Flange", "Gizmo", "Bracket", "Hinge", "Valve"]
REGIONS = ["North", "South", "East", "West", "Central"]
PEOPLE = ["ada lovelace", "alan turing", "grace hopper", "edsger dijkstra", "barbara liskov", "donald knuth"]


@dataclass(frozen=True)
class Family:
    name: str
    #: Builds (input workbook, golden workbook, instruction, answer_position) from a seed.
    build: Callable[[random.Random], tuple[Workbook, Workbook, str, str]]


def _copy(wb: Workbook) -> Workbook:
    out = Workbook()
    out.remove(out.active)
    for ws in wb.worksheets:
        target = out.create_sheet(ws.title)
        for row in ws.iter_rows():
            for cell in row:
                target.cell(cell.row, cell.column, cell.value).number_format = cell.number_format
    return out


def line_totals(rng: random.Random):
    wb = Workbook()
    ws = wb.active
    ws.title = "Orders"
    ws.append(["Product", "Quantity", "Unit price", "Line total"])
    n = rng.randint(4, 7)
    for _ in range(n):
        ws.append([rng.choice(PRODUCTS), rng.randint(1, 40), round(rng.uniform(2, 90), 2), None])
    gold = _copy(wb)
    for r in range(2, n + 2):
        g = gold["Orders"]
        g.cell(r, 4).value = round(g.cell(r, 2).value * g.cell(r, 3).value, 2)
    instruction = "In sheet Orders, fill the Line total column (D) with formulas multiplying Quantity by Unit price for every order row."
    return wb, gold, instruction, f"Orders!D2:D{n + 1}"


def percent_share(rng: random.Random):
    wb = Workbook()
    ws = wb.active
    ws.title = "Regions"
    ws.append(["Region", "Sales", "Share of total"])
    regions = rng.sample(REGIONS, rng.randint(3, 5))
    for region in regions:
        ws.append([region, rng.randint(100, 900) * 10, None])
    gold = _copy(wb)
    g = gold["Regions"]
    total = sum(g.cell(r, 2).value for r in range(2, len(regions) + 2))
    for r in range(2, len(regions) + 2):
        g.cell(r, 3).value = round(g.cell(r, 2).value / total, 4)
        g.cell(r, 3).number_format = "0.0%"
    instruction = "In sheet Regions, fill column C with each region's share of total sales, shown as a percentage."
    return wb, gold, instruction, f"Regions!C2:C{len(regions) + 1}"


def padded_lookup(rng: random.Random):
    wb = Workbook()
    ws = wb.active
    ws.title = "Lookup"
    ws.append(["Product", "Price", None, None, "Ordered item", "Price"])
    items = rng.sample(PRODUCTS, 5)
    prices = {p: round(rng.uniform(5, 60), 2) for p in items}
    for i, p in enumerate(items, start=2):
        ws.cell(i, 1).value = p + " " * rng.randint(1, 2)  # exported keys carry trailing spaces
        ws.cell(i, 2).value = prices[p]
    orders = [rng.choice(items) for _ in range(4)]
    for i, p in enumerate(orders, start=2):
        ws.cell(i, 5).value = p
    gold = _copy(wb)
    for i, p in enumerate(orders, start=2):
        gold["Lookup"].cell(i, 6).value = prices[p]
    instruction = "In sheet Lookup, fill column F with the price of the item named in column E, taken from the price table in columns A and B."
    return wb, gold, instruction, "Lookup!F2:F5"


def due_dates(rng: random.Random):
    wb = Workbook()
    ws = wb.active
    ws.title = "Invoices"
    ws.append(["Invoice", "Issued", "Due"])
    n = rng.randint(3, 5)
    start = dt.datetime(2024, rng.randint(1, 9), rng.randint(1, 28))
    for i in range(n):
        issued = start + dt.timedelta(days=rng.randint(0, 60))
        ws.append([f"INV-{rng.randint(1000, 9999)}", issued, None])
        ws.cell(i + 2, 2).number_format = "yyyy-mm-dd"
    gold = _copy(wb)
    g = gold["Invoices"]
    for r in range(2, n + 2):
        g.cell(r, 3).value = g.cell(r, 2).value + dt.timedelta(days=30)
        g.cell(r, 3).number_format = "yyyy-mm-dd"
    instruction = "In sheet Invoices, fill the Due column (C) with the date 30 days after the Issued date."
    return wb, gold, instruction, f"Invoices!C2:C{n + 1}"


def upper_names(rng: random.Random):
    wb = Workbook()
    ws = wb.active
    ws.title = "People"
    ws.append(["Name", None, "Upper"])
    names = rng.sample(PEOPLE, 4)
    for name in names:
        ws.append([name, None, None])
    gold = _copy(wb)
    for r, name in enumerate(names, start=2):
        gold["People"].cell(r, 3).value = name.upper()
    instruction = "In sheet People, copy the names in column A into column C in upper case."
    return wb, gold, instruction, "People!C2:C5"


def merged_header(rng: random.Random):
    """A family no lesson covers: the agent fails it before and after evolution."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Stock"
    ws.append(["Stock report", None, None])
    ws.merge_cells("A1:C1")
    ws.append(["Item", "On hand", "Reorder"])
    n = 4
    for _ in range(n):
        ws.append([rng.choice(PRODUCTS), rng.randint(0, 30), None])
    gold = _copy(wb)
    g = gold["Stock"]
    for r in range(3, n + 3):
        g.cell(r, 3).value = "yes" if g.cell(r, 2).value < 10 else "no"
    instruction = "In sheet Stock, fill the Reorder column with yes when On hand is below 10, otherwise no."
    return wb, gold, instruction, f"Stock!C3:C{n + 2}"


FAMILIES = {
    "line-totals": Family("line-totals", line_totals),
    "percent-share": Family("percent-share", percent_share),
    "padded-lookup": Family("padded-lookup", padded_lookup),
    "due-dates": Family("due-dates", due_dates),
    "upper-names": Family("upper-names", upper_names),
    "merged-header": Family("merged-header", merged_header),
}

#: (family, how many tasks) per split. Recurring failures in evolve become lessons with
#: support >= 2; due-dates appears once, so its lesson is routed to a reference file.
EVOLVE = [("line-totals", 3), ("percent-share", 3), ("padded-lookup", 2), ("due-dates", 1), ("upper-names", 1)]
HELDOUT = [
    ("line-totals", 2),
    ("percent-share", 2),
    ("padded-lookup", 1),
    ("due-dates", 1),
    ("upper-names", 1),
    ("merged-header", 1),
]


def write_suite(root: Path, seed: int = 7) -> Path:
    """Generate the demo suite into ``root`` and return it."""
    root = Path(root)
    (root / "spreadsheet").mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    splits: dict[str, list[str]] = {"evolve": [], "heldout": []}
    for split, plan in (("evolve", EVOLVE), ("heldout", HELDOUT)):
        for family, count in plan:
            for k in range(1, count + 1):
                task_id = f"{split[:2]}-{family}-{k}"
                init, gold, instruction, position = FAMILIES[family].build(rng)
                folder = root / "spreadsheet" / task_id
                folder.mkdir(parents=True, exist_ok=True)
                init.save(folder / f"1_{task_id}_init.xlsx")
                gold.save(folder / f"1_{task_id}_golden.xlsx")
                (folder / "prompt.txt").write_text(instruction + "\n")
                rows.append(
                    {
                        "id": task_id,
                        "instruction": instruction,
                        "spreadsheet_path": f"spreadsheet/{task_id}",
                        "instruction_type": "Cell-Level Manipulation",
                        "answer_position": position,
                        "family": family,
                    }
                )
                splits[split].append(task_id)
    (root / "dataset.json").write_text(json.dumps(rows, indent=1) + "\n")
    (root / "splits.json").write_text(json.dumps(splits, indent=1) + "\n")
    (root / "README.md").write_text(
        "# t2s demo tasks\n\nGenerated by `t2s.demo.tasks` with openpyxl (no third-party data).\n"
        "Six families of small spreadsheet tasks; see the module docstring.\n"
    )
    return root
