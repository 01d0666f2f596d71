"""Scale-out figures from one run: shards against one process, Ray against local.

    python bench/scale_out.py [--tasks 8] [--think 2.0]

Needs `pip install 't2s[ray]'`. Everything is real: a skill repository, a generated
SpreadsheetBench-style suite, the scripted model server on 127.0.0.1 (its latency is
the agent's think time), the sandbox running the agent's openpyxl code, git notes.
Ray runs as a local cluster on loopback, restarted with 1, 2 and 4 CPUs (one episode
per CPU: that many workers).

1. sharded vs unsharded: `t2s eval` of 3·tasks tasks in one process, then in 3 shards
   joined by `t2s collect`; prints the count of differing verdicts (must be 0);
2. per-episode overhead of the Ray executor against the local one: instant model
   answers, one episode at a time, (ray - local) / episodes, in ms;
3. latency-bound episodes (the agent only thinks: each model turn takes `--think`
   seconds, no code runs): wall time with 1, 2 and 4 Ray workers, the speed-up over 1;
4. CPU-bound episodes (the agent's code spins 0.5 s of CPU, instant answers; half as
   many episodes): the same, to show what a 2-core machine allows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep the cluster on loopback

import t2s  # noqa: E402
from t2s.record.notes import read_eval_note  # noqa: E402
from t2s.testing import Reply, ScriptedServer, tool_call  # noqa: E402
from tests.conftest import git  # noqa: E402
from tests.test_eval_support import agent_responder, make_repo, make_suite  # noqa: E402

SPIN = "import time\n_t = time.process_time()\nwhile time.process_time() - _t < 0.5:\n    pass\n"


def thinking_agent(req):
    """A latency-bound agent: it only thinks (the server's latency) and finishes; no code runs."""
    return Reply(tool_calls=[tool_call("finish", {"summary": "done"})])


def spinning_agent(req):
    """The scripted agent, whose code first spins 0.5 s of CPU."""
    reply = agent_responder(req)
    for call in reply.tool_calls or []:
        args = json.loads(call["function"]["arguments"])
        if "code" in args:
            args["code"] = SPIN + args["code"]
            call["function"]["arguments"] = json.dumps(args)
    return reply


def build(tmp: Path, srv: ScriptedServer, n: int) -> t2s.Repo:
    """A skill repository whose held-out split has ``n`` generated tasks."""
    ids = [f"easy{i}" for i in range(1, n + 1)]
    store = make_repo(tmp, srv, heldout=tuple(ids))
    make_suite(tmp / "suite", ids=[*ids, "evo1"])
    git(store.root, "commit", "-q", "--allow-empty", "--no-verify", "-m", "the suite grew")
    return t2s.open_repo(store.root)


def set_concurrency(repo_root: Path, n: int) -> t2s.Repo:
    toml = repo_root / "t2s.toml"
    text = toml.read_text()
    lines = [f"concurrency = {n}" if line.startswith("concurrency = ") else line for line in text.splitlines()]
    toml.write_text("\n".join(lines) + "\n")
    return t2s.open_repo(repo_root)


def timed_eval(repo: t2s.Repo, **kw) -> float:
    started = time.perf_counter()
    t2s.evaluate(repo, "HEAD", cache=False, **kw)
    return time.perf_counter() - started


def ray_cluster(cpus: int):
    """A fresh local cluster of ``cpus`` workers, each having imported t2s already (a
    worker's first task pays for the imports once; the figures are per episode after)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)

    @ray.remote(num_cpus=1)
    def warm() -> int:
        import t2s.agent.executor
        import t2s.tasks.spreadsheetbench  # noqa: F401

        time.sleep(0.5)  # hold the worker, so that each of the cpus workers gets one
        return os.getpid()

    ray.get([warm.remote() for _ in range(cpus)])


def shards_vs_one(tmp: Path, srv: ScriptedServer, n: int) -> int:
    repo = build(tmp / "shards", srv, n)
    one = t2s.evaluate(repo, "HEAD", cache=False).record
    git(repo.root, "update-ref", "-d", "refs/notes/t2s/eval")  # as if never evaluated
    for k in (1, 2, 3):
        t2s.evaluate(repo, "HEAD", shard=f"{k}/3")
    t2s.collect(repo, eval_rev="HEAD")
    joined = read_eval_note(repo.store, "HEAD").evals[0]
    mine = {(v.task, v.seed): v.passed for v in joined.tasks}
    theirs = {(v.task, v.seed): v.passed for v in one.tasks}
    return sum(1 for key in theirs.keys() | mine.keys() if mine.get(key) != theirs.get(key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=8, help="episodes per measurement")
    parser.add_argument("--think", type=float, default=2.0, help="seconds per model turn (latency-bound)")
    args = parser.parse_args()
    n = args.tasks
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="t2s-bench-") as name:
        tmp = Path(name)
        with ScriptedServer() as srv:
            differing = shards_vs_one(tmp, srv, 3 * n)
            print(f"1. sharded (3 shards) vs unsharded eval of {3 * n} tasks: {differing} differing verdicts")

            repo = set_concurrency(build(tmp / "overhead", srv, n).root, 1)
            local = timed_eval(repo)
            ray_cluster(1)
            ray = timed_eval(repo, executor="ray")
            print(
                f"2. per-episode overhead of Ray vs local (instant answers, one at a time, {n} episodes): "
                f"{(ray - local) / n * 1000:.0f} ms  (local {local / n * 1000:.0f} ms, ray {ray / n * 1000:.0f} ms per episode)"
            )

        with ScriptedServer(latency=args.think) as srv:
            repo = set_concurrency(build(tmp / "latency", srv, n).root, 4)
            srv.reset()
            srv.on(thinking_agent, role="agent")
            walls = {}
            for workers in (1, 2, 4):
                ray_cluster(workers)
                walls[workers] = timed_eval(repo, executor="ray")
            print(
                f"3. latency-bound ({n} episodes, 3 model turns x {args.think:g} s think time, no code run): "
                + ", ".join(f"{w} worker(s) {walls[w]:.1f} s ({walls[1] / walls[w]:.2f}x)" for w in walls)
            )

        with ScriptedServer() as srv:
            repo = set_concurrency(build(tmp / "cpu", srv, max(4, n // 2)).root, 4)
            srv.reset()
            srv.on(spinning_agent, role="agent")
            walls = {}
            for workers in (1, 2, 4):
                ray_cluster(workers)
                walls[workers] = timed_eval(repo, executor="ray")
            print(
                f"4. CPU-bound ({max(4, n // 2)} episodes, 0.5 s of CPU in the sandbox each, {os.cpu_count()} cores): "
                + ", ".join(f"{w} worker(s) {walls[w]:.1f} s ({walls[1] / walls[w]:.2f}x)" for w in walls)
            )
            print(
                f"   on {os.cpu_count()} cores CPU-bound episodes scale to about {os.cpu_count()}x at best; "
                "more workers need more machines (a Ray cluster, or shards on several hosts)"
            )
    import ray as ray_module

    ray_module.shutdown()
    print(f"(bench wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
