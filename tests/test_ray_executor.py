"""The Ray executor against a real local Ray cluster (on loopback, started by the
fixture and shut down after): episodes as Ray tasks, the driver alone records them,
a worker killed mid-episode is retried once and recorded once."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import signal
import threading
from pathlib import Path

import pytest

import t2s
from t2s.agent.trajectory import load_trajectory
from t2s.record.notes import read_eval_note
from t2s.record.runs import RunRecord
from tests.test_eval_support import HELDOUT, agent_calls, agent_responder, make_repo

# Ray gives a cluster the host's outward address unless this is off (read when ray is
# imported): the test cluster stays on loopback.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
ray = pytest.importorskip("ray", reason="the Ray executor needs `pip install 't2s[ray]'`")


@pytest.fixture(scope="module")
def ray_cluster():
    """A real Ray cluster of this machine, bound to 127.0.0.1, for this module."""
    info = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    assert info.address_info["node_ip_address"] == "127.0.0.1"
    yield info.address_info["gcs_address"]
    ray.shutdown()


def comparable(record) -> dict:
    return record.model_dump(exclude={"created_at", "duration_s"})


def test_eval_on_ray_gives_the_local_result_and_counts_the_workers_calls(tmp_path, scripted_server, ray_cluster):
    store = make_repo(tmp_path, scripted_server)
    repo = t2s.open_repo(store.root)
    local = t2s.evaluate(repo, "HEAD", cache=False).record
    calls = agent_calls(scripted_server)
    remote = t2s.evaluate(repo, "HEAD", cache=False, executor="ray", ray_address=ray_cluster).record
    assert agent_calls(scripted_server) - calls == 8  # every episode ran, on the workers
    assert remote.model_calls == 8 and remote.tokens == local.tokens  # the workers' ledgers came back
    assert comparable(remote) == comparable(local)
    assert [v.task for v in read_eval_note(store, "HEAD").evals[0].tasks] == HELDOUT


def test_a_worker_killed_mid_episode_is_retried_once_and_recorded_once(tmp_path, scripted_server, ray_cluster):
    store = make_repo(tmp_path, scripted_server)
    repo = t2s.open_repo(store.root)
    reached, release = threading.Event(), threading.Event()
    victim = "easy2"

    async def hold_first(req):
        user = next(m["content"] for m in req.messages if m["role"] == "user")
        if f"1_{victim}_init" in user and not reached.is_set():
            reached.set()  # the first attempt of this episode is in flight: its worker dies now
            await asyncio.to_thread(release.wait, 60)
        return agent_responder(req)

    scripted_server.reset()
    scripted_server.on(hold_first, role="agent")
    result: dict = {}

    def run() -> None:
        result["summary"] = t2s.rollout(
            repo, "r1", tasks=list(HELDOUT), split="evolve", executor="ray", ray_address=ray_cluster
        )

    worker = threading.Thread(target=run)
    worker.start()
    assert reached.wait(120), "the episode never started"
    pids = episode_workers()
    assert pids, "no Ray worker is running an episode"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    release.set()
    worker.join(300)
    summary = result["summary"]
    assert (summary.passed + summary.failed, summary.errored) == (4, 0)
    first_turns = [
        r for r in scripted_server.requests_for("agent")
        if f"1_{victim}_init" in str(r.messages) and not any(m["role"] == "assistant" for m in r.messages)
    ]  # fmt: skip
    assert len(first_turns) == 2  # the lost attempt and Ray's one retry
    record = RunRecord(store, "r1")
    assert sorted(Path(p).stem for p in record.list("trajectories")) == sorted(HELDOUT)
    subjects = store._git("log", "--format=%s", record.ref)
    assert subjects.count(f"rollout {victim} ") == 1  # recorded once, by the driver
    assert record.read_json("ledger/rollout.json")["totals"]["calls"] >= 8


def test_an_episode_lost_beyond_its_retries_is_errored_and_the_rollout_goes_on(tmp_path, scripted_server, ray_cluster):
    store = make_repo(tmp_path, scripted_server)
    repo = t2s.open_repo(store.root)
    victim = "easy2"
    arrived: queue.Queue[int] = queue.Queue()
    attempts, go = itertools.count(), [threading.Event(), threading.Event()]

    async def hold_every_attempt(req):
        user = next(m["content"] for m in req.messages if m["role"] == "user")
        if f"1_{victim}_init" in user and not any(m["role"] == "assistant" for m in req.messages):
            attempt = next(attempts)
            if attempt < len(go):  # the two attempts of the first rollout; the next one's goes through
                arrived.put(attempt)
                await asyncio.to_thread(go[attempt].wait, 60)
        return agent_responder(req)

    scripted_server.reset()
    scripted_server.on(hold_every_attempt, role="agent")
    result: dict = {}

    def run() -> None:
        result["summary"] = t2s.rollout(
            repo, "r1", tasks=list(HELDOUT), split="evolve", concurrency=1, executor="ray", ray_address=ray_cluster
        )

    worker = threading.Thread(target=run)
    worker.start()
    for attempt in range(2):  # the first attempt and Ray's one retry: each loses its worker
        assert arrived.get(timeout=120) == attempt
        pids = episode_workers()
        assert pids, "no Ray worker is running an episode"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        go[attempt].set()
    worker.join(300)
    summary = result["summary"]
    assert (summary.passed + summary.failed, summary.errored) == (3, 1)  # the other episodes were recorded
    record = RunRecord(store, "r1")
    traj = load_trajectory(record.read(f"trajectories/{victim}.json"))
    assert (traj.verdict, traj.stop_reason, traj.task_id) == ("errored", "error", victim)
    assert traj.error_cause is not None and traj.error_cause.kind == "harness"
    assert "Ray task lost after 1 retry" in traj.error

    again = t2s.rollout(repo, "r1", tasks=list(HELDOUT), split="evolve", executor="ray", ray_address=ray_cluster)
    assert (again.ran, again.errored) == (1, 0)  # errored: run again next time, like a local error
    assert load_trajectory(record.read(f"trajectories/{victim}.json")).verdict in ("passed", "failed")


def episode_workers() -> list[int]:
    """Pids of the Ray workers running an episode now."""
    return workers_named(b"run_work", b"t2s_episode")


def workers_named(*names: bytes) -> list[int]:
    """Pids of this test process's Ray workers running a task called one of ``names`` now
    (Ray names the process after the task). Only descendants of this process: the
    cluster of another pytest worker, or of anyone else on the machine, is left alone."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::") and any(name in title for name in names) and _descends_from_us(int(entry.name)):
            found.append(int(entry.name))
    return found


def _descends_from_us(pid: int) -> bool:
    while pid > 1:
        if pid == os.getpid():
            return True
        try:  # the parent pid is the field after the ")" that ends the command name
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def test_a_budget_cap_stops_new_episodes_on_ray(tmp_path, scripted_server, ray_cluster):
    store = make_repo(tmp_path, scripted_server, extra_toml="\n[budget]\nmax_calls = 2\n")
    repo = t2s.open_repo(store.root)
    summary = t2s.rollout(
        repo, "r1", tasks=list(HELDOUT), split="evolve", concurrency=1, executor="ray", ray_address=ray_cluster
    )
    assert summary.stopped and "max_calls=2" in summary.stopped
    assert (summary.ran, summary.remaining) == (1, 3)  # one episode (2 calls) ran; no new one started
    assert agent_calls(scripted_server) == 2
    assert RunRecord(store, "r1").read_json("ledger/rollout.json")["totals"]["calls"] == 2


def test_evolve_runs_its_episodes_and_analyses_on_ray(tmp_path, scripted_server, ray_cluster, monkeypatch):
    from click.testing import CliRunner

    from t2s.cli import main
    from t2s.demo import _configure
    from t2s.demo.simulation import agent_responder as demo_agent, analyst_responder
    from t2s.demo.tasks import write_suite
    from t2s.gitstore.store import GitStore
    from t2s.skill.repo import init_skill_repo
    from t2s.testing.simulated import merger_responder

    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    init_skill_repo(repo, seed="xlsx", install_git_hooks=False)
    _configure(repo)
    # Each model request notes whether a Ray worker was running the stage's task as it
    # arrived: an evolve that ran its stages here, not on Ray, leaves both lists False.
    on_ray: dict[str, list[bool]] = {"agent": [], "analyst": []}

    def seen_on_ray(role: str, responder, *names: bytes):
        def respond(request):
            on_ray[role].append(bool(workers_named(*names)))
            return responder(request)

        return respond

    scripted_server.on(seen_on_ray("agent", demo_agent, b"run_work", b"t2s_episode"), role="agent")
    scripted_server.on(seen_on_ray("analyst", analyst_responder, b"run_analysis_job", b"t2s_analysis"), role="analyst")
    scripted_server.on(merger_responder, role="merger")
    monkeypatch.setenv("T2S_BASE_URL", scripted_server.base_url)
    monkeypatch.setenv("T2S_API_KEY_ENV", "T2S_TEST_API_KEY")
    args = ["evolve", "-C", str(repo), "--run", "e1", "--limit", "3", "--json"]

    wrong = CliRunner().invoke(main, [*args, "--ray-address", ray_cluster])
    assert wrong.exit_code == 2 and "--ray-address goes with --executor ray" in wrong.output
    result = CliRunner().invoke(main, [*args, "--executor", "ray", "--ray-address", ray_cluster])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert len(summary["rollout"]["trajectories"]) == 3 and summary["analyze"]["accepted"] >= 1
    assert GitStore.discover(repo).rev_parse("refs/heads/t2s/e1/candidate") is not None
    assert on_ray["agent"] and all(on_ray["agent"]) and on_ray["analyst"] and all(on_ray["analyst"])
