"""The checker: official value semantics, answer positions, the per-cell report."""

from __future__ import annotations

import datetime
import json

import pytest

from t2s.errors import T2SError
from t2s.tasks import CheckReport
from t2s.tasks.xlsx_compare import (
    compare_workbooks,
    enumerate_cells,
    parse_answer_position,
    transform_value,
    values_equal,
)
from tests.test_tasks_helpers import write_book


@pytest.mark.parametrize(
    "expected, actual, equal",
    [
        (1, 1.0, True),
        (1.004, 1.0, True),  # rounded to 2 decimals
        (1.006, 1.0, False),
        ("3.50", 3.5, True),  # numeric strings become numbers
        ("abc", "abc", True),
        ("abc", "ABC", False),  # other strings compare exactly
        ("", None, True),
        (None, "", True),
        (0, None, False),
        ("1", "x", False),
        (True, 1, True),  # bool is an int to the official code
        ("x", 1, False),  # differing types fail
        (datetime.datetime(2024, 2, 22, 11, 0), 45344.0, True),  # serial day, 0 decimals
        (datetime.datetime(2024, 2, 22, 13, 0), 45344.0, False),  # 45344.54 rounds up
        (datetime.datetime(2024, 2, 22), datetime.datetime(2024, 2, 22, 11, 0), True),
        (datetime.datetime(2024, 2, 22), datetime.datetime(2024, 2, 23), False),
        (datetime.time(9, 30), "09:30", True),
        (datetime.time(9, 30), datetime.time(9, 30, 59), True),
        (datetime.time(9, 30), datetime.time(9, 31), False),
    ],
)
def test_value_semantics(expected, actual, equal):
    assert values_equal(expected, actual) is equal


def test_transform_value_matches_the_summary():
    assert transform_value(2) == 2.0 and isinstance(transform_value(2), float)
    assert transform_value(" 12.5 ") == 12.5
    assert transform_value("12.5%") == "12.5%"
    assert transform_value(datetime.time(7, 5)) == "07:05"
    assert transform_value(datetime.datetime(1900, 1, 1)) == 2.0


def test_parse_literal_follows_the_official_split():
    pieces = parse_answer_position("'S 1'!A1:B2,C3,Sheet2'!D4")
    assert [(p.sheet, p.range) for p in pieces] == [("S 1", "A1:B2"), (None, "C3"), ("Sheet2", "D4")]
    # a comma inside a sheet name breaks the literal split
    broken = parse_answer_position("'b2b, sez'!A5:B6")
    assert [(p.sheet, p.range) for p in broken] == [(None, "b2b"), (" sez", "A5:B6")]


def test_parse_lenient_normalisations():
    lp = parse_answer_position("'b2b, sez, de'!A5:V10", lenient=True)
    assert [(p.sheet, p.range) for p in lp] == [("b2b, sez, de", "A5:V10")]
    lp = parse_answer_position("G4:G6, G11:G13, G20:G22", lenient=True)
    assert [p.range for p in lp] == ["G4:G6", "G11:G13", "G20:G22"]
    lp = parse_answer_position("\xa0'Sheet1'!C2:C3", lenient=True)
    assert [(p.sheet, p.range) for p in lp] == [("Sheet1", "C2:C3")]
    lp = parse_answer_position("OUT CAS'!A2:C3,'OUT CAS'!E2", lenient=True)
    assert [(p.sheet, p.range) for p in lp] == [("OUT CAS", "A2:C3"), ("OUT CAS", "E2")]


def test_enumerate_cells_literal_and_lenient():
    assert enumerate_cells("B2:C3", lenient=False) == [(2, 2), (3, 2), (2, 3), (3, 3)]
    assert enumerate_cells("D1", lenient=False) == [(1, 4)]
    with pytest.raises(ValueError, match="no row number"):
        enumerate_cells("A:G", lenient=False)
    with pytest.raises(ValueError, match="not a column name"):
        enumerate_cells(" G11:G13", lenient=False)
    assert enumerate_cells("BD2:308", lenient=False) == []  # official: nothing compared
    assert enumerate_cells("A:B", lenient=True, max_row=2) == [(1, 1), (2, 1), (1, 2), (2, 2)]
    assert enumerate_cells("BD2:308", lenient=True) == [(r, 56) for r in range(2, 309)]
    assert enumerate_cells("$b$2:c2", lenient=True) == [(2, 2), (2, 3)]
    with pytest.raises(ValueError):
        enumerate_cells("A1:B2:C3", lenient=True)


def _report():
    return CheckReport(task_id="t")


def test_report_lists_every_mismatch_with_types(tmp_path):
    answer = write_book(
        tmp_path / "ans.xlsx", {"Data": {"A1": 1, "A2": "x", "B1": 2.5, "B2": None}, "Other": {"A1": 9}}
    )
    output = write_book(
        tmp_path / "out.xlsx", {"Data": {"A1": 1.0, "A2": "y", "B1": "2.5", "B2": 0}, "Other": {"A1": 9}}
    )
    r = compare_workbooks(answer, output, "A1:B2", report=_report())
    assert not r.passed
    assert r.cells_checked == 4 and r.mismatch_count == 2
    got = {(m.sheet, m.cell): (m.expected, m.actual, m.expected_type, m.actual_type) for m in r.mismatches}
    assert got == {("Data", "A2"): ("x", "y", "str", "str"), ("Data", "B2"): (None, 0, "NoneType", "int")}
    text = r.render()
    assert "Data!A2" in text and "FAIL" in text
    json.loads(r.model_dump_json())  # JSON-able


def test_first_sheet_of_the_answer_is_the_default(tmp_path):
    answer = write_book(tmp_path / "ans.xlsx", {"First": {"A1": 1}, "Second": {"A1": 2}})
    # the output's sheet order differs: the answer's first sheet name still decides
    output = write_book(tmp_path / "out.xlsx", {"Second": {"A1": 2}, "First": {"A1": 1}})
    assert compare_workbooks(answer, output, "A1", report=_report()).passed
    r = compare_workbooks(answer, output, "'Second'!A1", report=_report())
    assert r.passed and r.ranges == ["'Second'!A1"]


def test_missing_sheet_missing_file_and_corrupt_output_fail_with_a_reason(tmp_path):
    answer = write_book(tmp_path / "ans.xlsx", {"S": {"A1": 1}, "T": {"A1": 1}})
    output = write_book(tmp_path / "out.xlsx", {"S": {"A1": 1}})
    r = compare_workbooks(answer, output, "'T'!A1", report=_report())
    assert not r.passed and "sheet 'T' not found in the output workbook" in r.problems[0]
    r = compare_workbooks(answer, tmp_path / "none.xlsx", "A1", report=_report())
    assert not r.passed and "does not exist" in r.problems[0]
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"this is not a zip file")
    r = compare_workbooks(answer, bad, "A1", report=_report())
    assert not r.passed and "not a readable .xlsx" in r.problems[0]
    with pytest.raises(T2SError, match=r"answer file .* not a readable"):
        compare_workbooks(bad, output, "A1", report=_report())


def test_lenient_vs_literal_on_malformed_positions(tmp_path):
    cells = {"G4": 1, "G11": 2, "G20": 3}
    answer = write_book(tmp_path / "ans.xlsx", {"b2b, sez": cells, "Sheet1": cells})
    same = write_book(tmp_path / "same.xlsx", {"b2b, sez": cells, "Sheet1": cells})
    wrong = write_book(tmp_path / "wrong.xlsx", {"b2b, sez": {"G4": 1}, "Sheet1": {"G4": 1}})
    for position in ("'b2b, sez'!G4:G20", "G4, G11, G20", "\xa0'Sheet1'!G4:G20", "'Sheet1'!G:G"):
        literal = compare_workbooks(answer, same, position, report=_report())
        assert not literal.passed and literal.problems, position
        assert compare_workbooks(answer, same, position, lenient=True, report=_report()).passed, position
        assert not compare_workbooks(answer, wrong, position, lenient=True, report=_report()).passed


def test_lenient_answer_sheet_for_unqualified_ranges(tmp_path):
    answer = write_book(tmp_path / "ans.xlsx", {"Data": {"A1": 1}, "Result": {"A1": "done"}})
    untouched = write_book(tmp_path / "in.xlsx", {"Data": {"A1": 1}, "Result": {}})
    assert compare_workbooks(answer, untouched, "A1", report=_report()).passed  # literal quirk
    r = compare_workbooks(answer, untouched, "A1", lenient=True, default_sheet="Result", report=_report())
    assert not r.passed and r.mismatches[0].sheet == "Result" and r.notes


def test_mismatch_list_is_capped_but_counted(tmp_path):
    answer = write_book(tmp_path / "ans.xlsx", {"S": {f"A{i}": i for i in range(1, 301)}})
    output = write_book(tmp_path / "out.xlsx", {"S": {}})
    r = compare_workbooks(answer, output, "A1:A300", report=_report())
    assert r.mismatch_count == 300 and len(r.mismatches) == 200
    assert "... 270 more" in r.render(max_rows=30)
