"""SpreadsheetBench-format suites (the Verified 400 and the original 912 layout).

A suite directory holds ``dataset.json`` (a list of rows with ``id``, ``instruction``,
``spreadsheet_path``, ``instruction_type``, ``answer_position``...) and
``spreadsheet/<id>/`` with the test cases:

- Verified naming: ``1_<id>_init.xlsx`` / ``1_<id>_golden.xlsx`` (one case), plus the
  irregular ``initial.xlsx`` / ``golden.xlsx`` and a golden file carrying another id;
- original naming: ``{k}_<id>_input.xlsx`` / ``{k}_<id>_answer.xlsx``, k = 1..3.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

from t2s.errors import T2SError, UsageError
from t2s.tasks.base import Case, CheckReport, Suite, Task, Verdict, Workspace
from t2s.tasks.recalc import recalculate_workbook
from t2s.tasks.xlsx_compare import (
    compare_workbooks,
    enumerate_cells,
    load_values_workbook,
    parse_answer_position,
)

_INPUT_RE = re.compile(r"^(?:(\d+)_(.+)_)?(init|initial|input)\.xlsx$")
_ANSWER_RE = re.compile(r"^(?:(\d+)_(.+)_)?(golden|answer)\.xlsx$")

PREVIEW_ROWS = 8
PREVIEW_COLS = 12
PREVIEW_SHEETS = 4
PREVIEW_CELL_CHARS = 40


def _discover_cases(task_id: str, folder: Path) -> tuple[list[Case], list[str]]:
    """Pair inputs and answers by case number; returns cases and notes on oddities."""
    inputs: dict[int, list[tuple[str | None, Path]]] = {}
    answers: dict[int, list[tuple[str | None, Path]]] = {}
    notes: list[str] = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            for regex, bucket in ((_INPUT_RE, inputs), (_ANSWER_RE, answers)):
                m = regex.match(path.name)
                if m:
                    k = int(m.group(1)) if m.group(1) else 1
                    bucket.setdefault(k, []).append((m.group(2), path))

    def pick(options: list[tuple[str | None, Path]], what: str, k: int) -> Path:
        exact = [p for ident, p in options if ident == task_id]
        if len(exact) == 1:
            return exact[0]
        if len(options) == 1:
            ident, p = options[0]
            if ident is not None and ident != task_id:
                notes.append(f"case {k} {what} file {p.name} names id {ident!r}")
            return p
        raise T2SError(
            f"task {task_id!r}: {len(options)} candidate {what} files for case {k} "
            f"in {folder}: {', '.join(p.name for _, p in options)}"
        )

    cases = []
    for k in sorted(set(inputs) | set(answers)):
        cases.append(
            Case(
                index=k,
                input_path=pick(inputs[k], "input", k) if k in inputs else None,
                answer_path=pick(answers[k], "answer", k) if k in answers else None,
            )
        )
    return cases, notes


class SpreadsheetBenchSuite(Suite):
    """SpreadsheetBench-format workbook tasks, judged cell by cell like the official script."""

    type = "spreadsheetbench"
    #: Name of the ``[suites.<name>]`` section ``t2s init --suite`` writes.
    default_name = "sheets"

    def __init__(self, name: str, root: Path, **kwargs: Any):
        super().__init__(name, root, **kwargs)
        dataset_path = self.root / "dataset.json"
        if not dataset_path.is_file():
            raise UsageError(f"{self.root}: not a SpreadsheetBench suite (no dataset.json)")
        try:
            rows = json.loads(dataset_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UsageError(f"{dataset_path} is not valid JSON: {err}") from None
        if not isinstance(rows, list):
            raise UsageError(f"{dataset_path}: expected a JSON list of tasks")
        self._rows: dict[str, dict] = {}
        self._order: list[str] = []
        for n, row in enumerate(rows):
            if not isinstance(row, dict) or "id" not in row:
                raise UsageError(f"{dataset_path}: row {n} has no 'id'")
            tid = str(row["id"])
            if tid in self._rows:
                raise UsageError(f"{dataset_path}: duplicate task id {tid!r} (row {n})")
            self._rows[tid] = {**row, "_row": n}
            self._order.append(tid)
        self._tasks: dict[str, Task] = {}

    @classmethod
    def detect(cls, path: Path) -> bool:
        return (Path(path) / "dataset.json").is_file() and (Path(path) / "spreadsheet").is_dir()

    def all_task_ids(self) -> list[str]:
        return list(self._order)

    def task(self, task_id: str) -> Task:
        task_id = str(task_id)
        cached = self._tasks.get(task_id)
        if cached is not None:
            return cached
        row = self._rows.get(task_id)
        if row is None:
            close = [i for i in self._order if i.startswith(task_id.split("-")[0])][:5]
            raise UsageError(
                f"suite {self.name!r} has no task {task_id!r}" + (f" (similar: {', '.join(close)})" if close else "")
            )
        folder = self.root / row.get("spreadsheet_path", f"spreadsheet/{task_id}")
        cases, notes = _discover_cases(task_id, folder)
        instruction = row.get("instruction")
        if instruction is None and (folder / "prompt.txt").is_file():
            instruction = (folder / "prompt.txt").read_text(encoding="utf-8")
        meta = {k: v for k, v in row.items() if k not in ("id", "instruction", "answer_position", "_row")}
        meta["row"] = row["_row"]
        if notes:
            meta["notes"] = notes
        task = Task(
            id=task_id,
            instruction=instruction or "",
            cases=cases,
            answer_position=str(row.get("answer_position", "")),
            meta=meta,
        )
        self._tasks[task_id] = task
        return task

    # -- running -------------------------------------------------------------------
    def output_name(self, task: Task, case: Case) -> str:
        return "output.xlsx"

    def render_prompt(self, task: Task, workspace: Workspace) -> str:
        template = resources.files("t2s.tasks").joinpath("spreadsheetbench_prompt.md").read_text(encoding="utf-8")
        answer_sheet = task.meta.get("answer_sheet")
        if self.lenient and answer_sheet and "!" not in task.answer_position and "," not in str(answer_sheet):
            sheet_rule = f"A range without a sheet name refers to the sheet {answer_sheet!r}."
        else:
            sheet_rule = "A range without a sheet name refers to the first sheet of the workbook."
        preview, note = preview_workbook(workspace.input_path) if workspace.input_path else ("(no input file)", "none")
        return (
            template.format(
                instruction=task.instruction.strip(),
                input_path=workspace.input_path,
                output_path=workspace.output_path,
                answer_position=task.answer_position,
                answer_sheet_line=f"\n- Answer sheet: {answer_sheet}" if answer_sheet else "",
                instruction_type=task.meta.get("instruction_type", "unknown"),
                sheet_rule=sheet_rule,
                preview_note=note,
                preview=preview,
            ).rstrip()
            + "\n"
        )

    def check(
        self,
        task: Task,
        output_path: Path,
        case: int = 1,
        *,
        recalculate: bool | None = None,
        lenient: bool | None = None,
    ) -> Verdict:

        recalculate = self.recalculate if recalculate is None else recalculate
        lenient = self.lenient if lenient is None else lenient
        c = task.case(case)
        if c.answer_path is None or not c.answer_path.is_file():
            raise T2SError(
                f"task {task.id!r} case {case}: the suite has no answer file "
                f"(looked in {self.root / task.meta.get('spreadsheet_path', '')})"
            )
        output_path = Path(output_path)
        report = CheckReport(
            task_id=task.id,
            case=case,
            output_path=str(output_path),
            answer_path=str(c.answer_path),
            answer_position=task.answer_position,
            lenient=lenient,
            recalculated=recalculate,
        )
        default_sheet = task.meta.get("answer_sheet")
        if not isinstance(default_sheet, str) or "," in default_sheet:
            default_sheet = None
        if recalculate and output_path.is_file() and zipfile.is_zipfile(output_path):
            with tempfile.TemporaryDirectory(prefix="t2s-recalc-") as tmp:
                recalculated = recalculate_workbook(output_path, Path(tmp))
                compare_workbooks(
                    c.answer_path,
                    recalculated,
                    task.answer_position,
                    lenient=lenient,
                    default_sheet=default_sheet,
                    report=report,
                )
        else:
            compare_workbooks(
                c.answer_path,
                output_path,
                task.answer_position,
                lenient=lenient,
                default_sheet=default_sheet,
                report=report,
            )
        passed = report.passed
        return Verdict(passed=passed, score=1.0 if passed else 0.0, report=report)

    # -- leak guard inputs ----------------------------------------------------------
    def gold_values(self, task: Task, case: int = 1) -> list[Any]:
        """The values of the answer cells of the case's answer workbook."""
        c = task.case(case)
        if c.answer_path is None or not Path(c.answer_path).is_file():
            return []
        return workbook_values(c.answer_path, task.answer_position)

    def visible_texts(self, task: Task, case: int = 1) -> list[str]:
        """Every value of the case's input workbook, as one text."""
        c = task.case(case)
        if c.input_path is None or not Path(c.input_path).is_file():
            return []
        return ["\n".join(str(v) for v in workbook_values(c.input_path, None))]


def workbook_values(path: Path, position: str | None) -> list[Any]:
    """Values of a workbook: the cells of ``position`` (answer cells), or all cells."""

    wb = load_values_workbook(Path(path), role="answer")
    values: list[Any] = []
    if position is None:
        for ws in wb.worksheets:
            for row in ws.iter_rows(values_only=True):
                values.extend(v for v in row if v is not None)
        return values
    for piece in parse_answer_position(position, lenient=True):
        if piece.error:
            continue
        sheet = piece.sheet if piece.sheet in wb.sheetnames else wb.sheetnames[0]
        ws = wb[sheet]
        try:
            cells = enumerate_cells(piece.range, lenient=True, max_row=ws.max_row, max_col=ws.max_column)
        except ValueError:
            continue
        for row, col in cells[:5000]:
            cell = ws._cells.get((row, col))
            if cell is not None and cell.value is not None:
                values.append(cell.value)
    return values


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\n", "\\n").replace("|", "\\|")
    return text if len(text) <= PREVIEW_CELL_CHARS else text[: PREVIEW_CELL_CHARS - 1] + "…"


def preview_workbook(path: Path, rows: int = PREVIEW_ROWS, cols: int = PREVIEW_COLS) -> tuple[str, str]:
    """A Markdown preview of the first rows of each sheet (formulas shown as written)."""
    import openpyxl
    from openpyxl.utils import get_column_letter

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(path, read_only=True)
    except Exception as err:
        raise T2SError(f"input file {path} is not a readable .xlsx workbook: {err}") from None
    out: list[str] = []
    try:
        names = wb.sheetnames
        for name in names[:PREVIEW_SHEETS]:
            ws = wb[name]
            try:
                dims = ws.calculate_dimension()
            except Exception:
                dims = "unknown"
            out.append(f"### Sheet {name!r} (used range {dims})")
            data = []
            if hasattr(ws, "iter_rows"):
                for rn, r in enumerate(ws.iter_rows(min_row=1, max_row=rows, max_col=cols, values_only=True), start=1):
                    if any(v is not None for v in r):
                        data.append((rn, list(r)))
            if not data:
                out.append("(empty in the first rows)\n")
                continue
            width = max(max(i for i, v in enumerate(r) if v is not None) + 1 for _, r in data)
            data = [(rn, r[:width]) for rn, r in data]
            out.append("| row | " + " | ".join(get_column_letter(i + 1) for i in range(width)) + " |")
            out.append("|---" * (width + 1) + "|")
            for rn, r in data:
                cells = [_short(v) for v in r] + [""] * (width - len(r))
                out.append(f"| {rn} | " + " | ".join(cells) + " |")
            out.append("")
        if len(names) > PREVIEW_SHEETS:
            out.append(f"({len(names) - PREVIEW_SHEETS} more sheet(s): {', '.join(map(repr, names[PREVIEW_SHEETS:]))})")
    finally:
        wb.close()
    return "\n".join(out).rstrip(), f"first {rows} rows, first {cols} columns of each sheet"
