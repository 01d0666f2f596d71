"""How fast is consolidation itself, and how close to the critical path does it run?

Builds a real skill repository with N analyst patch branches (default 323, as in the
Trace2Skill paper's largest pool), then merges them at fan-in B (default 5) against
the scripted OpenAI-compatible server playing a correct merger:

1. with an instant merger: the wall time is t2s's own time (git, rendering,
   validation, the run record) plus loopback HTTP;
2. with LATENCY seconds per merger call (default 0.2): the wall time against the
   critical path, levels x latency, i.e. what unlimited parallel merging would take.
   Measured REPEAT times (default 3), each on a fresh copy of the run; every ratio
   is printed, and the median is the figure (a shared 2-core VM is noisy).

Targets (issue 6): own time under 15 s for 323 patches on 2 cores; wall time within
1.5x of the critical path.

The scripted merger runs in its own process (a real model is remote too), so the
figures are t2s's time, not the simulated model's; `--in-process` keeps it in-process.

    python bench/merge_scale.py [--patches 323] [--fan-in 5] [--latency 0.2] [--repeat 3] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from t2s.consolidation.group import merger_ask
from t2s.consolidation.models import MergeSettings
from t2s.consolidation.scheduler import Merger
from t2s.llm.client import LLM
from t2s.patches.context import PatchContext
from t2s.testing import ScriptedServer
from t2s.testing.simulated import merger_responder
from tests._runfixtures import SKILL_DIR, add_patch, make_skill_repo, start_run

LESSONS = [
    ("Recalculate formulas before saving, or write computed values instead.", "formulas"),
    ("Read the target cells back with data_only=True before finishing.", "verification"),
    ("Strip spaces from text keys before grouping rows.", "text-keys"),
    ("Keep dates as datetime values, never as formatted strings.", "dates"),
    ("Write into the answer range only; leave other cells untouched.", "answer-range"),
]


def build(root: Path, count: int, run: str):
    store = make_skill_repo(root)
    record = start_run(store, run)
    for i in range(1, count + 1):
        if i % 7 == 0:
            text, topic = f"Quirk {i}: a header row repeats every page in this kind of export.", f"quirk-{i}"
        else:
            text, topic = LESSONS[i % len(LESSONS)]
        add_patch(store, record, i, text, topic=topic)
    return store, record


@contextlib.contextmanager
def merger_server(latency: float, in_process: bool):
    """The scripted merger's base URL: a server in a child process (or in-process)."""
    if in_process:
        with ScriptedServer(latency=latency) as server:
            server.on(merger_responder, role="merger")
            yield server.base_url
        return
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "t2s.testing.server",
            "--latency",
            str(latency),
            "--responder",
            "t2s.testing.simulated:merger_responder",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def merge(store, record, base_url: str, fan_in: int) -> tuple[float, list[list[str]]]:
    role = {
        "model": "sim-merger",
        "base_url": base_url,
        "api_key_env": "T2S_BENCH_KEY",
        "concurrency": 256,
        "timeout": 60,
    }
    llm = LLM(roles={"merger": role}, budget={})
    context = PatchContext(store, record.manifest().s0, SKILL_DIR)
    merger = Merger(store, record, context, merger_ask(llm), MergeSettings(fan_in=fan_in, concurrency=256))

    async def go():
        try:
            return await merger.parallel()
        finally:
            await llm.aclose()

    start = time.perf_counter()
    summary = asyncio.run(go())
    return time.perf_counter() - start, summary.levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=323)
    parser.add_argument("--fan-in", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3, help="latency runs (the median is reported)")
    parser.add_argument("--in-process", action="store_true", help="run the scripted merger in this process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        store, record = build(Path(tmp) / "a", args.patches, "bench")
        setup = time.perf_counter() - t0
        with merger_server(0.0, args.in_process) as url:
            own, levels = merge(store, record, url, args.fan_in)
        merges = sum(len(level) for level in levels)
        shape = " -> ".join([str(args.patches)] + [str(len(level)) for level in levels])
        print(f"patches: {args.patches}, fan-in {args.fan_in}, levels {len(levels)} ({shape}), merges {merges}")
        print(f"setup (building {args.patches} patch branches): {setup:.1f} s")
        print(f"instant merger: t2s's own time {own:.2f} s ({own / merges * 1000:.0f} ms per merge)  target < 15 s")
        ratios = []
        with merger_server(args.latency, args.in_process) as url:
            for attempt in range(1, args.repeat + 1):
                wall, levels2 = merge(store, copy_run(store, record, f"bench-latency-{attempt}"), url, args.fan_in)
                critical = len(levels2) * args.latency
                ratios.append(wall / critical)
                print(
                    f"merger latency {args.latency * 1000:.0f} ms, run {attempt}: wall {wall:.2f} s, critical path "
                    f"{critical:.2f} s ({len(levels2)} levels x {args.latency:.2f} s), ratio {wall / critical:.2f}"
                )
        print(
            f"latency ratio: median {statistics.median(ratios):.2f} (runs: {', '.join(f'{r:.2f}' for r in ratios)})  target <= 1.5"
        )


def copy_run(store, record, name: str):
    """The same patches under a fresh run record, so nothing of an earlier merge is reused."""
    copy = start_run(store, name)
    for ref, commit in store.refs(f"refs/heads/t2s/{record.run}/patch/").items():
        store.create_ref(ref.replace(f"/{record.run}/", f"/{name}/"), commit)
    copy.write(record.read_folder("patches"), "copy of the patch records")
    return copy


if __name__ == "__main__":
    main()
