"""`t2s analyze --executor ray` against the local executor, from one run.

    python bench/ray_analyze.py [--trajectories 8] [--think 1.0]

Needs `pip install 't2s[ray]'`. Everything is real: a skill repository, the analysts'
SpreadsheetBench-style test suite, trajectories checked by the real checker, the scripted
model server on 127.0.0.1 (its latency is the analyst's think time), patch branches.
Ray runs as a local cluster on loopback, restarted with 1, 2 and 4 CPUs.

1. per-analysis overhead of Ray against local: instant answers, one analysis at a time
   (single-call analyst: one model call each), (ray - local) / analyses, in ms; what
   it pays for: a worker's model client and event loop, the pickled suite and
   trajectory, the scratch repository holding S0's skill folder, and the driver's
   re-render of the patch against the real S0;
2. latency-bound analyses (each model call takes `--think` seconds): wall time with
   1, 2 and 4 Ray workers (the driver keeps 4 in flight), the speed-up over 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep the cluster on loopback
os.environ.setdefault("T2S_TEST_API_KEY", "not-a-secret")

import t2s  # noqa: E402
from t2s.testing import ScriptedServer  # noqa: E402
from t2s.testing.simulated import analyst_responder  # noqa: E402
from tests.test_analysts_support import add_trajectory, load_config_and_suite, make_repo, start_run  # noqa: E402


def build(tmp: Path, n: int, runs: list[str]) -> t2s.Repo:
    """A skill repository with runs ``runs``, each holding ``n`` failed trajectories."""
    store = make_repo(tmp)
    _, suite = load_config_and_suite(store)
    for run in runs:
        record = start_run(store, run)
        for i in range(n):
            task = ("txt-1", "mul-2")[i % 2]
            add_trajectory(record, suite, task, wrong=True, tmp=tmp, traj_id=f"t{i:03d}")
    return t2s.open_repo(store.root)


def timed_analyze(repo: t2s.Repo, run: str, srv: ScriptedServer, concurrency: int, **kw) -> float:
    role = {"model": "analyst-model", "base_url": srv.base_url, "api_key_env": "T2S_TEST_API_KEY"}
    started = time.perf_counter()
    summary = t2s.analyze(
        repo, run, analyst="single-call", concurrency=concurrency, models={"*": role}, cache=False, **kw
    )
    wall = time.perf_counter() - started
    assert summary.accepted == summary.selected, summary  # every analysis gave a patch
    return wall


def ray_cluster(cpus: int) -> None:
    """A fresh local cluster of ``cpus`` workers, each having imported t2s already."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)

    @ray.remote(num_cpus=1)
    def warm() -> int:
        import t2s.analysis.executors  # noqa: F401

        time.sleep(0.5)  # hold the worker, so that each of the cpus workers gets one
        return os.getpid()

    ray.get([warm.remote() for _ in range(cpus)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trajectories", type=int, default=8, help="analyses per measurement")
    parser.add_argument("--think", type=float, default=1.0, help="seconds per model call (latency-bound)")
    args = parser.parse_args()
    n = args.trajectories
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="t2s-bench-") as name:
        tmp = Path(name)
        with ScriptedServer() as srv:
            srv.on(analyst_responder, role="analyst")
            repo = build(tmp / "overhead", n, ["local", "ray"])
            local = timed_analyze(repo, "local", srv, 1)
            ray_cluster(1)
            ray = timed_analyze(repo, "ray", srv, 1, executor="ray")
            print(
                f"1. per-analysis overhead of Ray vs local (instant answers, one at a time, {n} analyses): "
                f"{(ray - local) / n * 1000:.0f} ms  (local {local / n * 1000:.0f} ms, "
                f"ray {ray / n * 1000:.0f} ms per analysis)"
            )

        with ScriptedServer(latency=args.think) as srv:
            srv.on(analyst_responder, role="analyst")
            runs = ["w1", "w2", "w4"]
            repo = build(tmp / "latency", n, runs)
            walls = {}
            for workers, run in zip((1, 2, 4), runs, strict=True):
                ray_cluster(workers)
                walls[workers] = timed_analyze(repo, run, srv, 4, executor="ray")
            print(
                f"2. latency-bound ({n} analyses, one {args.think:g} s model call each): "
                + ", ".join(f"{w} worker(s) {walls[w]:.1f} s ({walls[1] / walls[w]:.2f}x)" for w in walls)
            )
    import ray as ray_module

    ray_module.shutdown()
    print(f"(bench wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
