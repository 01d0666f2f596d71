"""Overhead of t2s.llm.client against the scripted server: wall time vs. the ideal.

    python bench/llm_overhead.py [--calls 1000] [--concurrency 64] [--latency 0.05]
                                 [--repeat 3] [--in-process]

The scripted server runs in its own process (as a real model server would) and
answers every request after ``latency`` seconds. The client sends ``calls`` chat
requests through ``LLM.chat`` (retries, concurrency bound, ledger; cache off) with
``concurrency`` in flight. Ideal wall time = calls / concurrency x latency; the ratio
wall / ideal is the layer's overhead (target <= 1.25 on a 2-core machine). The best of
``repeat`` runs is reported, with every run listed (the machine may be shared).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from t2s.llm.client import LLM
from t2s.testing import ScriptedServer


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
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--in-process", action="store_true", help="run the server in a thread of this process (shares the GIL)"
    )
    args = parser.parse_args()

    proc = srv = None
    if args.in_process:
        srv = ScriptedServer(latency=args.latency, default="ok").start()
        base_url = srv.base_url
    else:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from t2s.testing.server import main; main()",
                "--latency",
                str(args.latency),
                "--reply",
                "ok",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        base_url = proc.stdout.readline().strip()
    try:
        role = {
            "model": "bench-model",
            "base_url": base_url,
            "api_key_env": "",
            "concurrency": args.concurrency,
            "max_retries": 0,
            "timeout": 30.0,
        }
        ideal = args.calls / args.concurrency * args.latency
        runs = []
        for _ in range(args.repeat):
            llm = LLM(roles={"agent": role}, env={}, cache_mode="off")
            wall, cpu = llm.run(one_run(llm, args.calls))
            assert llm.ledger.totals.calls == args.calls + args.concurrency
            runs.append((wall, cpu))
        best_wall, _best_cpu = min(runs)
        print(
            f"calls={args.calls} concurrency={args.concurrency} latency={args.latency * 1000:g}ms "
            f"server={'in-process' if args.in_process else 'subprocess'}"
        )
        for i, (wall, cpu) in enumerate(runs, 1):
            print(
                f"  run {i}: wall {wall:.3f}s  ratio {wall / ideal:.3f}  client cpu {cpu:.3f}s "
                f"({cpu / args.calls * 1e3:.3f} ms/call)"
            )
        print(f"ideal {ideal:.3f}s  best wall {best_wall:.3f}s  ratio {best_wall / ideal:.3f}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
        if srv is not None:
            srv.stop()


if __name__ == "__main__":
    main()
