"""SpreadsheetBench's answer comparison, reimplemented with a per-cell report.

The literal mode reproduces the official ``evaluation.py`` (values only): both workbooks
read as openpyxl ``data_only=True`` reads them (by :mod:`t2s.tasks.xlsx_fast`, which
gives the same values faster, or by that full load: ``T2S_CHECKER_READER``);
``answer_position`` split on ``,``; a piece with ``!`` names the sheet (quotes
stripped), otherwise the answer workbook's first sheet; values normalised by
:func:`transform_value`; ``""`` equals ``None``; differing types fail. Where the official code would raise (and so score the task 0) this module records
a *problem* instead, so the verdict is the same but the report says why.

``lenient=True`` applies the normalisations documented in ``docs/checker.md``.
"""

from __future__ import annotations

import datetime
import os
import re
import threading
import warnings
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.utils.cell import get_column_letter

from t2s.errors import ConfigError, T2SError
from t2s.tasks.base import CheckReport, Mismatch
from t2s.tasks.xlsx_fast import FastWorkbook, FullLoadNeeded

MAX_ROW = 1_048_576
MAX_COL = 16_384
#: Mismatches listed in a report (the count is always exact).
MAX_LISTED_MISMATCHES = 200


# -- value normalisation (official semantics) ----------------------------------------
def _datetime_to_float(dt: datetime.datetime) -> float:
    delta = dt - datetime.datetime(1899, 12, 30)
    return delta.days + delta.seconds / 86400.0


def transform_value(v: Any) -> Any:
    """Official normalisation: numbers (and numeric strings) rounded to 2 decimals,
    datetimes to Excel serial days rounded to 0 decimals, times to ``HH:MM``."""
    if isinstance(v, (int, float)):  # bool included, as upstream
        return round(float(v), 2)
    if isinstance(v, datetime.time):
        return str(v)[:-3]
    if isinstance(v, datetime.datetime):
        return round(_datetime_to_float(v), 0)
    if isinstance(v, str):
        try:
            return round(float(v), 2)
        except ValueError:
            return v
    return v


def values_equal(expected: Any, actual: Any) -> bool:
    v1, v2 = transform_value(expected), transform_value(actual)
    if (v1 == "" or v1 is None) and (v2 == "" or v2 is None):
        return True
    if type(v1) is not type(v2):
        return False
    return v1 == v2


# -- answer positions ----------------------------------------------------------------
@dataclass
class Piece:
    """One comma-separated part of an answer position."""

    raw: str
    sheet: str | None  # None: the answer workbook's first sheet
    range: str
    error: str | None = None


def _split_pieces_lenient(text: str) -> list[str]:
    """Split on commas, except inside a quoted sheet name: a piece that starts with
    ``'`` keeps its commas until its first ``!`` (``'b2b, sez, de'!A5:V10``)."""
    parts: list[str] = []
    buf: list[str] = []
    quoted = False
    for ch in text:
        if not buf or not "".join(buf).strip():
            quoted = ch == "'" or (quoted and ch.isspace())
        if ch == "!":
            quoted = False
        if ch == "," and not quoted:
            parts.append("".join(buf))
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf))
    return parts


def parse_answer_position(position: str, *, lenient: bool = False) -> list[Piece]:
    """Split an answer position into pieces. Literal mode follows the official code;
    a piece it could not handle carries an ``error``."""
    pieces: list[Piece] = []
    raw_pieces = _split_pieces_lenient(position) if lenient else position.split(",")
    for raw in raw_pieces:
        text = raw.strip() if lenient else raw
        if lenient and not text:
            continue
        if "!" in text:
            if lenient:
                sheet, rng = text.rsplit("!", 1)
            else:
                parts = text.split("!")
                if len(parts) != 2:
                    pieces.append(
                        Piece(
                            raw,
                            None,
                            text,
                            f"piece {raw!r} has {len(parts) - 1} '!' (the official code cannot split it)",
                        )
                    )
                    continue
                sheet, rng = parts
            sheet = sheet.strip().strip("'").strip() if lenient else sheet.strip("'")
        else:
            sheet, rng = None, text
        rng = rng.strip().strip("'").strip() if lenient else rng.strip("'")
        pieces.append(Piece(raw, sheet, rng))
    if not pieces:
        pieces.append(Piece(position, None, "", f"answer position {position!r} is empty"))
    return pieces


def _official_col_num(name: str) -> int:
    num = 0
    for c in name:
        num = num * 26 + (ord(c) - ord("A") + 1)
    return num


_CELL_RE = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)$")
_LENIENT_END_RE = re.compile(r"^\$?([A-Z]*)\$?(\d*)$")


def _col_index(letters: str) -> int:
    return _official_col_num(letters.upper())


def enumerate_cells(
    rng: str, *, lenient: bool, max_row: int = 0, max_col: int = 0, extent: Callable[[], tuple[int, int]] | None = None
) -> list[tuple[int, int]]:
    """(row, column) pairs of a range in the official order (column by column).

    ``max_row``/``max_col`` bound column-only (``A:G``) and row-only (``3:5``) ranges
    in lenient mode; ``extent``, when given, is called for them instead, and only when
    the range needs them. Raises ``ValueError`` with the reason when the range cannot
    be enumerated.
    """
    if ":" not in rng:
        m = _CELL_RE.match(rng.upper() if lenient else rng)
        if not m:
            raise ValueError(f"{rng!r} is not a cell reference")
        row, col = int(m.group(2)), _col_index(m.group(1))
        if not (1 <= row <= MAX_ROW and 1 <= col <= MAX_COL):
            raise ValueError(f"{rng!r} is outside the sheet")
        return [(row, col)]
    ends = rng.split(":")
    if len(ends) != 2:
        raise ValueError(f"{rng!r} has {len(ends) - 1} ':'")
    if lenient:
        parsed = []
        for end in ends:
            m = _LENIENT_END_RE.match(end.strip().upper())
            if not m or not (m.group(1) or m.group(2)):
                raise ValueError(f"{end!r} in {rng!r} is not a cell, column or row reference")
            parsed.append((m.group(1), m.group(2)))
        (c1, r1), (c2, r2) = parsed
        # A half-written end borrows what it lacks from the other end: BD2:308 means
        # BD2:BD308 and A1:C means A1:C1.
        if c1 and r1 and not c2:
            c2 = c1
        elif c2 and r2 and not c1:
            c1 = c2
        if c1 and r1 and not r2:
            r2 = r1
        elif c2 and r2 and not r1:
            r1 = r2
        if extent is not None and not (c1 and r1):
            max_row, max_col = extent()
        cols = (_col_index(c1), _col_index(c2)) if c1 else (1, max(max_col, 1))
        rows = (int(r1), int(r2)) if r1 else (1, max(max_row, 1))
        sc, ec = sorted(cols)
        sr, er = sorted(rows)
    else:
        # The official parser: digits are the row, every other character the column.
        (s, e) = ends
        s_col = "".join(ch for ch in s if not ch.isdigit())
        s_row = "".join(ch for ch in s if ch.isdigit())
        e_col = "".join(ch for ch in e if not ch.isdigit())
        e_row = "".join(ch for ch in e if ch.isdigit())
        if not s_row or not e_row:
            raise ValueError(
                f"{rng!r} has no row number (a whole-column range cannot be enumerated by the official code)"
            )
        sc, ec = _official_col_num(s_col), _official_col_num(e_col)
        sr, er = int(s_row), int(e_row)
        if sc > ec or sr > er:
            return []  # the official code compares nothing for a reversed range
        if sc < 1 or not s_col.isalpha() or not e_col.isalpha():
            raise ValueError(f"{rng!r}: {s_col!r} or {e_col!r} is not a column name")
    if sc < 1 or ec > MAX_COL or sr < 1 or er > MAX_ROW:
        raise ValueError(f"{rng!r} is outside the sheet")
    return [(r, c) for c in range(sc, ec + 1) for r in range(sr, er + 1)]


# -- workbook loading ----------------------------------------------------------------
#: Environment variable choosing the reader: ``auto`` (the default: the fast reader,
#: the full openpyxl load wherever it cannot vouch for a workbook) or ``full`` (always
#: the full load).
READER_ENV = "T2S_CHECKER_READER"
READERS = ("auto", "full")

#: How the checks of this process were read: ``fast``, ``full`` (forced) or
#: ``fallback`` (the fast reader declined; the last reasons are in
#: :data:`recent_fallbacks`). The benchmark and the tests read them.
reader_stats: Counter = Counter()
recent_fallbacks: deque = deque(maxlen=20)


def checker_reader() -> str:
    """The reader ``T2S_CHECKER_READER`` selects (``auto`` when unset)."""
    value = os.environ.get(READER_ENV, "auto").strip().lower() or "auto"
    if value not in READERS:
        raise ConfigError(f"{READER_ENV}={value!r}: expected one of {', '.join(READERS)}")
    return value


class _WorkbookCache:
    """A small LRU of loaded workbooks, keyed by reader, path, size and mtime."""

    def __init__(self, size: int = 8):
        self.size = size
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: Path, *, fast: bool = False):
        st = path.stat()
        key = (fast, str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        if fast:
            wb = FastWorkbook(path)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wb = openpyxl.load_workbook(path, data_only=True)
        with self._lock:
            self._data[key] = wb
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return wb

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


workbook_cache = _WorkbookCache()


def load_values_workbook(path: Path, *, role: str):
    """Load ``path`` with cached values only; raise T2SError if it is not a workbook."""
    path = Path(path)
    if not path.is_file():
        raise T2SError(f"{role} file {path} does not exist")
    try:
        return workbook_cache.load(path)
    except Exception as err:  # openpyxl raises many kinds for a broken file
        raise T2SError(f"{role} file {path} is not a readable .xlsx workbook: {type(err).__name__}: {err}") from None


def _cell_value(ws, row: int, col: int) -> Any:
    # Read without creating cells (``ws[...]`` would grow the cached sheet).
    cell = ws._cells.get((row, col))
    return None if cell is None else cell.value


class _FullSheet:
    def __init__(self, ws):
        self.ws = ws

    def value(self, row: int, col: int) -> Any:
        return _cell_value(self.ws, row, col)


class _FullBook:
    """An openpyxl workbook behind the calls of :class:`FastWorkbook`."""

    def __init__(self, wb):
        self.wb = wb
        self.sheetnames = wb.sheetnames

    def is_chartsheet(self, name: str) -> bool:
        return not hasattr(self.wb[name], "_cells")

    def extent(self, name: str) -> tuple[int, int]:
        ws = self.wb[name]
        return ws.max_row, ws.max_column

    def sheet(self, name: str, box: tuple[int, int, int, int]) -> _FullSheet:
        return _FullSheet(self.wb[name])


def _open_full(path: Path, role: str) -> _FullBook:
    return _FullBook(load_values_workbook(path, role=role))


def _open_fast(path: Path, role: str) -> FastWorkbook:
    path = Path(path)
    if not path.is_file():
        raise T2SError(f"{role} file {path} does not exist")
    return workbook_cache.load(path, fast=True)


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    return str(v)


def compare_workbooks(
    answer_path: Path,
    output_path: Path,
    answer_position: str,
    *,
    lenient: bool = False,
    default_sheet: str | None = None,
    report: CheckReport,
    reader: str | None = None,
) -> CheckReport:
    """Fill ``report`` with the comparison of ``output_path`` against ``answer_path``.

    ``default_sheet`` (lenient mode only) replaces "the answer workbook's first sheet"
    for pieces that name no sheet, when the answer workbook has a sheet of that name.

    ``reader``: ``auto`` (default: ``T2S_CHECKER_READER``, else ``auto``) reads with
    the fast reader and falls back to the full openpyxl load for the whole check when
    it cannot vouch for a workbook; ``full`` always uses the full load; ``fast`` never
    falls back (it raises :class:`FullLoadNeeded`; for tests and benchmarks). The
    report is the same whichever reader produced it.
    """
    reader = reader or checker_reader()
    if reader not in ("auto", "full", "fast"):
        raise ValueError(f"unknown reader {reader!r}")
    if reader != "full":
        trial = report.model_copy(deep=True)
        try:
            _compare(
                answer_path,
                output_path,
                answer_position,
                lenient=lenient,
                default_sheet=default_sheet,
                report=trial,
                open_book=_open_fast,
            )
        except FullLoadNeeded as why:
            if reader == "fast":
                raise
            reader_stats["fallback"] += 1
            recent_fallbacks.append(str(why))
        else:
            reader_stats["fast"] += 1
            for field in type(report).model_fields:
                setattr(report, field, getattr(trial, field))
            return report
    else:
        reader_stats["full"] += 1
    return _compare(
        answer_path,
        output_path,
        answer_position,
        lenient=lenient,
        default_sheet=default_sheet,
        report=report,
        open_book=_open_full,
    )


def _compare(
    answer_path: Path,
    output_path: Path,
    answer_position: str,
    *,
    lenient: bool,
    default_sheet: str | None,
    report: CheckReport,
    open_book: Callable[[Path, str], Any],
) -> CheckReport:
    wb_gt = open_book(answer_path, "answer")
    output_path = Path(output_path)
    if not output_path.is_file():
        report.problems.append(f"output file {output_path} does not exist")
        return report
    try:
        wb_out = open_book(output_path, "output")
    except T2SError as err:
        report.problems.append(err.message)
        return report

    # First every piece's sheet and cells (problems, ranges), then each sheet's values
    # once, for the box around all its cells (the fast reader converts only those).
    compared: list[tuple[str, list[tuple[int, int]]]] = []
    for piece in parse_answer_position(answer_position, lenient=lenient):
        if piece.error:
            report.problems.append(piece.error)
            continue
        if piece.sheet is not None:
            sheet = piece.sheet
        elif lenient and default_sheet and default_sheet in wb_gt.sheetnames:
            sheet = default_sheet
            if sheet != wb_gt.sheetnames[0]:
                report.notes.append(
                    f"range {piece.range!r} names no sheet: using the task's "
                    f"answer sheet {sheet!r}, not the first sheet "
                    f"{wb_gt.sheetnames[0]!r} (lenient)"
                )
        else:
            sheet = wb_gt.sheetnames[0]
        report.ranges.append(f"'{sheet}'!{piece.range}")
        if sheet not in wb_out.sheetnames:
            report.problems.append(
                f"sheet {sheet!r} not found in the output workbook (it has: {', '.join(map(repr, wb_out.sheetnames))})"
            )
            continue
        if sheet not in wb_gt.sheetnames:
            report.problems.append(
                f"sheet {sheet!r} not found in the answer workbook (it has: {', '.join(map(repr, wb_gt.sheetnames))})"
            )
            continue
        if wb_gt.is_chartsheet(sheet) or wb_out.is_chartsheet(sheet):
            report.problems.append(f"sheet {sheet!r} is a chart sheet, it has no cells")
            continue

        def extent(sheet=sheet) -> tuple[int, int]:
            (gt_rows, gt_cols), (out_rows, out_cols) = wb_gt.extent(sheet), wb_out.extent(sheet)
            return max(gt_rows, out_rows), max(gt_cols, out_cols)

        try:
            cells = enumerate_cells(piece.range, lenient=lenient, extent=extent)
        except ValueError as err:
            report.problems.append(f"answer position piece {piece.raw!r}: {err}")
            continue
        report.cells_checked += len(cells)
        compared.append((sheet, cells))

    boxes: dict[str, tuple[int, int, int, int]] = {}
    for sheet, cells in compared:
        if cells:  # a rectangle, listed column by column: its corners come first and last
            (top, left), (bottom, right) = cells[0], cells[-1]
            r0, c0, r1, c1 = boxes.get(sheet, (top, left, bottom, right))
            boxes[sheet] = (min(r0, top), min(c0, left), max(r1, bottom), max(c1, right))
    for sheet, cells in compared:
        if not cells:
            continue
        ws_gt, ws_out = wb_gt.sheet(sheet, boxes[sheet]), wb_out.sheet(sheet, boxes[sheet])
        for row, col in cells:
            expected = ws_gt.value(row, col)
            actual = ws_out.value(row, col)
            if values_equal(expected, actual):
                continue
            report.mismatch_count += 1
            if len(report.mismatches) < MAX_LISTED_MISMATCHES:
                report.mismatches.append(
                    Mismatch(
                        sheet=sheet,
                        cell=f"{get_column_letter(col)}{row}",
                        expected=_jsonable(expected),
                        actual=_jsonable(actual),
                        expected_type=type(expected).__name__,
                        actual_type=type(actual).__name__,
                    )
                )
    return report
