"""t2s's own time in consolidation, and its share of wall time at realistic merge latencies.

Builds a real skill repository with N analyst patch branches (default 323, as in the
Trace2Skill paper's largest pool), then merges them at fan-in B (default 5) against
the scripted OpenAI-compatible server playing a correct merger, in its own process (a
real model is remote too):

1. with an instant merger: the wall time is t2s's own time (git, rendering,
   validation, the run record) plus loopback HTTP (target, issue 6: < 15 s for 323
   patches on 2 cores);
2. with realistic merger latencies: each merge's latency is drawn from a lognormal
   distribution, median ``--median`` (20 s) and sigma ``--sigma`` (0.6: the 95th
   percentile is 2.7x the median, about 54 s), keyed by the merge's group name (so the
   bench knows every latency), divided by ``--scale`` so the bench runs in under two
   minutes (bench/_latency.py). The ideal wall time is the merge tree's critical path:
   a merge starts when its inputs exist, so each merge ends at the latest end of its
   input merges plus its own latency. t2s's own time = wall - critical path; its share
   at real latencies is projected as own / (critical x scale + own). Measured REPEAT
   times (default 3) on fresh copies of the run; the median is the figure.

``--hog N`` runs N busy-loop processes during both measurements (a busy machine).
``--http-extra-ms`` (default 1.8) prices a per-call client cost: main's merge bench
measured 3.3 ms of client time per call with the stock openai/httpx client against 1.5
ms with the hand-written t2s/llm/http.py (cProfile); the bench prints what that
difference is worth at the real latencies.

    python bench/merge_scale.py [--patches 323] [--fan-in 5] [--median 20] [--sigma 0.6]
                                [--scale 20] [--repeat 3] [--hog N] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _latency import cpu_hog, draw, lognormal, serve_forever, server_process, share

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


_GROUP = re.compile(r"Merge group (\S+) \(level")


def _group(request) -> str:
    match = _GROUP.search(request.text)
    return match.group(1) if match else request.text


def serve(median: float, sigma: float, seed: int) -> None:
    """The child process: a correct merger whose latency is drawn per merge group."""
    server = ScriptedServer(latency=lognormal(_group, median, sigma, seed) if median else 0.0)
    server.on(merger_responder, role="merger")
    serve_forever(server)


def merge(store, record, base_url: str, fan_in: int) -> tuple[float, list[list[str]], float]:
    """One parallel merge of the run: (wall s, the levels' merge names, client CPU s)."""
    role = {
        "model": "sim-merger",
        "base_url": base_url,
        "api_key_env": "T2S_BENCH_KEY",
        "concurrency": 256,
        "timeout": 600,
    }
    llm = LLM(roles={"merger": role}, budget={})
    context = PatchContext(store, record.manifest().s0, SKILL_DIR)
    merger = Merger(store, record, context, merger_ask(llm), MergeSettings(fan_in=fan_in, concurrency=256))

    async def go():
        try:
            return await merger.parallel()
        finally:
            await llm.aclose()

    start, cpu = time.perf_counter(), time.process_time()
    summary = asyncio.run(go())
    return time.perf_counter() - start, summary.levels, time.process_time() - cpu


def critical_path(record, median: float, sigma: float, seed: int) -> float:
    """The merge tree's critical path with the drawn latencies and no t2s time."""
    reports = [json.loads(data) for data in record.read_folder("merges").values()]
    by_branch = {r["branch"]: r for r in reports if r.get("branch")}
    ends: dict[str, float] = {}

    def end(report) -> float:
        if report["name"] not in ends:
            inputs = [by_branch[i["ref"]] for i in report["inputs"] if i["ref"] in by_branch]
            start = max((end(r) for r in inputs), default=0.0)
            ends[report["name"]] = start + draw(report["name"], median, sigma, seed)
        return ends[report["name"]]

    return max(end(r) for r in reports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=323)
    parser.add_argument("--fan-in", type=int, default=5)
    parser.add_argument("--median", type=float, default=20.0, help="median merge latency at real scale (s)")
    parser.add_argument("--sigma", type=float, default=0.6, help="lognormal sigma (0: every merge takes the median)")
    parser.add_argument("--scale", type=float, default=20.0, help="latencies are divided by this factor")
    parser.add_argument("--repeat", type=int, default=3, help="latency runs (the median is reported)")
    parser.add_argument("--hog", type=int, default=0, help="busy-loop processes during the measurements")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--http-extra-ms", type=float, default=1.8, help="a per-call client cost to price (ms)")
    args = parser.parse_args()
    median = args.median / args.scale
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        store, record = build(Path(tmp) / "a", args.patches, "bench")
        setup = time.perf_counter() - t0
        print(
            f"setup (building {args.patches} patch branches): {setup:.1f} s; cpu hog: {args.hog} process(es); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        with cpu_hog(args.hog):
            with server_process("merge_scale", 0.0, 0.0, args.seed) as url:
                own, levels, cpu = merge(store, record, url, args.fan_in)
            merges = sum(len(level) for level in levels)
            shape = " -> ".join([str(args.patches)] + [str(len(level)) for level in levels])
            print(f"patches: {args.patches}, fan-in {args.fan_in}, levels {len(levels)} ({shape}), merges {merges}")
            print(
                f"instant merger: t2s's own time {own:.2f} s ({own / merges * 1000:.0f} ms per merge, "
                f"client cpu {cpu:.2f} s)  target < 15 s"
            )
            print(
                f"merger latency: lognormal median {args.median:g} s, sigma {args.sigma:g}, scaled down {args.scale:g}x"
            )
            rows = []
            with server_process("merge_scale", median, args.sigma, args.seed) as url:
                for attempt in range(1, args.repeat + 1):
                    copy = copy_run(store, record, f"bench-latency-{attempt}")
                    wall, _levels, _cpu = merge(store, copy, url, args.fan_in)
                    critical = critical_path(copy, median, args.sigma, args.seed)
                    rows.append((wall, critical))
                    extra = max(0.0, wall - critical)
                    print(
                        f"  run {attempt}: wall {wall:.2f} s, critical path {critical:.2f} s, ratio {wall / critical:.2f}, "
                        f"t2s own {extra:.2f} s ({extra / wall:.1%} of wall)"
                    )
    wall, critical = sorted(rows)[len(rows) // 2]
    extra = max(0.0, wall - critical)
    print(
        f"median run: wall/critical {wall / critical:.2f}; t2s own {extra:.2f} s = {extra / wall:.1%} of wall at the "
        f"scaled latency; projected at real latency (critical path x {args.scale:g} = {critical * args.scale:.0f} s): "
        f"{share(extra, critical, args.scale):.2%}"
    )
    http = args.http_extra_ms / 1000 * merges
    print(
        f"a client {args.http_extra_ms:g} ms/call slower (openai/httpx vs hand-written http.py): {http:.2f} s over "
        f"{merges} merges = {share(http, critical, args.scale):.3%} of the real-latency wall "
        f"(at most: the merges overlap)"
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
