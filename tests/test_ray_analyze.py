"""``t2s analyze --executor ray`` against a real local Ray cluster (on loopback, started
by the fixture and shut down after): each analysis a Ray task on a scratch copy of S0,
the driver alone writes the branches, the run record and the ledger; a worker killed
mid-analysis is retried once and recorded once; one lost beyond its retries is an
errored analysis, and the stage goes on."""

from __future__ import annotations

import asyncio
import itertools
import os
import queue
import signal
import threading

import pytest

import t2s
from t2s.record.runs import RunRecord
from t2s.testing.simulated import analyst_responder
from tests.test_analysts_support import add_trajectory, load_config_and_suite, make_repo, start_run
from tests.test_ray_executor import ray_cluster, workers_named  # noqa: F401 - the module's cluster

pytest.importorskip("ray", reason="the Ray executor needs `pip install 't2s[ray]'`")

TRAJECTORIES = [("a-fail", "txt-1", True), ("b-pass", "txt-1", False), ("c-fail", "mul-2", True)]
#: The agentic analysis of c-fail (task mul-2) is the one whose worker is killed.
VICTIM, VICTIM_TEXT = "c-fail", "Put quantity times price into C2."


def models(srv) -> dict:
    role = {"model": "analyst-model", "base_url": srv.base_url, "api_key_env": "T2S_TEST_API_KEY"}
    return {"*": {**role, "max_retries": 1, "backoff_base": 0.001, "timeout": 20}}


def analyzed_run(tmp_path, runs=("r1",)):
    store = make_repo(tmp_path)
    _, suite = load_config_and_suite(store)
    for run in runs:
        record = start_run(store, run)
        for traj_id, task_id, wrong in TRAJECTORIES:
            add_trajectory(record, suite, task_id, wrong=wrong, tmp=tmp_path, traj_id=traj_id)
    return store, t2s.open_repo(store.root)


def patch_records(store, run: str) -> list[dict]:
    record = RunRecord(store, run)
    out = []
    for path in sorted(record.list("patches")):
        data = record.read_json(path)
        data.pop("branch"), data.pop("commit"), data.pop("created_at", None)
        out.append(data)
    return out


def first_turns(srv, text: str) -> list:
    """The first request of each analysis whose prompt holds ``text``."""
    return [
        r for r in srv.requests_for("analyst")
        if text in str(r.messages) and not any(m["role"] == "assistant" for m in r.messages)
    ]  # fmt: skip


@pytest.mark.parametrize("analyst", ["agentic", "single-call"])
def test_analyze_on_ray_gives_the_local_records_and_branches(tmp_path, scripted_server, ray_cluster, analyst):  # noqa: F811
    scripted_server.on(analyst_responder, role="analyst")
    store, repo = analyzed_run(tmp_path, runs=("local", "remote"))
    local = t2s.analyze(repo, "local", analyst=analyst, models=models(scripted_server), cache=False)
    calls = len(scripted_server.requests)
    remote = t2s.analyze(
        repo,
        "remote",
        analyst=analyst,
        models=models(scripted_server),
        cache=False,
        executor="ray",
        ray_address=ray_cluster,
    )
    assert len(scripted_server.requests) - calls == calls, remote  # every analysis ran, on the workers
    validated = 2 if analyst == "agentic" else 0
    assert (remote.analyzed, remote.accepted, remote.validated) == (local.analyzed, local.accepted, validated)
    assert (remote.analyzed, remote.accepted) == (3, 3)
    assert remote.tokens == local.tokens > 0  # the workers' ledgers came back
    assert patch_records(store, "remote") == patch_records(store, "local")
    for number in ("0001", "0002", "0003"):  # the same commit on S0 but for the run in its trailers
        mine, theirs = f"t2s/remote/patch/{number}", f"t2s/local/patch/{number}"
        assert store.tree_of(mine) == store.tree_of(theirs)
        assert store.parents(mine) == store.parents(theirs) == [RunRecord(store, "remote").manifest().s0]
        assert store.commit_message(mine).replace("remote", "local") == store.commit_message(theirs)
    ledger = RunRecord(store, "remote").read_json("ledger/analyze.json")
    assert ledger["totals"]["calls"] == calls


def test_a_worker_killed_mid_analysis_is_retried_once_and_recorded_once(tmp_path, scripted_server, ray_cluster):  # noqa: F811
    store, repo = analyzed_run(tmp_path)
    reached, release = threading.Event(), threading.Event()

    async def hold_first(req):
        if VICTIM_TEXT in str(req.messages) and not reached.is_set():
            reached.set()  # the first attempt of this analysis is in flight: its worker dies now
            await asyncio.to_thread(release.wait, 60)
        return analyst_responder(req)

    scripted_server.on(hold_first, role="analyst")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=analyze_on_ray(repo, scripted_server, ray_cluster)))
    thread.start()
    assert reached.wait(120), "the analysis never started"
    kill_analysis_workers()
    release.set()
    thread.join(300)
    summary = result["summary"]
    assert (summary.analyzed, summary.accepted, summary.errored) == (3, 3, 0)
    assert len(first_turns(scripted_server, VICTIM_TEXT)) == 2  # the lost attempt and Ray's one retry
    record = RunRecord(store, "r1")
    assert len(record.list("patches")) == 3 and store.rev_parse("t2s/r1/patch/0003") is not None
    subjects = store._git("log", "--format=%s", record.ref)
    assert subjects.count(f"analyze {VICTIM} ") == 1  # recorded once, by the driver


def test_an_analysis_lost_beyond_its_retries_errors_and_the_stage_goes_on(tmp_path, scripted_server, ray_cluster):  # noqa: F811
    store, repo = analyzed_run(tmp_path)
    arrived: queue.Queue[int] = queue.Queue()
    attempts, go = itertools.count(), [threading.Event(), threading.Event()]

    async def hold_every_attempt(req):
        if VICTIM_TEXT in str(req.messages) and not any(m["role"] == "assistant" for m in req.messages):
            attempt = next(attempts)
            if attempt < len(go):  # the two attempts of the first run; the next run's goes through
                arrived.put(attempt)
                await asyncio.to_thread(go[attempt].wait, 60)
        return analyst_responder(req)

    scripted_server.on(hold_every_attempt, role="analyst")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(summary=analyze_on_ray(repo, scripted_server, ray_cluster)))
    thread.start()
    for attempt in range(2):  # the first attempt and Ray's one retry: each loses its worker
        assert arrived.get(timeout=120) == attempt
        kill_analysis_workers()
        go[attempt].set()
    thread.join(300)
    summary = result["summary"]
    assert (summary.analyzed, summary.accepted, summary.errored) == (2, 2, 1)  # the others were recorded
    record = RunRecord(store, "r1")
    data = record.read_json(f"analyses/{VICTIM}.json")
    assert data["status"] == "errored" and data["error_cause"]["kind"] == "harness"
    assert "Ray task lost after 1 retry" in data["reason"]
    assert not any(record.read_json(p)["trajectory"] == VICTIM for p in record.list("patches"))
    assert summary.errored_work() is not None  # the command ends with exit status 3

    again = analyze_on_ray(repo, scripted_server, ray_cluster)  # errored: analyzed again, now it works
    assert (again.new, again.analyzed, again.accepted, again.errored) == (1, 3, 3, 0)
    assert record.read_json(f"analyses/{VICTIM}.json")["status"] == "accepted"


def test_a_budget_cap_stops_new_analyses_on_ray(tmp_path, scripted_server, ray_cluster):  # noqa: F811
    scripted_server.on(analyst_responder, role="analyst")
    store = make_repo(tmp_path)
    toml = store.root / "t2s.toml"
    toml.write_text(toml.read_text().replace("# max_calls = 2000", "max_calls = 1"))
    _, suite = load_config_and_suite(store)
    record = start_run(store)
    for traj_id, task_id, wrong in TRAJECTORIES:
        add_trajectory(record, suite, task_id, wrong=wrong, tmp=tmp_path, traj_id=traj_id)
    summary = analyze_on_ray(t2s.open_repo(store.root), scripted_server, ray_cluster)
    assert summary.stopped and "max_calls=1" in summary.stopped
    assert (summary.analyzed, summary.remaining) == (1, 2)  # the first ran on a worker; no new one started
    calls = len(scripted_server.requests)
    assert RunRecord(store, "r1").read_json("ledger/analyze.json")["totals"]["calls"] == calls > 1


def analyze_on_ray(repo, srv, address):
    return t2s.analyze(repo, "r1", models=models(srv), cache=False, concurrency=1, executor="ray", ray_address=address)


def kill_analysis_workers() -> None:
    pids = workers_named(b"run_analysis_job", b"t2s_analysis")
    assert pids, "no Ray worker is running an analysis"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)


def test_the_cli_takes_the_executor(tmp_path, scripted_server, ray_cluster):  # noqa: F811
    import json

    from click.testing import CliRunner

    from t2s.cli import main
    from tests.test_analyze_cli import model_flags

    scripted_server.on(analyst_responder, role="analyst")
    store, _ = analyzed_run(tmp_path)
    args = ["analyze", "-C", str(store.root), "--run", "r1", "--json", "--executor", "ray"]
    result = CliRunner().invoke(main, [*args, "--ray-address", ray_cluster, *model_flags(scripted_server)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accepted"] == 3
    assert store.rev_parse("t2s/r1/patch/0003") is not None
