#!/usr/bin/env python
"""Benchmarks for the task layer: checker throughput and sandbox overhead.

    python bench/checker.py [--suite PATH] [--jobs N] [--readers] [--sandbox-runs N] [--skip-recalc]

Prints: the time to check every SpreadsheetBench-Verified golden file against itself
(cold: every workbook loaded once) with the fast reader and with the full openpyxl
load, side by side with the ratio, the slowest checks of each, whether the two gave
the same reports; then the sandbox's per-call overhead (python and shell, with the
isolation active on this machine) and one LibreOffice recalculation. ``--readers`` also
times the readers t2s could use for the answer cells (openpyxl's full and read-only
loads, python-calamine when installed, t2s's fast reader) and counts the goldens on
which each reads a value or type unlike the full load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SUITE = ROOT.parent / "shared" / "benchmarks" / "spreadsheetbench-verified"


def _check_golden(args: tuple[str, str, str]) -> tuple[str, float, float, dict, str]:
    """One cold golden-vs-golden check with ``reader``: (id, wall s, cpu s, report, how read)."""
    suite_path, tid, reader = args
    from t2s.tasks.xlsx_compare import reader_stats, recent_fallbacks, workbook_cache

    suite = _suite(suite_path)
    task = suite.task(tid)
    saved = os.environ.get("T2S_CHECKER_READER")
    os.environ["T2S_CHECKER_READER"] = reader
    workbook_cache.clear()
    before = dict(reader_stats)
    try:
        c0, t0 = time.process_time(), time.perf_counter()
        verdict = suite.check(task, task.cases[0].answer_path)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        if saved is None:
            os.environ.pop("T2S_CHECKER_READER", None)
        else:
            os.environ["T2S_CHECKER_READER"] = saved
    how = next((k for k, v in reader_stats.items() if v != before.get(k, 0)), "?")
    if how == "fallback":
        how = f"full load ({recent_fallbacks[-1]})"
    workbook_cache.clear()
    return tid, wall, cpu, verdict.report.model_dump(mode="json"), how


_SUITES: dict = {}


def _suite(path: str):
    from t2s.tasks import load_suite

    if path not in _SUITES:
        _SUITES[path] = load_suite(Path(path))
    return _SUITES[path]


def _run_reader(suite_path: Path, ids: list[str], reader: str, jobs: int) -> dict:
    args = [(str(suite_path), tid, reader) for tid in ids]
    start = time.perf_counter()
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            rows = pool.map(_check_golden, args, chunksize=4)
    else:
        rows = [_check_golden(a) for a in args]
    total = time.perf_counter() - start
    return {"total": total, "rows": rows}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def bench_checker(suite_path: Path, jobs: int) -> None:
    suite = _suite(str(suite_path))
    ids = suite.task_ids()
    _check_golden((str(suite_path), ids[0], "auto"))  # imports and suite loading out of the timing
    runs = {reader: _run_reader(suite_path, ids, reader, jobs) for reader in ("auto", "full")}
    fast, full = runs["auto"], runs["full"]
    print(f"checker: {len(ids)} Verified golden files, each checked against itself with cold loads, {jobs} process(es)")
    print(f"  {'':22s} {'fast reader (default)':>22s} {'full openpyxl load':>20s} {'full/fast':>10s}")

    def line(label: str, pick) -> None:
        a, b = pick(fast), pick(full)
        print(f"  {label:22s} {_ms(a):>22s} {_ms(b):>20s} {b / a if a else float('nan'):>9.1f}x")

    line("wall, all checks", lambda r: r["total"])
    line("cpu, all checks", lambda r: sum(row[2] for row in r["rows"]))
    for label, q in (("median check", 0.5), ("p95 check", 0.95)):
        line(label, lambda r, q=q: sorted(row[1] for row in r["rows"])[int(q * (len(r["rows"]) - 1))])
    line("slowest check", lambda r: max(row[1] for row in r["rows"]))
    for name, run in (("fast", fast), ("full", full)):
        slow = sorted(run["rows"], key=lambda row: -row[1])[:5]
        print(f"  slowest {name}: " + ", ".join(f"{row[0]} {_ms(row[1])}" for row in slow))
    ways = Counter(row[4] for row in fast["rows"])
    others = "; ".join(f"{n} x {way}" for way, n in ways.items() if way != "fast")
    print(f"  fast reader: {ways.get('fast', 0)} of {len(ids)} check(s) read fast" + (f"; {others}" if others else ""))
    same_verdict = sum(1 for a, b in zip(fast["rows"], full["rows"], strict=True) if _passed(a[3]) == _passed(b[3]))
    same_report = sum(1 for a, b in zip(fast["rows"], full["rows"], strict=True) if a[3] == b[3])
    print(f"  same verdict: {same_verdict}/{len(ids)}; same report: {same_report}/{len(ids)}")
    failed = [row[0] for row in fast["rows"] if not _passed(row[3])]
    print(f"  literal semantics fail {len(failed)} golden file(s): {', '.join(failed)}")


def _passed(report: dict) -> bool:
    return not report["problems"] and report["mismatch_count"] == 0


def _answer_boxes(task) -> dict[str, tuple[int, int, int, int]]:
    """The literal answer cells of a task, as one box per sheet (None: the first sheet)."""
    from t2s.tasks.xlsx_compare import enumerate_cells, parse_answer_position

    boxes: dict = {}
    for piece in parse_answer_position(task.answer_position):
        try:
            cells = [] if piece.error else enumerate_cells(piece.range, lenient=False)
        except ValueError:
            continue
        for row, col in cells:
            r0, c0, r1, c1 = boxes.get(piece.sheet, (row, col, row, col))
            boxes[piece.sheet] = (min(r0, row), min(c0, col), max(r1, row), max(c1, col))
    return boxes


def _read_full(path, boxes):
    import openpyxl

    wb = openpyxl.load_workbook(path, data_only=True)
    out = {}
    for sheet, (r0, c0, r1, c1) in boxes.items():
        ws = wb[sheet or wb.sheetnames[0]]
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                cell = ws._cells.get((r, c))
                out[sheet, r, c] = None if cell is None else cell.value
    return out


def _read_only(path, boxes):
    import openpyxl

    wb = openpyxl.load_workbook(path, data_only=True, read_only=True)
    out = {}
    for sheet, (r0, c0, r1, c1) in boxes.items():
        ws = wb[sheet or wb.sheetnames[0]]
        for r, row in enumerate(
            ws.iter_rows(min_row=r0, max_row=r1, min_col=c0, max_col=c1, values_only=True), start=r0
        ):
            for c, value in enumerate(row, start=c0):
                out[sheet, r, c] = value
    wb.close()
    return out


def _read_calamine(path, boxes):
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    out = {}
    for sheet, (r0, c0, r1, c1) in boxes.items():
        ws = wb.get_sheet_by_name(sheet) if sheet else wb.get_sheet_by_index(0)
        rows = ws.to_python()
        (top, left) = ws.start or (0, 0)
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                i, j = r - 1 - top, c - 1 - left
                out[sheet, r, c] = rows[i][j] if 0 <= i < len(rows) and 0 <= j < len(rows[i]) else None
    return out


def _read_fast(path, boxes):
    from t2s.tasks.xlsx_fast import FastWorkbook

    wb = FastWorkbook(path)
    out = {}
    for sheet, box in boxes.items():
        values = wb.sheet(sheet or wb.sheetnames[0], box)
        r0, c0, r1, c1 = box
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                out[sheet, r, c] = values.value(r, c)
    return out


def bench_readers(suite_path: Path) -> None:
    """How long each candidate reader takes to read the answer cells of the 400 goldens,
    and on how many goldens it reads a value (or its type) unlike the full load."""
    import importlib.util
    import warnings

    suite = _suite(str(suite_path))
    work = []
    for tid in suite.task_ids():
        task = suite.task(tid)
        boxes = _answer_boxes(task)
        if boxes:
            work.append((tid, task.cases[0].answer_path, boxes))
    readers = {"openpyxl full load": _read_full, "openpyxl read-only": _read_only, "t2s fast reader": _read_fast}
    if importlib.util.find_spec("python_calamine"):
        readers["python-calamine"] = _read_calamine
    reference: dict = {}
    print(
        f"readers: the answer cells of {len(work)} Verified goldens (literal positions; 'cannot read': "
        "a position naming a sheet the workbook lacks), one process"
    )
    for name, read in readers.items():
        differ, failed, times, kinds = [], [], [], Counter()
        for tid, path, boxes in work:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values = read(path, boxes)
            except Exception:
                failed.append(tid)
                continue
            times.append(time.perf_counter() - t0)
            if name == "openpyxl full load":
                reference[tid] = values
                continue
            wrong = [
                (reference[tid].get(k), v)
                for k, v in values.items()
                if (type(v), v) != (type(reference[tid].get(k)), reference[tid].get(k))
            ]
            if wrong:
                differ.append(tid)
                kinds.update(f"{type(a).__name__}->{type(b).__name__}" for a, b in wrong)
        times.sort()
        print(
            f"  {name:20s} total {sum(times):6.1f} s, median {_ms(times[len(times) // 2]):>6s}, "
            f"max {_ms(times[-1]):>6s}; reads differently on {len(differ)} golden(s)"
            + (f", cannot read {len(failed)}" if failed else "")
            + (f" (e.g. {', '.join(differ[:5])})" if differ else "")
        )
        if kinds:
            print(
                "    cells read differently (full load's type -> this reader's): "
                + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common(6))
            )


def bench_sandbox(runs: int) -> None:
    from t2s.sandbox.run import isolation_report, run_code

    iso = isolation_report()
    print(f"sandbox: {iso['sandbox']}; processes: {iso.get('processes', '-')}")
    with tempfile.TemporaryDirectory() as tmp:
        for language, code in (("python", "pass"), ("shell", "true")):
            for label, kwargs in (
                ("sandboxed", {}),
                ("network on, no proc limit", {"network": True, "max_procs": None}),
            ):
                samples = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    r = run_code(code, Path(tmp), language=language, **kwargs)
                    samples.append(time.perf_counter() - t0)
                    assert r.ok, r
                print(
                    f"  {language:6s} {label:24s}: median {statistics.median(samples) * 1000:.0f} ms, "
                    f"min {min(samples) * 1000:.0f} ms over {runs} calls"
                )
        t0 = time.perf_counter()
        subprocess_baseline = []
        import subprocess

        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            subprocess_baseline.append(time.perf_counter() - t0)
        print(f"  baseline: bare `python -c pass` median {statistics.median(subprocess_baseline) * 1000:.0f} ms")


def bench_recalc() -> None:
    import openpyxl

    from t2s.tasks.recalc import find_soffice, recalculate_workbook

    if not find_soffice():
        print("recalc: soffice not installed, skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        wb = openpyxl.Workbook()
        ws = wb.active
        for i in range(1, 201):
            ws.cell(i, 1, i)
            ws.cell(i, 2, f"=A{i}*2")
        src = Path(tmp) / "f.xlsx"
        wb.save(src)
        samples = []
        for n in range(3):
            t0 = time.perf_counter()
            recalculate_workbook(src, Path(tmp) / f"o{n}")
            samples.append(time.perf_counter() - t0)
        print(
            f"recalc: LibreOffice headless round trip (200 formulas) median "
            f"{statistics.median(samples):.2f} s over 3 calls"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE)
    parser.add_argument("--jobs", type=int, default=1, help="checker processes (default 1)")
    parser.add_argument("--sandbox-runs", type=int, default=20, help="0 skips the sandbox figures")
    parser.add_argument("--skip-recalc", action="store_true")
    parser.add_argument(
        "--readers",
        action="store_true",
        help="also time candidate readers (openpyxl read-only, python-calamine if installed)",
    )
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cpu(s), load average {os.getloadavg()[0]:.1f}")
    if args.suite.exists():
        bench_checker(args.suite, args.jobs)
        if args.readers:
            bench_readers(args.suite)
    else:
        print(f"checker: {args.suite} not available, skipped")
    if args.sandbox_runs:
        bench_sandbox(args.sandbox_runs)
    if not args.skip_recalc:
        bench_recalc()


if __name__ == "__main__":
    main()
