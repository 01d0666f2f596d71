"""WikiTableQuestions as spreadsheet tasks (suite type ``wikitablequestions``).

A suite directory holds ``questions.tsv`` (``id  utterance  context  targetValue``, no
quoting), the tables ``csv/<n>-csv/<m>.csv`` and optionally ``splits.json``. Each
question is one task (id ``nt-123``, one case):

- :meth:`WikiTableQuestionsSuite.prepare` writes the table as ``table.xlsx`` (one sheet
  ``table``, header in row 1, numeric cell text stored as numbers) and the question as
  ``question.txt``; the output is ``output.xlsx`` whose sheet ``answer`` holds the answer
  values in column A, one per row;
- the agent may instead finish with an answer (``finish`` with ``answer``, or a
  ``FINAL ANSWER:`` line): :meth:`~WikiTableQuestionsSuite.record_final_answer` writes
  that sheet;
- :meth:`~WikiTableQuestionsSuite.check` applies the official denotation semantics
  (:func:`to_value`, :func:`check_denotation`) plus the documented parsing of thousands
  separators and common date spellings, and reports missing and extra values;
- splits must be *table*-disjoint: :meth:`~WikiTableQuestionsSuite.check_disjoint`
  refuses splits that share a table;
- the agentic error analyst's workspace
  (:meth:`~WikiTableQuestionsSuite.analyst_workspace`) holds the table and the question
  as the agent had them and the gold answer as ``gold_answer.json``; a fix is an answer
  workbook, judged by this suite's checker.

Data: WikiTableQuestions (Pasupat & Liang, 2015), CC BY-SA 4.0. Nothing is bundled.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tempfile
import unicodedata
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from t2s.errors import ConfigError, T2SError, UsageError
from t2s.tasks.base import (
    AnalystGuide,
    AnalystWorkspace,
    AnswerCheck,
    Case,
    CheckReport,
    SplitOverlapError,
    Suite,
    Task,
    Verdict,
    Workspace,
    _sha256_file,
)
from t2s.tasks.recalc import recalculate_workbook

QUESTIONS_FILE = "questions.tsv"
TABLE_NAME = "table.xlsx"
TABLE_SHEET = "table"
QUESTION_NAME = "question.txt"
#: The gold answer in the agentic error analyst's workspace (a JSON list of the values).
GOLD_NAME = "gold_answer.json"
OUTPUT_NAME = "output.xlsx"
ANSWER_SHEET = "answer"
ANSWER_POSITION = "'answer'!A:A"
PREVIEW_ROWS = 60
PREVIEW_CELL_CHARS = 60
#: Integers with more digits stay text in table.xlsx (Excel keeps 15 significant digits).
MAX_INT_DIGITS = 15


# ============================================================================ reading the data
def unescape_target(value: str) -> str:
    r"""One ``targetValue`` item: ``\n`` -> newline, ``\p`` -> ``|``, ``\\`` -> ``\``."""
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in "np\\":
            out.append({"n": "\n", "p": "|", "\\": "\\"}[value[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_target(text: str) -> list[str]:
    r"""The gold values of a ``targetValue`` field: split on ``|``, then unescaped."""
    return [unescape_target(v) for v in text.split("|")]


@dataclass(frozen=True)
class Question:
    id: str
    utterance: str
    context: str
    target: tuple[str, ...]
    row: int


def read_questions(path: Path) -> list[Question]:
    """``questions.tsv``: tab-separated, no quoting, header ``id utterance context targetValue``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: cannot read the questions: {err}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise UsageError(f"{path}: empty (expected a header id, utterance, context, targetValue)")
    header = lines[0].rstrip("\r").split("\t")
    need = ["id", "utterance", "context", "targetValue"]
    missing = [h for h in need if h not in header]
    if missing:
        raise UsageError(f"{path}: header lacks {', '.join(missing)} (has: {', '.join(header)})")
    col = {h: header.index(h) for h in need}
    out: list[Question] = []
    seen: set[str] = set()
    for n, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise UsageError(f"{path}:{n}: {len(fields)} tab-separated fields, the header has {len(header)}")
        qid = fields[col["id"]]
        if qid in seen:
            raise UsageError(f"{path}:{n}: duplicate question id {qid!r}")
        seen.add(qid)
        out.append(
            Question(
                qid,
                fields[col["utterance"]],
                fields[col["context"]],
                tuple(parse_target(fields[col["targetValue"]])),
                len(out),
            )
        )
    return out


def read_table(path: Path) -> list[list[str]]:
    r"""A table CSV: first row the header; ``\"`` and ``\\`` escapes; quoted newlines."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            return [row for row in csv.reader(fh, escapechar="\\", strict=False)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise T2SError(f"table {path}: cannot read it: {err}") from None


# ============================================================================ table -> xlsx
_PLAIN_NUMBER_RE = re.compile(r"^[+-]?(?:0|[1-9]\d*)(?:\.(\d+))?$")
_GROUPED_NUMBER_RE = re.compile(r"^[+-]?[1-9]\d{0,2}(?:,\d{3})+(?:\.(\d+))?$")


def cell_value(text: str) -> tuple[Any, str | None]:
    """How a table cell is stored in ``table.xlsx``: ``(value, number_format)``.

    Numeric text becomes a number: plain decimals (``2004``, ``-3.5``; no leading zeros
    such as ``007``, at most 15 digits) and numbers with thousands separators
    (``7,169`` -> 7169 shown as ``#,##0``); the number format keeps the decimals as
    written (``1.50`` shown as ``0.00``). Everything else stays text; empty is empty.
    """
    if text is None or text == "":
        return None, None
    s = text.strip()
    for regex, grouped in ((_PLAIN_NUMBER_RE, False), (_GROUPED_NUMBER_RE, True)):
        m = regex.match(s)
        if not m:
            continue
        decimals = m.group(1)
        digits = s.replace(",", "")
        if decimals is None:
            if len(digits.lstrip("+-")) > MAX_INT_DIGITS:
                break
            value: Any = int(digits)
            fmt = "#,##0" if grouped else None
        else:
            if len(digits.lstrip("+-").replace(".", "")) > MAX_INT_DIGITS:
                break
            value = float(digits)
            fmt = ("#,##0." if grouped else "0.") + "0" * len(decimals)
        return value, fmt
    return text, None


def write_table_xlsx(rows: list[list[str]], path: Path) -> None:
    """One sheet ``table``: row 1 the header (text), numeric cells as numbers."""
    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = TABLE_SHEET
    for r, row in enumerate(rows, start=1):
        for c, text in enumerate(row, start=1):
            if r == 1:
                value, fmt = (text if text != "" else None), None
            else:
                value, fmt = cell_value(text)
            if value is None:
                continue
            if isinstance(value, str):
                value = ILLEGAL_CHARACTERS_RE.sub("", value)
            cell = ws.cell(r, c, value)
            if fmt:
                cell.number_format = fmt
    wb.save(path)


# ============================================================================ denotation semantics
def normalize(x: str) -> str:
    """The official evaluator's string normalisation (``normalize`` of evaluator.py)."""
    x = "".join(c for c in unicodedata.normalize("NFKD", x) if unicodedata.category(c) != "Mn")
    x = re.sub(r"[‘’´`]", "'", x)
    x = re.sub(r"[“”]", '"', x)
    x = re.sub(r"[‐‑‒–—−]", "-", x)
    while True:
        old_x = x
        # trailing citations like [1] or footnote marks
        x = re.sub(r"((?<!^)\[[^\]]*\]|\[\d+\]|[•♦†‡*#+])*$", "", x.strip())
        # trailing details in parentheses, " (note)"
        x = re.sub(r"(?<!^)( \([^)]*\))*$", "", x.strip())
        # outermost quotation marks
        x = re.sub(r'^"([^"]*)"$', r"\1", x.strip())
        if x == old_x:
            break
    if x and x[-1] == ".":
        x = x[:-1]
    return re.sub(r"\s+", " ", x, flags=re.U).lower().strip()


def parse_number(text: str) -> int | float | None:
    """The official ``NumberValue.parse`` (Python's ``int``, then ``float``; not NaN or
    infinite), without Python 3's ``_`` digit separators, plus thousands separators:
    ``1,234`` / ``-1,234,567.5`` (groups of exactly three digits)."""
    s = text.strip()
    if "_" not in s:
        try:
            return int(s)
        except ValueError:
            pass
        try:
            amount = float(s)
        except ValueError:
            amount = None
        if amount is not None and amount == amount and amount not in (float("inf"), float("-inf")):
            return amount
    if _GROUPED_NUMBER_RE.match(s):
        plain = s.replace(",", "")
        return int(plain) if "." not in plain else float(plain)
    return None


def parse_iso_date(text: str) -> tuple[int, int, int] | None:
    """The official ``DateValue.parse``: ``yyyy-mm-dd`` with ``xx`` (or ``xxxx`` for the
    year) for unknown parts; -1 stands for unknown."""
    try:
        ymd = text.lower().split("-")
        if len(ymd) != 3:
            return None
        year = -1 if ymd[0] in ("xx", "xxxx") else int(ymd[0])
        month = -1 if ymd[1] == "xx" else int(ymd[1])
        day = -1 if ymd[2] == "xx" else int(ymd[2])
    except ValueError:
        return None
    if year == month == day == -1:
        return None
    if not (month == -1 or 1 <= month <= 12) or not (day == -1 or 1 <= day <= 31):
        return None
    return year, month, day


_MONTHS = {
    name: n
    for n, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{3,4})"
_DATE_SPELLINGS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        rf"^{_MONTH}\s+{_DAY},?\s+{_YEAR}$",  # June 3, 1990 / Jun. 3 1990 / June 3rd, 1990
        rf"^{_DAY}\s+{_MONTH},?\s+{_YEAR}$",  # 3 June 1990
        rf"^{_MONTH},?\s+{_YEAR}$",  # June 1990
        rf"^{_MONTH}\s+{_DAY}$",  # June 3
        rf"^{_DAY}\s+{_MONTH}$",  # 3 June
    )
]


def parse_date_spelling(text: str) -> tuple[int, int, int] | None:
    """t2s's stand-in for the tagger's date canonicalisation: the spellings in
    ``_DATE_SPELLINGS`` (English month names or 3-letter abbreviations, ``Sept``, an
    optional ``.`` after the month, ordinal suffixes); -1 for the parts not given."""
    s = " ".join(text.split())
    for regex in _DATE_SPELLINGS:
        m = regex.match(s)
        if not m:
            continue
        parts = m.groupdict()
        month = _MONTHS[parts["month"].lower()]
        day = int(parts["day"]) if parts.get("day") else -1
        year = int(parts["year"]) if parts.get("year") else -1
        if day != -1 and not 1 <= day <= 31:
            return None
        return year, month, day
    return None


@dataclass(frozen=True)
class Value:
    """A value of the official evaluator: ``kind`` is ``number``, ``date`` or ``string``;
    ``key`` decides equality (distinct values), ``normalized`` the string match."""

    kind: str
    key: Any
    normalized: str
    original: str

    def match(self, other: Value) -> bool:
        """``self`` (a gold value) matches ``other`` (a predicted value)."""
        if self.normalized == other.normalized:
            return True
        if self.kind == "number" and other.kind == "number":
            return abs(self.key - other.key) < 1e-6
        if self.kind == "date" and other.kind == "date":
            return self.key == other.key
        return False

    def describe(self) -> str:
        if self.kind == "number":
            return f"number {self.key}"
        if self.kind == "date":
            y, m, d = self.key
            return "date " + "-".join("xx" if v == -1 else f"{v:02d}" if i else str(v) for i, v in enumerate((y, m, d)))
        return f"string {self.normalized!r}"


def _number(amount: int | float, original: str) -> Value:
    amount = round(amount) if abs(amount - round(amount)) < 1e-6 else float(amount)
    return Value("number", amount, normalize(original), original)


def to_value(original: str) -> Value:
    """A string as the official ``to_value`` reads it (number, then ``yyyy-mm-dd`` date
    with a year alone a number, else a string), with t2s's thousands-separator and
    date-spelling parsing in place of the tagger's canonical forms."""
    amount = parse_number(original)
    if amount is not None:
        return _number(amount, original)
    ymd = parse_iso_date(original) or parse_date_spelling(original)
    if ymd is not None:
        if ymd[1] == ymd[2] == -1:
            return _number(ymd[0], original)
        return Value("date", ymd, normalize(original), original)
    norm = normalize(original)
    return Value("string", norm, norm, original)


def to_value_list(strings: list[str]) -> list[Value]:
    """Distinct values, first occurrence kept (the official evaluator uses a set)."""
    out: dict[tuple[str, Any], Value] = {}
    for s in strings:
        v = to_value(s)
        out.setdefault((v.kind, v.key), v)
    return list(out.values())


def check_denotation(gold: list[Value], predicted: list[Value]) -> bool:
    """The official rule: as many distinct values, and every gold value matched."""
    if len(gold) != len(predicted):
        return False
    return all(any(g.match(p) for p in predicted) for g in gold)


def compare_answers(gold_strings: list[str], predicted_strings: list[str], *, source: str = "") -> AnswerCheck:
    """Both value lists, the verdict, and which gold values are missing and which
    predicted values are extra."""
    gold = to_value_list(gold_strings)
    predicted = to_value_list(predicted_strings)
    return AnswerCheck(
        source=source,
        gold=[g.original for g in gold],
        predicted=[p.original for p in predicted],
        gold_read=[g.describe() for g in gold],
        predicted_read=[p.describe() for p in predicted],
        missing=[g.original for g in gold if not any(g.match(p) for p in predicted)],
        extra=[p.original for p in predicted if not any(g.match(p) for g in gold)],
        correct=check_denotation(gold, predicted),
    )


# ============================================================================ reading an answer
def cell_text(value: Any) -> str | None:
    """An answer cell as a string (None for an empty cell): integral floats without
    ``.0``, dates as ``yyyy-mm-dd``, booleans as ``true``/``false``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == value and abs(value) < 1e15 and value == int(value):
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M") if not value.second else value.isoformat()
    text = str(value)
    return text if text.strip() else None


def read_answer_values(path: Path, report: CheckReport, *, shown_as: str | None = None) -> tuple[list[str], str]:
    """Column A of the ``answer`` sheet of ``path`` (empty cells skipped); problems and
    notes go into ``report``. Returns the values and where they were read."""
    import openpyxl

    path = Path(path)
    name = shown_as or path.name
    if not path.is_file():
        report.problems.append(
            f"the output file {name} does not exist (write the answer values "
            f"into its sheet {ANSWER_SHEET!r}, column A, one per row)"
        )
        return [], ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = openpyxl.load_workbook(path, data_only=True)
    except Exception as err:
        report.problems.append(f"{name} is not a readable .xlsx workbook: {type(err).__name__}: {err}")
        return [], ""
    names = wb.sheetnames
    sheet = (
        ANSWER_SHEET if ANSWER_SHEET in names else next((n for n in names if n.strip().lower() == ANSWER_SHEET), None)
    )
    if sheet is None:
        report.problems.append(f"{name} has no sheet {ANSWER_SHEET!r} (sheets: {', '.join(map(repr, names))})")
        return [], ""
    if sheet != ANSWER_SHEET:
        report.notes.append(f"read the answer from sheet {sheet!r} (expected {ANSWER_SHEET!r})")
    ws = wb[sheet]
    values: list[str] = []
    blanks: list[int] = []
    for (row,) in ws.iter_rows(min_col=1, max_col=1, values_only=False):
        text = cell_text(row.value)
        if text is None:
            blanks.append(row.row)
        else:
            values.append(text)
    if blanks and values:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                formulas = openpyxl.load_workbook(path)[sheet]
            for r in blanks[:50]:
                raw = formulas.cell(r, 1).value
                if isinstance(raw, str) and raw.startswith("="):
                    report.notes.append(
                        f"{sheet}!A{r} holds the formula {raw[:60]!r} with no cached "
                        "value: it reads as empty (write values)"
                    )
        except Exception:  # pragma: no cover - the data_only load worked
            pass
    others = (
        sum(
            1
            for col in range(2, (ws.max_column or 1) + 1)
            for r in range(1, (ws.max_row or 0) + 1)
            if ws.cell(r, col).value is not None
        )
        if (ws.max_column or 1) > 1
        else 0
    )
    if others:
        report.notes.append(f"{others} non-empty cell(s) outside column A of {sheet!r} were ignored")
    return values, f"{name}, sheet {sheet!r}, column A"


def split_answer(answer: Any) -> list[str]:
    """A final answer as values: a list (one value per item), or a string split on new
    lines when it has any, else on ``|``; items stripped, empty ones dropped."""
    items: Sequence[str | None]
    if isinstance(answer, (list, tuple)):
        items = [cell_text(a) if not isinstance(a, str) else a for a in answer]
    elif isinstance(answer, str):
        items = answer.split("\n") if "\n" in answer.strip() else answer.split("|")
    elif answer is None:
        items = []
    else:
        items = [cell_text(answer)]
    out = []
    for item in items:
        if item is None:
            continue
        text = str(item).strip()
        if text.startswith(("- ", "* ")) and "\n" in str(answer):
            text = text[2:].strip()
        if text:
            out.append(text)
    return out


# ============================================================================ the suite
class WikiTableQuestionsSuite(Suite):
    """WikiTableQuestions questions over Wikipedia tables, as spreadsheet tasks."""

    type = "wikitablequestions"
    #: Name of the ``[suites.<name>]`` section ``t2s init --suite`` writes.
    default_name = "wtq"

    final_answer_parameter: ClassVar[dict[str, Any] | None] = {
        "type": "string",
        "description": "Your final answer. Several values: separate them with ' | '. "
        "Written to the 'answer' sheet of output.xlsx unless you wrote that sheet yourself.",
    }

    def __init__(self, name: str, root: Path, **kwargs: Any):
        super().__init__(name, root, **kwargs)
        path = self.root / QUESTIONS_FILE
        if not path.is_file():
            raise UsageError(f"{self.root}: not a WikiTableQuestions suite (no {QUESTIONS_FILE})")
        self._questions = {q.id: q for q in read_questions(path)}
        self._order = list(self._questions)
        self._tasks: dict[str, Task] = {}
        self._tables: dict[str, list[list[str]]] = {}
        unknown = set(self.options) - {"preview_rows"}
        if unknown:
            raise ConfigError(
                f"suite {name!r}: unknown option(s) {', '.join(sorted(unknown))} "
                "(wikitablequestions knows: preview_rows)"
            )
        try:
            self.preview_rows = int(self.options.get("preview_rows", PREVIEW_ROWS))
        except (TypeError, ValueError):
            raise ConfigError(f"suite {name!r}: options.preview_rows must be an integer") from None

    @classmethod
    def detect(cls, path: Path) -> bool:
        return (Path(path) / QUESTIONS_FILE).is_file() and (Path(path) / "csv").is_dir()

    def all_task_ids(self) -> list[str]:
        return list(self._order)

    def question(self, task_id: str) -> Question:
        q = self._questions.get(str(task_id))
        if q is None:
            raise UsageError(f"suite {self.name!r} has no task {str(task_id)!r} (ids look like nt-123)")
        return q

    def task(self, task_id: str) -> Task:
        task_id = str(task_id)
        cached = self._tasks.get(task_id)
        if cached is not None:
            return cached
        q = self.question(task_id)
        task = Task(
            id=q.id,
            instruction=q.utterance,
            cases=[Case(index=1, input_path=self.root / q.context)],
            answer_position=ANSWER_POSITION,
            meta={"context": q.context, "target": list(q.target), "row": q.row},
        )
        self._tasks[task_id] = task
        return task

    def table_of(self, task_id: str) -> str:
        """The table (context path, e.g. ``csv/204-csv/590.csv``) a question is about."""
        return self.question(task_id).context

    def table_rows(self, task: Task) -> list[list[str]]:
        context = task.meta["context"]
        rows = self._tables.get(context)
        if rows is None:
            path = self.root / context
            if not path.is_file():
                raise T2SError(f"task {task.id!r}: table {context} is missing from {self.root}")
            rows = self._tables[context] = read_table(path)
        return rows

    # -- splits --------------------------------------------------------------------
    def check_disjoint(self, first: str, second: str) -> None:
        """Refuse splits that share a question or a *table* (a skill must not learn a
        table's answers)."""
        super().check_disjoint(first, second)
        seen: dict[str, str] = {}
        for qid in self.task_ids(first):
            seen.setdefault(self.table_of(qid), qid)
        shared: dict[str, str] = {}
        for qid in self.task_ids(second):
            table = self.table_of(qid)
            if table in seen and table not in shared:
                shared[table] = qid
        if shared:
            overlap = [f"{t} ({seen[t]} in {first!r}, {q} in {second!r})" for t, q in shared.items()]
            raise SplitOverlapError(self.name, first, second, overlap, unit="table(s)")

    # -- running -------------------------------------------------------------------
    def input_name(self, task: Task, case: Case) -> str:
        return TABLE_NAME

    def output_name(self, task: Task, case: Case) -> str:
        return OUTPUT_NAME

    def prepare(self, task: Task, dest_dir: Path, case: int = 1) -> Workspace:
        """``table.xlsx`` and ``question.txt`` in ``dest_dir``; the output is ``output.xlsx``."""
        task.case(case)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        table = dest_dir / TABLE_NAME
        write_table_xlsx(self.table_rows(task), table)
        (dest_dir / QUESTION_NAME).write_text(task.instruction.strip() + "\n", encoding="utf-8")
        for path in (table, dest_dir / QUESTION_NAME):
            path.chmod(0o644)
        return Workspace(
            dir=dest_dir,
            input_path=table,
            output_path=dest_dir / OUTPUT_NAME,
            case=case,
            extra={"question_path": str(dest_dir / QUESTION_NAME), "sheet": TABLE_SHEET},
        )

    def preview(self, task: Task) -> tuple[str, str]:
        """The table as Markdown (row numbers as in ``table.xlsx``) and a note on its extent."""
        rows = self.table_rows(task)
        if not rows:
            return "(the table is empty)", "empty"

        def short(text: str) -> str:
            t = text.replace("\n", " / ").replace("|", "\\|")
            return t if len(t) <= PREVIEW_CELL_CHARS else t[: PREVIEW_CELL_CHARS - 1] + "…"

        from openpyxl.utils import get_column_letter

        width = max(len(r) for r in rows)
        header = rows[0] + [""] * (width - len(rows[0]))
        lines = [
            "columns: " + ", ".join(f"{get_column_letter(i + 1)} = {h!r}" for i, h in enumerate(header)),
            "",
            "| row | " + " | ".join(short(h) or " " for h in header) + " |",
            "|---" * (width + 1) + "|",
        ]
        body = rows[1:]
        shown = body[: max(0, self.preview_rows)]
        for n, row in enumerate(shown, start=2):
            cells = [short(c) for c in row] + [""] * (width - len(row))
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        if len(body) > len(shown):
            lines.append(
                f"\n({len(body) - len(shown)} more row(s) in the workbook, rows {len(shown) + 2}-{len(body) + 1})"
            )
            note = f"the header and the first {len(shown)} of {len(body)} rows"
        else:
            note = f"all {len(body)} rows"
        return "\n".join(lines), note

    def render_prompt(self, task: Task, workspace: Workspace) -> str:
        template = resources.files("t2s.tasks").joinpath("wikitablequestions_prompt.md").read_text(encoding="utf-8")
        preview, note = self.preview(task)
        rows = self.table_rows(task)
        return (
            template.format(
                question=task.instruction.strip(),
                input_path=workspace.input_path,
                output_path=workspace.output_path,
                question_path=Path(workspace.dir) / QUESTION_NAME,
                sheet=TABLE_SHEET,
                answer_sheet=ANSWER_SHEET,
                n_rows=max(0, len(rows) - 1),
                n_cols=max((len(r) for r in rows), default=0),
                preview_note=note,
                preview=preview,
            ).rstrip()
            + "\n"
        )

    def record_final_answer(self, workspace: Workspace, answer: Any) -> str:
        """Write the values of ``answer`` into the ``answer`` sheet of the output: a new
        workbook when there is no output yet, a sheet added when the output has none;
        an output that already has an ``answer`` sheet is left as it is."""
        import openpyxl

        values = split_answer(answer)
        if not values:
            raise UsageError("the final answer is empty: give the answer value(s)")
        out = Path(workspace.output_path)
        shown = " | ".join(values)
        if out.is_file():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    wb = openpyxl.load_workbook(out)
            except Exception as err:
                raise UsageError(
                    f"{out.name} exists but is not a readable workbook ({type(err).__name__}); "
                    "delete it or fix it, then finish again"
                ) from None
            if ANSWER_SHEET in wb.sheetnames:
                return (
                    f"{out.name} already has a sheet {ANSWER_SHEET!r}; that sheet is checked "
                    "(the answer given with finish was not recorded)."
                )
            ws = wb.create_sheet(ANSWER_SHEET)
        else:
            wb = openpyxl.Workbook()
            ws = wb.active
            ws.title = ANSWER_SHEET
        for r, value in enumerate(values, start=1):
            ws.cell(r, 1, value)
        wb.save(out)
        return f"Answer recorded in {out.name}, sheet {ANSWER_SHEET!r}: {shown}"

    def check(
        self,
        task: Task,
        output_path: Path,
        case: int = 1,
        *,
        recalculate: bool | None = None,
        lenient: bool | None = None,
    ) -> Verdict:
        """Official denotation match of the ``answer`` sheet's column A against the gold
        values (``lenient`` has no effect here; ``recalculate`` recalculates formulas
        with LibreOffice first)."""
        recalculate = self.recalculate if recalculate is None else recalculate
        task.case(case)
        output_path = Path(output_path)
        report = CheckReport(
            task_id=task.id,
            case=case,
            output_path=str(output_path),
            answer_path=f"{self.root / QUESTIONS_FILE}",
            answer_position=ANSWER_POSITION,
            recalculated=recalculate,
        )
        if recalculate and output_path.is_file() and zipfile.is_zipfile(output_path):
            with tempfile.TemporaryDirectory(prefix="t2s-recalc-") as tmp:
                predicted, source = read_answer_values(
                    recalculate_workbook(output_path, Path(tmp)), report, shown_as=output_path.name
                )
        else:
            predicted, source = read_answer_values(output_path, report)
        gold = list(task.meta.get("target") or self.question(task.id).target)
        answers = compare_answers(gold, predicted, source=source)
        report.answers = answers
        if not report.problems and not answers.correct:
            if not predicted:
                report.problems.append(f"the {ANSWER_SHEET!r} sheet has no values in column A")
            else:
                if answers.missing:
                    report.problems.append(
                        f"{len(answers.missing)} gold value(s) not in the answer: "
                        + ", ".join(map(repr, answers.missing[:20]))
                    )
                if answers.extra:
                    report.problems.append(
                        f"{len(answers.extra)} answer value(s) not in the gold answer: "
                        + ", ".join(map(repr, answers.extra[:20]))
                    )
                if not answers.missing and not answers.extra:
                    report.problems.append(
                        f"the answer has {len(answers.predicted)} distinct value(s), "
                        f"the gold answer {len(answers.gold)}"
                    )
        passed = report.passed
        return Verdict(passed=passed, score=1.0 if passed else 0.0, report=report)

    # -- the agentic error analyst's workspace ----------------------------------------
    def has_analyst_workspace(self, task: Task) -> bool:
        """Always: every question has its gold answer."""
        return True

    def analyst_workspace(self, task: Task, case: int, dest_dir: Path) -> AnalystWorkspace:
        """``table.xlsx`` and ``question.txt`` as :meth:`prepare` writes them for the agent,
        and the gold answer as ``gold_answer.json`` (a JSON list of the values, as the
        benchmark writes them). A fix is an answer workbook (sheet ``answer``, column A)
        judged by :meth:`check`."""
        workspace = self.prepare(task, dest_dir, case)
        gold = list(task.meta.get("target") or self.question(task.id).target)
        (workspace.dir / GOLD_NAME).write_text(json.dumps(gold, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return AnalystWorkspace(
            dir=workspace.dir,
            case=case,
            inputs=[TABLE_NAME, QUESTION_NAME],
            gold=[GOLD_NAME],
            output_name=OUTPUT_NAME,
            check=self.fix_check(task, case),
            guide=AnalystGuide.load("wikitablequestions_analyst.toml"),
        )

    # -- leak guard inputs ---------------------------------------------------------
    def gold_values(self, task: Task, case: int = 1) -> list[Any]:
        return list(task.meta.get("target") or [])

    def visible_texts(self, task: Task, case: int = 1) -> list[str]:
        return ["\n".join("\t".join(row) for row in self.table_rows(task))]

    # -- caching -------------------------------------------------------------------
    def content_hash(self, split: str | None = None) -> str:
        """sha256 over the split's ids, questions, tables (by content) and gold answers."""

        h = hashlib.sha256()
        h.update(f"t2s-suite-v1\0{self.type}\0".encode())
        for qid in self.task_ids(split):
            q = self.question(qid)
            h.update(json.dumps([q.id, q.utterance, q.context, list(q.target)], ensure_ascii=False).encode())
            path = self.root / q.context
            h.update(b"\0" + (_sha256_file(path, self._hash_cache).encode() if path.is_file() else b"-"))
            h.update(b"\n")
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["tables"] = len({q.context for q in self._questions.values()})
        return info
