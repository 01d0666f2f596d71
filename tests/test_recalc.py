"""Formula recalculation through headless LibreOffice (real soffice; CI installs it)."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openpyxl
import pytest

from t2s.errors import T2SError
from t2s.tasks import load_suite
from t2s.tasks.recalc import recalculate_workbook
from tests.test_tasks_helpers import make_suite

needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="soffice not installed")


def _formula_book(path: Path, a: int, b: int) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws["A1"], ws["B1"], ws["C1"] = "a", "b", "sum"
    ws["A2"], ws["B2"], ws["C2"] = a, b, "=A2+B2"
    ws["A3"], ws["B3"], ws["C3"] = 2, 3, "=SUM(A3:B3)"
    wb.save(path)
    return path


def _cached(path: Path, cell: str):
    return openpyxl.load_workbook(path, data_only=True)["Sheet1"][cell].value


@needs_soffice
def test_formula_reads_none_before_and_value_after(tmp_path):
    src = _formula_book(tmp_path / "f.xlsx", 40, 2)
    assert _cached(src, "C2") is None
    out = recalculate_workbook(src, tmp_path / "out")
    assert out.parent == tmp_path / "out" and out.name == "f.xlsx"
    assert _cached(out, "C2") == 42 and _cached(out, "C3") == 5
    assert _cached(src, "C2") is None  # input untouched
    # formulas survive the round trip
    assert openpyxl.load_workbook(out)["Sheet1"]["C2"].value == "=A2+B2"


@needs_soffice
def test_parallel_recalculations_do_not_collide(tmp_path):
    books = [_formula_book(tmp_path / f"b{i}.xlsx", i, 100) for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        outs = list(pool.map(lambda p: recalculate_workbook(p, tmp_path / f"o-{p.stem}"), books))
    assert [_cached(o, "C2") for o in outs] == [100, 101, 102]


@needs_soffice
def test_check_with_recalculation(tmp_path):
    suite = load_suite(make_suite(tmp_path / "s", cases=1))
    task = suite.task("a-1")
    out = _formula_book(tmp_path / "out.xlsx", 10, 1)  # C2 = 11, C3 = 5 as formulas
    plain = suite.check(task, out)
    assert not plain.passed and plain.report.mismatches[0].actual is None
    recalculated = suite.check(task, out, recalculate=True)
    assert recalculated.passed and recalculated.report.recalculated


def test_unreadable_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"\x00\x01 not a spreadsheet at all")
    with pytest.raises(T2SError, match=r"not an \.xlsx workbook"):
        recalculate_workbook(bad, tmp_path / "o")
    # through the checker, a corrupt output is a failed verdict, not a crash
    suite = load_suite(make_suite(tmp_path / "s", cases=1))
    verdict = suite.check(suite.task("a-1"), bad, recalculate=True)
    assert not verdict.passed and "not a readable .xlsx" in verdict.report.problems[0]


def test_missing_soffice_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("T2S_SOFFICE", str(tmp_path / "no-soffice"))
    with pytest.raises(T2SError, match=r"LibreOffice .* not installed"):
        recalculate_workbook(_formula_book(tmp_path / "f.xlsx", 1, 2))
    with pytest.raises(T2SError, match="no such file"):
        recalculate_workbook(tmp_path / "missing.xlsx")
