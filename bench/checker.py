#!/usr/bin/env python
"""Benchmarks for the task layer: checker throughput and sandbox overhead.

    python bench/checker.py [--suite PATH] [--sandbox-runs N] [--skip-recalc]

Prints: the time to check every SpreadsheetBench-Verified golden file against itself
(cold: every workbook loaded once), the slowest tasks, the sandbox's per-call overhead
(python and shell, with the isolation active on this machine), and one LibreOffice
recalculation.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SUITE = ROOT.parent / "shared" / "benchmarks" / "spreadsheetbench-verified"


def bench_checker(suite_path: Path) -> None:
    from t2s.tasks import load_suite
    from t2s.tasks.xlsx_compare import workbook_cache

    suite = load_suite(suite_path)
    ids = suite.task_ids()
    workbook_cache.clear()
    per_task = []
    failed = []
    start = time.perf_counter()
    for tid in ids:
        task = suite.task(tid)
        t0 = time.perf_counter()
        verdict = suite.check(task, task.cases[0].answer_path)
        per_task.append((time.perf_counter() - t0, tid))
        if not verdict.passed:
            failed.append(tid)
        workbook_cache.clear()
    total = time.perf_counter() - start
    times = sorted(t for t, _ in per_task)
    print(f"checker: {len(ids)} Verified golden files checked against themselves in {total:.1f} s "
          f"(mean {total / len(ids) * 1000:.0f} ms, median {statistics.median(times) * 1000:.0f} ms, "
          f"p95 {times[int(0.95 * len(times))] * 1000:.0f} ms per task; one process, cold loads)")
    slow = sorted(per_task, reverse=True)[:5]
    print("  slowest: " + ", ".join(f"{tid} {t:.1f} s" for t, tid in slow))
    print(f"  literal semantics fail {len(failed)} golden file(s): {', '.join(failed)}")
    # the comparison alone, workbooks already in memory
    from t2s.tasks.base import CheckReport
    from t2s.tasks.xlsx_compare import compare_workbooks

    sample = [suite.task(t) for t in ids[:50]]
    workbook_cache.size = len(sample) + 1
    for task in sample:
        compare_workbooks(task.cases[0].answer_path, task.cases[0].answer_path,
                          task.answer_position, report=CheckReport(task_id=task.id))
    t0 = time.perf_counter()
    cells = 0
    for task in sample:
        r = compare_workbooks(task.cases[0].answer_path, task.cases[0].answer_path,
                              task.answer_position, report=CheckReport(task_id=task.id))
        cells += r.cells_checked
    dt = time.perf_counter() - t0
    print(f"  comparison only (workbooks cached): {cells} cells in {dt * 1000:.0f} ms "
          f"({cells / dt / 1e6:.2f} M cells/s)")


def bench_sandbox(runs: int) -> None:
    from t2s.sandbox.run import isolation_report, run_code

    iso = isolation_report()
    print(f"sandbox: {iso['sandbox']}; processes: {iso.get('processes', '-')}")
    with tempfile.TemporaryDirectory() as tmp:
        for language, code in (("python", "pass"), ("shell", "true")):
            for label, kwargs in (("sandboxed", {}), ("network on, no proc limit",
                                                     {"network": True, "max_procs": None})):
                samples = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    r = run_code(code, Path(tmp), language=language, **kwargs)
                    samples.append(time.perf_counter() - t0)
                    assert r.ok, r
                print(f"  {language:6s} {label:24s}: median {statistics.median(samples) * 1000:.0f} ms, "
                      f"min {min(samples) * 1000:.0f} ms over {runs} calls")
        t0 = time.perf_counter()
        subprocess_baseline = []
        import subprocess

        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            subprocess_baseline.append(time.perf_counter() - t0)
        print(f"  baseline: bare `python -c pass` median "
              f"{statistics.median(subprocess_baseline) * 1000:.0f} ms")


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
        print(f"recalc: LibreOffice headless round trip (200 formulas) median "
              f"{statistics.median(samples):.2f} s over 3 calls")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=DEFAULT_SUITE)
    parser.add_argument("--sandbox-runs", type=int, default=20)
    parser.add_argument("--skip-recalc", action="store_true")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cpu(s), load average {os.getloadavg()[0]:.1f}")
    if args.suite.exists():
        bench_checker(args.suite)
    else:
        print(f"checker: {args.suite} not available, skipped")
    bench_sandbox(args.sandbox_runs)
    if not args.skip_recalc:
        bench_recalc()


if __name__ == "__main__":
    main()
