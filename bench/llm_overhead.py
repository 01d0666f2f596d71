"""t2s's own share of wall time in model calls at realistic agent-turn latencies.

    python bench/llm_overhead.py [--calls 1000] [--concurrency 64] [--median 3.0] [--sigma 1.0]
                                 [--scale 20] [--repeat 3] [--hog N] [--seed 0]

The scripted server runs in its own process (as a real model server would) and answers
each request after a latency drawn from a lognormal distribution: median ``--median``
seconds (an agent turn: about 3 s), sigma ``--sigma`` (1.0: the 95th percentile is
5x the median, about 15 s), divided by ``--scale`` so the bench runs in seconds
(bench/_latency.py). The client sends ``calls`` chat requests through ``LLM.chat``
(retries, concurrency bound, ledger; cache off) with ``concurrency`` in flight.

Ideal wall time: the requests in order on ``concurrency`` slots, each taking exactly
its drawn latency (the server draws from the request's text, so the bench knows every
latency). t2s's own time = wall - ideal: it does not shrink with the scale, so its share
at real latencies is projected as own / (ideal x scale + own), an upper bound: on a
starved CPU "own" is mostly queueing (and includes the scripted server's handling),
which real latencies would hide. Also printed: the client CPU per call, as a share of
a median turn, and all of it against the real-latency ideal. ``--hog N`` runs N busy loops for the
whole measurement (a busy machine). The best of ``repeat`` runs is the figure, every run
is listed.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _latency import cpu_hog, draw, lognormal, serve_forever, server_process, share

from t2s.llm.client import LLM
from t2s.testing import ScriptedServer


def _key(request) -> str:
    return request.last_user_text


def serve(median: float, sigma: float, seed: int) -> None:
    """The child process: answer "ok" after a lognormal latency keyed by the task text."""
    serve_forever(ScriptedServer(latency=lognormal(_key, median, sigma, seed), default="ok"))


def ideal_wall(latencies: list[float], slots: int) -> float:
    """The makespan of the calls in order on ``slots`` slots, with no overhead."""
    free = [0.0] * slots
    end = 0.0
    for latency in latencies:
        start = heapq.heappop(free)
        end = max(end, start + latency)
        heapq.heappush(free, start + latency)
    return end


async def one_run(llm: LLM, calls: int) -> tuple[float, float]:
    async def call(i: int) -> None:
        res = await llm.chat("agent", [{"role": "user", "content": f"task {i}"}])
        assert res.content

    # warm up: open the connections
    await asyncio.gather(*(call(-i - 1) for i in range(llm.role("agent").concurrency)))
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(call(i) for i in range(calls)))
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--median", type=float, default=3.0, help="median latency of a call at real scale (s)")
    parser.add_argument("--sigma", type=float, default=1.0, help="lognormal sigma (0: every call takes the median)")
    parser.add_argument("--scale", type=float, default=20.0, help="latencies are divided by this factor")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hog", type=int, default=0, help="busy-loop processes during the measurement")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    median = args.median / args.scale
    latencies = [draw(f"task {i}", median, args.sigma, args.seed) for i in range(args.calls)]
    ideal = ideal_wall(latencies, args.concurrency)
    role = {
        "model": "bench-model",
        "api_key_env": "",
        "concurrency": args.concurrency,
        "max_retries": 0,
        "timeout": 60.0,
    }
    print(
        f"calls={args.calls} concurrency={args.concurrency} latency lognormal median {args.median:g} s "
        f"sigma {args.sigma:g} (p95 {statistics.quantiles(latencies, n=20)[-1] * args.scale:.1f} s, "
        f"max {max(latencies) * args.scale:.1f} s), scaled down {args.scale:g}x; cpu hog: {args.hog} process(es); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    runs = []
    with server_process("llm_overhead", median, args.sigma, args.seed) as url, cpu_hog(args.hog):
        for _ in range(args.repeat):
            llm = LLM(roles={"agent": {**role, "base_url": url}}, env={}, cache_mode="off")
            wall, cpu = llm.run(one_run(llm, args.calls))
            assert llm.ledger.totals.calls == args.calls + args.concurrency
            runs.append((wall, cpu))
    for i, (wall, cpu) in enumerate(runs, 1):
        own = max(0.0, wall - ideal)
        print(
            f"  run {i}: wall {wall:.2f} s  ideal {ideal:.2f} s  t2s own {own:.2f} s ({own / wall:.1%} of wall)  "
            f"client cpu {cpu / args.calls * 1e3:.2f} ms/call"
        )
    wall, cpu = min(runs)
    own = max(0.0, wall - ideal)
    per_call = cpu / args.calls
    print(
        f"best: wall/ideal {wall / ideal:.3f}; t2s own {own:.2f} s = {own / wall:.1%} of wall at the scaled latency; "
        f"projected at real latency (ideal x {args.scale:g} = {ideal * args.scale:.0f} s): "
        f"{share(own, ideal, args.scale):.2%}"
    )
    print(
        f"client cpu {per_call * 1e3:.2f} ms per call = {per_call / args.median:.3%} of a {args.median:g} s median turn; "
        f"all of it ({cpu:.2f} s) against the real-latency ideal: {share(cpu, ideal, args.scale):.2%}"
    )


if __name__ == "__main__":
    main()
