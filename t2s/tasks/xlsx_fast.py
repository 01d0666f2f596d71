"""The checker's fast reader: the cached values of the cells a check compares.

``openpyxl.load_workbook(path, data_only=True)`` (the official semantics) parses every
sheet, makes a ``Cell`` per cell and expands the whole stylesheet: on one style-heavy
Verified workbook the stylesheet alone takes 10-20 s. A check needs the values of a few
ranges. This reader runs **openpyxl's own code** wherever a value is decided, on less:

- the package manifest, the workbook part (sheet list and order, 1904 date system) and
  the shared strings: ``ExcelReader``'s own methods (each shared string is converted by
  openpyxl's ``Text`` when a cell first refers to it);
- of the stylesheet, the number formats (openpyxl's ``NumberFormatList``) and each cell
  format's number format id, from which openpyxl's ``is_date_format`` and
  ``is_timedelta_format`` decide which cell styles are dates and durations, as
  ``Stylesheet._normalise_numbers`` does;
- of each sheet a check reads, the cells inside the box around the compared cells:
  ``WorkSheetParser.parse_cell`` converts them, then openpyxl's ``WorksheetReader``
  binds merged ranges (a cell of a merged range other than its top-left one reads as
  None) and hyperlinks (an empty linked cell reads as the link's target).

What it skips carries no value: other sheets, cells outside the box, fonts, fills,
borders and named styles, conditional formats, row and column formats, comments,
tables, drawings, pivot tables, defined names, document properties, external links.
openpyxl refuses a workbook when one of those is malformed; this reader does not see it
(``T2S_CHECKER_READER=full`` restores the refusal).

Whatever it cannot vouch for raises :class:`FullLoadNeeded`, and the checker uses the
full load for that check: any error while reading (the full load then reports it in its
own words), a chart sheet, a sheet name openpyxl would rename or refuse, a range whose
cells depend on a sheet's used range (lenient ``A:G``).
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

from openpyxl.cell import Cell
from openpyxl.cell.text import Text
from openpyxl.packaging.relationship import (
    RelationshipList,
    get_dependents,
    get_rels_path,
)
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.numbers import (
    NumberFormatList,
    builtin_format_code,
    is_date_format,
    is_timedelta_format,
)
from openpyxl.utils.cell import coordinate_to_tuple
from openpyxl.workbook.child import INVALID_TITLE_REGEX
from openpyxl.worksheet._reader import WorkSheetParser, WorksheetReader
from openpyxl.xml.constants import ARC_STYLE, SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import fromstring, iterparse, localname

_NS = "{" + SHEET_MAIN_NS + "}"  # ElementTree's {namespace}tag names
_STRING_TAG = _NS + "si"
_INLINE_STRING = _NS + "is"
_TEXT_TAG = _NS + "t"


class FullLoadNeeded(Exception):
    """The fast reader cannot vouch for this workbook; use the full openpyxl load."""


def _apply_value_styles(archive, wb) -> None:
    """What openpyxl's ``apply_stylesheet`` decides about values: which cell styles are
    dates and durations (``Stylesheet._normalise_numbers``), and how many cell styles
    there are (a cell referring to a missing one fails the load).

    The rest of the stylesheet (fonts, fills, borders, named styles, every attribute of
    every cell format) is what makes style-heavy workbooks slow: one Verified workbook
    has 49,303 named styles and takes 10-20 s to expand.
    """
    try:
        src = archive.read(ARC_STYLE)
    except KeyError:
        return  # no stylesheet: openpyxl keeps its defaults too
    parts: dict[str, Any] = {}
    for el in fromstring(src):  # as Serialisable.from_tree dispatches them: by local name, the last wins
        if localname(el) in ("numFmts", "cellXfs"):
            parts[localname(el)] = el
    # CellStyleList keeps the children named xf; CellStyle reads numFmtId with int(), 0 when absent
    ids = [int(xf.get("numFmtId", 0)) for xf in parts.get("cellXfs", ()) if localname(xf) == "xf"]
    if not ids:
        return  # no cell formats: apply_stylesheet keeps openpyxl's defaults
    custom = {}
    if "numFmts" in parts:
        custom = {f.numFmtId: f.formatCode for f in NumberFormatList.from_tree(parts["numFmts"]).numFmt}
    formats = [custom[i] if i in custom else builtin_format_code(i) for i in ids]
    wb._cell_styles = ids  # only looked up by index, as openpyxl looks up a cell's style
    wb._date_formats = {n for n, fmt in enumerate(formats) if is_date_format(fmt)}
    wb._timedelta_formats = {n for n, fmt in enumerate(formats) if is_timedelta_format(fmt)}


#: A rectangle of cells: (min_row, min_col, max_row, max_col), 1-based, inclusive.
Box = tuple[int, int, int, int]


class _LazyStrings:
    """openpyxl's shared string table (``read_string_table``), each string converted by
    the same code when a cell first refers to it."""

    def __init__(self, src):
        self._nodes = [node for _, node in iterparse(src) if node.tag == _STRING_TAG]
        self._texts: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._nodes)

    def __getitem__(self, index: int) -> str:
        node = self._nodes[index]  # the IndexError openpyxl's list would raise
        key = index % len(self._nodes)
        if key not in self._texts:
            self._texts[key] = Text.from_tree(node).content.replace("x005F_", "")
        return self._texts[key]


def _plain_inline_text(element) -> str | None:
    """The text openpyxl reads from an inline string that is one plain ``<t>``
    (``Text.from_tree(child).content``: the ``<t>``'s text, "" when it has none), or
    None when the string has runs, phonetics or attributes, for openpyxl to read."""
    child = element.find(_INLINE_STRING)
    if child is None or len(child) != 1 or child[0].tag != _TEXT_TAG:
        return None
    if any(not key.startswith("{") for key in child.attrib):
        return None  # openpyxl passes these to Text() (and fails)
    return child[0].text or ""


class _BoxParser(WorkSheetParser):
    """openpyxl's sheet parser, converting only the cells inside ``box``.

    A cell outside it is located (a cell without ``r`` is numbered by openpyxl, after
    its left neighbour) and skipped: ``parse_row`` lists None for it; a row outside it
    is skipped whole when all its cells carry its own row number. A plain inline
    string (what openpyxl itself writes) is read without building openpyxl's ``Text``
    object, which costs more than the rest of the cell.
    """

    box: Box = (1, 1, 0, 0)

    def parse_row(self, row):
        number = row.get("r")
        if number and number.isascii() and number.isdigit():
            min_row, _, max_row, _ = self.box
            if not min_row <= int(number) <= max_row:
                size = len(number)
                for el in row:
                    # openpyxl reads "letters, then digits" as (digits, letters)
                    coordinate = el.get("r")
                    if not (
                        coordinate
                        and len(coordinate) > size
                        and coordinate.endswith(number)
                        and coordinate[:-size].isalpha()
                    ):
                        break  # a cell that may be on another row: read the row cell by cell
                else:  # a row outside the box whose cells all say they are on it: nothing to read
                    self.row_counter, self.col_counter = int(number), 0
                    return self.row_counter, []
        return super().parse_row(row)

    def parse_cell(self, element):
        coordinate = element.get("r")
        if coordinate:
            row, column = coordinate_to_tuple(coordinate)
            min_row, min_col, max_row, max_col = self.box
            if not (min_row <= row <= max_row and min_col <= column <= max_col):
                self.col_counter = column
                return None
            if element.get("t") == "inlineStr":
                text = _plain_inline_text(element)
                if text is not None:  # what WorkSheetParser.parse_cell returns for it
                    self.col_counter = column
                    style_id = element.get("s", 0)
                    if style_id:
                        style_id = int(style_id)
                    return {"row": row, "column": column, "value": text, "data_type": "s", "style_id": style_id}
        return super().parse_cell(element)


class _ValuesReader(WorksheetReader):
    """openpyxl's worksheet reader for the cells of one box, keeping values, not cells.

    Merged ranges and hyperlinks (a hyperlink fills an empty linked cell with its
    target) are bound by openpyxl's own code, in its order, on ``Cell`` objects made
    for the box's values when the sheet has any. Each of these bindings sets a cell
    according to that cell alone, so the box comes out as in the full load. Cells keep
    the default style: only the stylesheet's value parts were read.
    """

    #: Set by ``WorksheetReader.__init__``; replaced by a :class:`_BoxParser` here.
    parser: WorkSheetParser

    def __init__(self, ws, src, shared_strings, box: Box):
        super().__init__(ws, src, shared_strings, True, False)
        parser = self.parser
        self.parser = _BoxParser(
            src,
            shared_strings,
            parser.data_only,
            parser.epoch,
            parser.date_formats,
            parser.timedelta_formats,
            parser.rich_text,
        )
        self.parser.box = box
        self.values: dict[tuple[int, int], Any] = {}

    def bind_all(self) -> None:
        # The other bindings (conditional formats, row and column formats, print
        # settings, tables) change no value.
        self.bind_cells()
        if self.parser.merged_cells is not None or self.parser.hyperlinks.hyperlink:
            cells = self.ws._cells
            for (row, column), value in self.values.items():
                cell = cells[(row, column)] = Cell(self.ws, row=row, column=column)
                cell._value = value
            self.bind_merged_cells()
            self.bind_hyperlinks()
            self.values = {coord: cell.value for coord, cell in cells.items()}

    def bind_cells(self) -> None:
        styles = self.ws.parent._cell_styles
        values = self.values
        for _, row in self.parser.parse():
            for cell in row:
                if cell is None:
                    continue  # outside the box
                styles[cell["style_id"]]  # openpyxl looks the style up here: a bad index fails the load
                values[(cell["row"], cell["column"])] = cell["value"]  # a repeated cell: the last wins


class SheetValues:
    """The values of one sheet's box, as the full load's ``ws._cells[(row, col)].value``."""

    def __init__(self, title: str, values: dict[tuple[int, int], Any]):
        self.title = title
        self._values = values

    def value(self, row: int, col: int) -> Any:
        return self._values.get((row, col))


class FastWorkbook:
    """The sheet names of a workbook and, on demand, the values of one sheet."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._sheets: dict[tuple[str, Box], SheetValues | FullLoadNeeded] = {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # external links carry cached copies of other workbooks, never our values
                reader = ExcelReader(self.path, data_only=True, keep_links=False)
                reader.read_manifest()
                strings = reader.package.find(SHARED_STRINGS)  # as ExcelReader.read_strings
                if strings is not None:
                    with reader.archive.open(strings.PartName[1:]) as src:
                        reader.shared_strings = _LazyStrings(src)
                reader.read_workbook()
                _apply_value_styles(reader.archive, reader.wb)
                parts = [(sheet, rel) for sheet, rel in reader.parser.find_sheets() if rel.target in reader.valid_files]
        except Exception as err:  # the full load reports it in its own words
            raise FullLoadNeeded(f"{type(err).__name__}: {err}") from None
        self._reader = reader
        self._parts = {sheet.name: (sheet, rel) for sheet, rel in parts}
        self.sheetnames = [sheet.name for sheet, _ in parts]
        for sheet, rel in parts:
            if "chartsheet" in rel.Type:
                raise FullLoadNeeded(f"{sheet.name!r} is a chart sheet")
            if not sheet.name or INVALID_TITLE_REGEX.search(sheet.name):
                raise FullLoadNeeded(f"openpyxl refuses the sheet name {sheet.name!r}")
        if len({n.lower() for n in self.sheetnames}) != len(self.sheetnames):
            raise FullLoadNeeded("two sheet names differ only in case (openpyxl renames one)")

    def is_chartsheet(self, name: str) -> bool:
        return False  # a workbook with a chart sheet is left to the full load

    def extent(self, name: str) -> tuple[int, int]:
        # The full load's max_row/max_column also count the empty cells that comments
        # and hyperlinks create anywhere in the sheet: let the full load answer.
        raise FullLoadNeeded(f"a range on sheet {name!r} depends on the sheet's used range")

    def sheet(self, name: str, box: Box) -> SheetValues:
        """The values of sheet ``name`` inside ``box`` (None outside it)."""
        key = (name, box)
        with self._lock:
            if key not in self._sheets:
                try:
                    self._sheets[key] = self._read_sheet(name, box)
                except FullLoadNeeded as err:
                    self._sheets[key] = err
            found = self._sheets[key]
        if isinstance(found, FullLoadNeeded):
            raise found
        return found

    def _read_sheet(self, name: str, box: Box) -> SheetValues:
        reader = self._reader
        _, rel = self._parts[name]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rels = RelationshipList()
                rels_path = get_rels_path(rel.target)
                if rels_path in reader.valid_files:
                    rels = get_dependents(reader.archive, rels_path)
                ws = reader.wb.create_sheet(name)
                try:
                    ws._rels = rels
                    with reader.archive.open(rel.target) as src:
                        sheet_reader = _ValuesReader(ws, src, reader.shared_strings, box)
                        sheet_reader.bind_all()
                finally:
                    reader.wb.remove(ws)  # keep the workbook's sheet list to the ones being read
        except Exception as err:
            raise FullLoadNeeded(f"sheet {name!r}: {type(err).__name__}: {err}") from None
        return SheetValues(name, sheet_reader.values)
