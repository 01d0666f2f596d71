"""The fast reader gives the same reports as the full openpyxl load.

Workbooks built here (by openpyxl, and by hand for what openpyxl never writes: cached
formula results, shared rich text, cells without coordinates, hyperlinks on empty cells,
values inside merged ranges...) are compared, both ways, with a workbook of the same
sheets and no values and with one holding a mark in every cell, and with themselves:
every cell then shows up in the mismatch list with its value and type, so equal reports
mean equal values. Each comparison runs with ``reader="fast"`` (which raises instead of
falling back, so a silent fallback cannot make the test pass) and ``reader="full"``.
All of SpreadsheetBench-Verified is compared the same way at the end.
"""

from __future__ import annotations

import datetime
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.utils.datetime import CALENDAR_MAC_1904

from t2s.errors import ConfigError, T2SError
from t2s.tasks import CheckReport
from t2s.tasks.xlsx_compare import compare_workbooks, reader_stats, workbook_cache
from t2s.tasks.xlsx_fast import FullLoadNeeded
from tests.conftest import SPREADSHEETBENCH, needs_shared

POSITIONS = [
    "A1:H12",
    "'Data'!B2:D4,'Data'!F1:F12",
    "'Other'!A1:C3",
    "G5",
    "F5:F6",
    "A12:H12",
    "'Data'!A:H",
    "A1:H12,'Other'!A1:C3",
]


def _report(**kwargs) -> dict:
    return compare_workbooks(report=CheckReport(task_id="t"), **kwargs).model_dump(mode="json")


def assert_same_reports(answer: Path, output: Path, positions=POSITIONS, *, fallback=()) -> None:
    """Fast and full reports agree for every position, literal and lenient; the fast
    reader needs the full load only for the positions in ``fallback`` (lenient)."""
    for position in positions:
        for lenient in (False, True):
            kwargs = dict(
                answer_path=answer, output_path=output, answer_position=position, lenient=lenient, default_sheet="Data"
            )
            full = _report(reader="full", **kwargs)
            if lenient and position in fallback:
                with pytest.raises(FullLoadNeeded):
                    _report(reader="fast", **kwargs)
                assert _report(reader="auto", **kwargs) == full
                continue
            assert _report(reader="fast", **kwargs) == full, (answer.name, output.name, position, lenient)


def assert_parity_with_blank(book: Path, tmp_path: Path, positions=POSITIONS, *, fallback=("'Data'!A:H",)):
    """``book`` against itself, and both ways against a workbook with no values (every
    non-empty cell is listed) and one with a mark in every cell (every cell is listed,
    so "" and None differ)."""
    blank = _blank_book(tmp_path / f"blank-{book.name}")
    marked = _blank_book(tmp_path / f"marked-{book.name}", mark="\u2400")
    for other in (blank, marked):
        assert_same_reports(book, other, positions, fallback=fallback)
        assert_same_reports(other, book, positions, fallback=fallback)
    assert_same_reports(book, book, positions, fallback=fallback)


def _blank_book(path: Path, mark: str | None = None) -> Path:
    """A workbook with the sheets every book here has, and no values (or ``mark`` in
    every cell the positions name)."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name in ("Data", "Other"):
        ws = wb.create_sheet(name)
        for row in ws.iter_rows(min_row=1, max_row=12, max_col=8) if mark else ():
            for cell in row:
                cell.value = mark
    wb.save(path)
    return path


# -- workbooks written by openpyxl ---------------------------------------------------
def _base_book() -> openpyxl.Workbook:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    for r in range(1, 13):
        for c in range(1, 9):
            ws.cell(r, c, r * 10 + c if (r + c) % 3 else f"s{r}-{c}")
    other = wb.create_sheet("Other")
    other["A1"], other["B2"], other["C3"] = 1.5, "x", 7
    return wb


def _variant(name: str):
    def changed_values(ws):
        ws["B2"], ws["C3"], ws["D4"] = 99, "changed", -0.004

    def formulas_without_cached_values(ws):
        ws["B2"], ws["C3"] = "=A1+1", '=CONCAT("a","b")'
        ws["F5"] = "=SUM(A1:A3)"

    def dates_and_times(ws):
        ws["B2"] = datetime.date(2024, 2, 22)
        ws["B3"] = datetime.datetime(2024, 2, 22, 13, 30, 15)
        ws["B4"] = datetime.time(9, 30, 59)
        ws["C2"] = datetime.timedelta(hours=30, minutes=5)
        ws["C3"] = datetime.datetime(1900, 1, 1)
        ws["C4"] = 45344.5
        ws["C4"].number_format = "yyyy-mm-dd hh:mm"
        ws["D2"] = 0.75
        ws["D2"].number_format = "h:mm"
        ws["D3"] = 1.5
        ws["D3"].number_format = "[h]:mm:ss"

    def booleans_and_empty_strings(ws):
        ws["B2"], ws["B3"], ws["B4"] = True, False, ""
        ws["C2"], ws["C3"] = " ", None

    def numbers_as_text(ws):
        ws["B2"], ws["B3"], ws["B4"] = "12.50", "1E3", " 7 "
        ws["C2"], ws["C3"] = "0012", "12.5%"
        ws["B2"].number_format = "@"
        ws["D2"], ws["D3"] = 3.0, 1e-7

    def merged_cells(ws):
        ws.merge_cells("B2:C3")
        ws.merge_cells("E1:E12")
        ws.merge_cells("G5:H6")

    def error_values(ws):
        ws["B2"], ws["B3"], ws["B4"] = "#N/A", "#DIV/0!", "#VALUE!"
        ws["C2"] = "#REF!"

    def rich_text(ws):
        ws["B2"] = CellRichText("plain ", TextBlock(InlineFont(b=True), "bold"), " end")
        ws["B3"] = "line\nbreak and x005F_x000D_ escape"
        ws["B4"] = "ünïcødé 表"

    return {
        f.__name__: f
        for f in (
            changed_values,
            formulas_without_cached_values,
            dates_and_times,
            booleans_and_empty_strings,
            numbers_as_text,
            merged_cells,
            error_values,
            rich_text,
        )
    }[name]


VARIANTS = [
    "changed_values",
    "formulas_without_cached_values",
    "dates_and_times",
    "booleans_and_empty_strings",
    "numbers_as_text",
    "merged_cells",
    "error_values",
    "rich_text",
]


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("epoch", ["1900", "1904"])
def test_openpyxl_written_variants(tmp_path, variant, epoch):
    base_wb = _base_book()
    wb = _base_book()
    if epoch == "1904":
        base_wb.epoch = wb.epoch = CALENDAR_MAC_1904
    _variant(variant)(wb["Data"])
    _variant(variant)(wb["Other"])
    base, book = tmp_path / "base.xlsx", tmp_path / f"{variant}.xlsx"
    base_wb.save(base)
    wb.save(book)
    assert_same_reports(base, book, fallback=("'Data'!A:H",))
    assert_same_reports(book, base, fallback=("'Data'!A:H",))
    assert_parity_with_blank(book, tmp_path)


# -- workbooks written by hand: what openpyxl never writes ----------------------------
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"

STYLES = f"""<styleSheet xmlns="{MAIN}">
<numFmts count="3"><numFmt numFmtId="164" formatCode="yyyy\\-mm\\-dd"/>
<numFmt numFmtId="165" formatCode="[h]:mm:ss"/><numFmt numFmtId="166" formatCode="0.00%"/></numFmts>
<fonts count="1"><font><sz val="11"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills>
<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>
<cellXfs count="8"><extLst/><xf numFmtId="0"/><xf numFmtId="14"/><xf numFmtId="20"/><xf numFmtId="22"/>
<xf numFmtId="164"/><xf numFmtId="165"/><xf numFmtId="166"/><xf numFmtId="49"/></cellXfs>
</styleSheet>"""

SHARED = ["plain", "x005F_x000D_escaped", "", "12.5", "rich"]
SHARED_XML = (
    f'<sst xmlns="{MAIN}">'
    "<si><t>plain</t></si><si><t>x005F_x000D_escaped</t></si><si><t/></si><si><t>12.5</t></si>"
    '<si><r><rPr><b/></rPr><t>ri</t></r><r><t xml:space="preserve">ch </t></r>'
    '<rPh sb="0" eb="1"><t>phonetic</t></rPh></si></sst>'
)

# Cells of every type the format has, in the places openpyxl's reader treats specially.
DATA_SHEET = f"""<worksheet xmlns="{MAIN}" xmlns:r="{REL}"><sheetData>
<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1" t="s"><v>2</v></c>
 <c r="D1" t="s"><v>3</v></c><c r="E1" t="s"><v>4</v></c><c r="F1"><v>42</v></c><c r="G1"><v>4.20</v></c>
 <c r="H1"><v>1E3</v></c></row>
<row r="2"><c r="A2"><f>F1*2</f><v>84</v></c><c r="B2" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>
 <c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c><c r="D2" t="e"><v>#N/A</v></c><c r="E2" t="b"><v>1</v></c>
 <c r="F2" t="b"><v>0</v></c><c r="G2"><f>NOW()</f></c><c r="H2" t="str"><f>""</f><v></v></c>
 <c r="E12"><v>-12</v></c></row>
<row r="3"><c r="A3" s="1"><v>45344</v></c><c r="B3" s="2"><v>0.5</v></c><c r="C3" s="3"><v>45344.75</v></c>
 <c r="D3" s="4"><v>1</v></c><c r="E3" s="5"><v>1.25</v></c><c r="F3" s="6"><v>0.125</v></c>
 <c r="G3" s="7"><v>3</v></c><c r="H3" s="1"><v>99999999</v></c></row>
<row r="4"><c r="A4" t="inlineStr"><is><t>inline</t></is></c><c r="B4" t="inlineStr"><is><t/></is></c>
 <c r="C4" t="inlineStr"><is><r><t>in</t></r><r><rPr><i/></rPr><t>line rich</t></r></is></c>
 <c r="D4" t="inlineStr"><is><t xml:space="preserve"> spaced </t></is></c>
 <c r="E4" t="d"><v>2024-02-22T10:00:00</v></c><c r="F4" t="inlineStr"></c><c r="G4" t="n"></c>
 <c r="H4" t="str"><v>7.0</v></c></row>
<row r="5"><c><v>1</v></c><c><v>2</v></c><c r="E5"><v>5</v></c><c><v>6</v></c></row>
<row><c r="A6"><v>60</v></c><c><v>61</v></c></row>
<row r="9"><c r="A9"><v>90</v></c><c r="B9"><v>91</v></c><c r="C9"><v>92</v></c></row>
<row r="7"><c r="A7"><v>70</v></c><c r="A9"><v>-90</v></c><c r="B7"><v>71</v></c></row>
<row r="8"><c r="A8"><v>80</v></c><c r="A8"><v>81</v></c><c r="B8"><v>82</v></c><c r="C8"/>
 <c r="D8"/><c r="E8"><v>85</v></c></row>
<row r="10"><c r="A10"><v>100</v></c><c r="B10"><v>101</v></c><c r="C10"><v>102</v></c><c r="D10"><v>103</v></c></row>
<row r="11"><c r="A11"><v>110</v></c><c r="D11" t="s"><v>0</v></c></row>
<row r="12"><c r="G12"><v>127</v></c></row>
<row r="14"><c r="C2"><v>-2</v></c><c r="C14"><v>3</v></c></row>
</sheetData>
<mergeCells count="2"><mergeCell ref="A10:B11"/><mergeCell ref="D10:D11"/></mergeCells>
<hyperlinks><hyperlink ref="C8" r:id="rId1"/><hyperlink ref="D8" location="Other!A1" display="go"/>
<hyperlink ref="F10:G11" location="Data!A1"/><hyperlink ref="B11" r:id="rId1"/>
<hyperlink ref="H12" r:id="rId1"/><hyperlink ref="A1" location="Other!B2"/></hyperlinks>
</worksheet>"""

OTHER_SHEET = f"""<worksheet xmlns="{MAIN}"><sheetData>
<row r="1"><c r="A1"><v>1.5</v></c></row><row r="2"><c r="B2" t="s"><v>4</v></c></row>
<row r="3"><c r="C3" s="3"><v>60000.5</v></c></row></sheetData></worksheet>"""


def raw_book(
    path: Path, *, data=DATA_SHEET, other=OTHER_SHEET, styles=STYLES, date1904=False, chartsheet=False
) -> Path:
    sheets = [("Data", "worksheets/sheet1.xml", "worksheet"), ("Other", "worksheets/sheet2.xml", "worksheet")]
    files = {
        "xl/worksheets/sheet1.xml": data,
        "xl/worksheets/sheet2.xml": other,
        "xl/styles.xml": styles,
        "xl/sharedStrings.xml": SHARED_XML,
        "xl/worksheets/_rels/sheet1.xml.rels": f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/hyperlink" '
        'Target="https://example.com/target" TargetMode="External"/></Relationships>',
    }
    if chartsheet:
        sheets.append(("Chart", "chartsheets/sheet1.xml", "chartsheet"))
        files["xl/chartsheets/sheet1.xml"] = (
            f'<chartsheet xmlns="{MAIN}"><sheetViews><sheetView workbookViewId="0"/></sheetViews></chartsheet>'
        )
    overrides = "".join(
        f'<Override PartName="/xl/{target}" ContentType="{CT}.{kind}+xml"/>' for _, target, kind in sheets
    )
    files["[Content_Types].xml"] = (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{CT}.sheet.main+xml"/>{overrides}'
        f'<Override PartName="/xl/styles.xml" ContentType="{CT}.styles+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{CT}.sharedStrings+xml"/></Types>'
    )
    files["_rels/.rels"] = (
        f'<Relationships xmlns="{PKG}"><Relationship Id="rId1" '
        f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    pr = '<workbookPr date1904="1"/>' if date1904 else "<workbookPr/>"
    files["xl/workbook.xml"] = (
        f'<workbook xmlns="{MAIN}" xmlns:r="{REL}">{pr}'
        "<sheets>"
        + "".join(f'<sheet name="{name}" sheetId="{n}" r:id="rId{n}"/>' for n, (name, _, _) in enumerate(sheets, 1))
        + "</sheets></workbook>"
    )
    files["xl/_rels/workbook.xml.rels"] = (
        f'<Relationships xmlns="{PKG}">'
        + "".join(
            f'<Relationship Id="rId{n}" Type="{REL}/{kind}" Target="{target}"/>'
            for n, (_, target, kind) in enumerate(sheets, 1)
        )
        + f'<Relationship Id="rId90" Type="{REL}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId91" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    )
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            if text is not None:
                z.writestr(name, text)
    return path


@pytest.mark.parametrize("date1904", [False, True])
@pytest.mark.filterwarnings("ignore::UserWarning")  # openpyxl's, on the out-of-range date
def test_hand_written_cells_read_the_same(tmp_path, date1904):
    book = raw_book(tmp_path / "raw.xlsx", date1904=date1904)
    assert_parity_with_blank(book, tmp_path)
    # the workbook really exercises what it claims: values openpyxl gives these cells
    full = openpyxl.load_workbook(book, data_only=True)["Data"]
    assert full["C8"].value == "https://example.com/target"  # a hyperlink fills an empty cell
    assert full["D8"].value == "Other!A1" and full["H12"].value is not None
    assert full["B10"].value is None and full["A10"].value == 100  # merged: only the top-left keeps its value
    assert full["A9"].value == -90 and full["A8"].value == 81  # a later cell wins
    assert full["C2"].value == -2 and full["E12"].value == -12  # even from another row
    assert full["C3"].value == (
        datetime.datetime(2028, 2, 23, 18, 0) if date1904 else datetime.datetime(2024, 2, 22, 18, 0)
    )  # the 1904 date system
    assert full["B5"].value == 2 and full["B6"].value == 61  # cells and rows without r
    assert isinstance(full["A3"].value, datetime.datetime) and isinstance(full["E3"].value, datetime.timedelta)
    assert full["E1"].value == "rich " and full["B1"].value == "x000D_escaped"
    assert full["D2"].value == "#N/A" and full["G2"].value is None and full["E2"].value is True


def test_a_stylesheet_of_another_shape_reads_the_same(tmp_path):
    """No cell formats, no stylesheet (openpyxl keeps its defaults), formats in another namespace."""
    bare = STYLES.split("<cellXfs")[0] + "</styleSheet>"
    data, other = (re.sub(r' s="\d+"', "", sheet) for sheet in (DATA_SHEET, OTHER_SHEET))
    for name, styles in (("bare.xlsx", bare), ("none.xlsx", None)):
        assert_parity_with_blank(raw_book(tmp_path / name, styles=styles, data=data, other=other), tmp_path)
    prefixed = STYLES.replace("<cellXfs", '<x:cellXfs xmlns:x="urn:other"').replace("</cellXfs>", "</x:cellXfs>")
    assert_parity_with_blank(raw_book(tmp_path / "prefixed.xlsx", styles=prefixed), tmp_path)


def test_what_the_fast_reader_leaves_to_the_full_load(tmp_path):
    """A chart sheet, a cell referring to a style that does not exist, a cell openpyxl
    cannot read: the fast reader declines, and the automatic reader's report is the
    full load's."""
    cases = {
        "chart.xlsx": raw_book(tmp_path / "chart.xlsx", chartsheet=True),
        "bad-style.xlsx": raw_book(tmp_path / "bad-style.xlsx", data=DATA_SHEET.replace('s="7"', 's="70"')),
        "bad-number.xlsx": raw_book(
            tmp_path / "bad-number.xlsx", data=DATA_SHEET.replace("<v>4.20</v>", "<v>4,20</v>")
        ),
    }
    blank = _blank_book(tmp_path / "blank.xlsx")
    for name, book in cases.items():
        for answer, output in ((book, blank), (blank, book)):
            kwargs = dict(answer_path=answer, output_path=output, answer_position="A1:H12")
            workbook_cache.clear()
            with pytest.raises(FullLoadNeeded):
                _report(reader="fast", **kwargs)
            try:
                full = _report(reader="full", **kwargs)
            except T2SError as err:  # an unreadable answer
                with pytest.raises(T2SError, match="not a readable") as fast_err:
                    _report(reader="auto", **kwargs)
                assert str(fast_err.value) == str(err)
            else:
                assert _report(reader="auto", **kwargs) == full, name


def test_the_reader_switch(tmp_path, monkeypatch):
    book = raw_book(tmp_path / "raw.xlsx")
    reader_stats.clear()
    monkeypatch.setenv("T2S_CHECKER_READER", "full")
    assert _report(answer_path=book, output_path=book, answer_position="A1:C3")
    assert reader_stats == {"full": 1}
    monkeypatch.setenv("T2S_CHECKER_READER", "auto")
    _report(answer_path=book, output_path=book, answer_position="A1:C3")
    assert reader_stats == {"full": 1, "fast": 1}
    monkeypatch.setenv("T2S_CHECKER_READER", "quick")
    with pytest.raises(ConfigError, match="T2S_CHECKER_READER='quick'"):
        _report(answer_path=book, output_path=book, answer_position="A1:C3")


# -- all of SpreadsheetBench-Verified -------------------------------------------------
CHUNKS = 16
#: The checks the fast reader leaves to the full load: lenient whole-column ranges
#: (``A:G``) are enumerated up to the sheets' used range.
VERIFIED_FALLBACKS = {("283-32", "golden", True), ("283-32", "init", True)}


@pytest.fixture(scope="module")
def verified():
    from t2s.tasks import load_suite

    return load_suite(SPREADSHEETBENCH)


@pytest.mark.slow
@needs_shared(SPREADSHEETBENCH)
@pytest.mark.parametrize("k", range(CHUNKS))
def test_verified_reports_are_the_same_with_both_readers(verified, k):
    """Every Verified task, golden and untouched input against the golden, literal and
    lenient: the same report from the fast reader and the full load."""
    differ, fell_back = [], set()
    for tid in verified.task_ids()[k::CHUNKS]:
        task = verified.task(tid)
        case = task.cases[0]
        sheet = task.meta.get("answer_sheet")
        default_sheet = sheet if isinstance(sheet, str) and "," not in sheet else None
        for kind, output in (("golden", case.answer_path), ("init", case.input_path)):
            for lenient in (False, True):
                kwargs = dict(
                    answer_path=case.answer_path,
                    output_path=output,
                    lenient=lenient,
                    answer_position=task.answer_position,
                    default_sheet=default_sheet,
                )
                full = _report(reader="full", **kwargs)
                try:
                    fast = _report(reader="fast", **kwargs)
                except FullLoadNeeded:
                    fell_back.add((tid, kind, lenient))
                    continue
                if fast != full:
                    differ.append((tid, kind, lenient))
        workbook_cache.clear()
    assert differ == []
    assert fell_back == {f for f in VERIFIED_FALLBACKS if f[0] in verified.task_ids()[k::CHUNKS]}
