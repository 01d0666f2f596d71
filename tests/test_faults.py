"""A failing model endpoint never becomes a verdict (issue 13, part B).

Every endpoint failure mode of the scripted server (plus an endpoint that is simply
down) against the real ``t2s`` CLI: ``eval``, ``rollout`` and ``analyze`` exit 3 with
the causes, nothing is written as a score or cached as a verdict, and once the endpoint
recovers the same commands (without ``--no-cache``) give the true results.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from t2s.agent.trajectory import read_trajectories
from t2s.cli import main
from t2s.record.lessons import PatchRecord
from t2s.record.notes import EVAL_NOTES, read_eval_note
from t2s.record.runs import RunRecord
from t2s.testing.simulated import analyst_responder
from tests.test_eval_support import agent_calls, commit_skill, make_repo as make_eval_repo

#: The eight ways an endpoint fails, and the cause t2s must report for each.
MODES = {
    "down": "unreachable",  # nothing listens: connection refused
    "500": "server-error",
    "429": "rate-limited",  # 429 forever
    "malformed": "bad-response",  # 200, a body that is not JSON
    "wrong_shape": "bad-response",  # 200, JSON that is not a completion
    "hang": "timeout",
    "drop": "connection-lost",  # closed without a response
    "truncated": "connection-lost",  # the body stops half way
}

#: The exit status of a command whose work errored (docs/evaluation.md, README).
EXIT_ERRORED = 3

#: The held-out score of the test skill (easy tasks pass, hard ones fail): see test_eval.py.
TRUE_SCORE = 0.5


def dead_url() -> str:
    """An endpoint where nothing listens (a port that was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def break_endpoint(mode: str, server, monkeypatch, role: str) -> None:
    if mode == "down":
        monkeypatch.setenv(f"T2S_{role.upper()}_BASE_URL", dead_url())
        return
    if mode == "hang":
        monkeypatch.setenv(f"T2S_{role.upper()}_TIMEOUT", "0.5")  # keep the test fast
    server.fault(mode, times=None, role=role, retry_after=0.01 if mode == "429" else None)


def mend_endpoint(server, monkeypatch, role: str) -> None:
    server.clear_faults()
    monkeypatch.setenv(f"T2S_{role.upper()}_BASE_URL", server.base_url)
    monkeypatch.delenv(f"T2S_{role.upper()}_TIMEOUT", raising=False)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# ---------------------------------------------------------------------- eval and rollout
@pytest.mark.parametrize("mode", list(MODES))
def test_a_failing_agent_endpoint_is_an_error_never_a_verdict(mode, tmp_path, scripted_server, monkeypatch):
    store = make_eval_repo(tmp_path, scripted_server, monkeypatch=monkeypatch)
    repo = str(store.root)
    break_endpoint(mode, scripted_server, monkeypatch, "agent")

    # eval: exit 3, the cause of every errored task, and no note (so nothing to reuse)
    failed = invoke("eval", "HEAD", "-C", repo, "--json")
    assert failed.exit_code == EXIT_ERRORED, failed.output
    data = json.loads(failed.stdout)
    assert data["stored"] is False and data["errored"] == 4 and data["total"] == 4
    assert "score" not in data and "record" not in data
    assert [(e["kind"], e["count"], e["role"]) for e in data["errors"]] == [(MODES[mode], 4, "agent")]
    assert all(t["verdict"] == "errored" for t in data["tasks"])
    assert store.list_notes(EVAL_NOTES) == {}
    assert "errored" in failed.stderr and "no result was recorded" in failed.stderr

    # rollout: the errored trajectory is recorded as errored (with its cause), exit 3
    rolled = invoke("rollout", "-C", repo, "--run", "r1", "--json")
    assert rolled.exit_code == EXIT_ERRORED, rolled.output
    summary = json.loads(rolled.stdout)
    assert (summary["errored"], summary["failed"], summary["passed"]) == (1, 0, 0)
    assert [(e["kind"], e["count"]) for e in summary["errors"]] == [(MODES[mode], 1)]
    (traj,) = read_trajectories(RunRecord(store, "r1"))
    assert traj.verdict == "errored" and traj.error_cause.kind == MODES[mode]

    # the endpoint recovers: the true score, without --no-cache, and the note holds it
    mend_endpoint(scripted_server, monkeypatch, "agent")
    before = agent_calls(scripted_server)
    good = invoke("eval", "HEAD", "-C", repo, "--json")
    assert good.exit_code == 0, good.output
    data = json.loads(good.stdout)
    assert data["cached"] is False and data["record"]["score"] == TRUE_SCORE
    assert agent_calls(scripted_server) - before == 8  # every task ran again
    assert read_eval_note(store, "HEAD").evals[0].score == TRUE_SCORE

    # and the resumed rollout runs the errored task again
    resumed = invoke("rollout", "-C", repo, "--run", "r1", "--json")
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout)
    assert (summary["passed"], summary["errored"], summary["ran"], summary["errors"]) == (1, 0, 1, [])


def test_gate_refuses_to_judge_while_the_endpoint_is_down_and_judges_right_after(
    tmp_path, scripted_server, monkeypatch
):
    store = make_eval_repo(tmp_path, scripted_server, monkeypatch=monkeypatch)
    repo = str(store.root)
    head = store.resolve("HEAD")
    better = commit_skill(store, [head], ["LESSON hard1", "LESSON hard2"], "lessons")
    break_endpoint("500", scripted_server, monkeypatch, "agent")

    down = invoke("gate", better, "--baseline", head, "-C", repo, "--json")
    assert down.exit_code == EXIT_ERRORED, down.output
    data = json.loads(down.stdout)
    assert data["passed"] is None and [e["kind"] for e in data["errors"]] == ["server-error"]
    assert store.list_notes(EVAL_NOTES) == {}

    mend_endpoint(scripted_server, monkeypatch, "agent")
    up = invoke("gate", better, "--baseline", head, "-C", repo, "--json")
    assert up.exit_code == 0, up.output
    data = json.loads(up.stdout)
    assert data["passed"] is True and data["gate"]["regressions"] == 0
    assert (data["baseline"]["score"], data["candidate"]["score"]) == (TRUE_SCORE, 1.0)


def test_an_evaluation_stops_starting_tasks_once_one_errored(tmp_path, scripted_server, monkeypatch):
    """Nothing of an evaluation with an errored task is kept, so the rest would be wasted."""
    store = make_eval_repo(tmp_path, scripted_server, monkeypatch=monkeypatch)
    toml = store.root / "t2s.toml"
    toml.write_text(toml.read_text().replace("concurrency = 4", "concurrency = 1"))
    scripted_server.fault("500", times=None, role="agent")
    result = invoke("eval", "HEAD", "-C", str(store.root), "--json")
    assert result.exit_code == EXIT_ERRORED, result.output
    data = json.loads(result.stdout)
    assert [(e["kind"], e["count"]) for e in data["errors"]] == [("server-error", 1), ("not-run", 3)]
    assert agent_calls(scripted_server) == 2  # one task, two attempts; the other three never started
    assert data["errored"] == 4 and store.list_notes(EVAL_NOTES) == {}


def test_an_errored_record_left_by_an_older_t2s_is_not_reused(tmp_path, scripted_server, monkeypatch):
    """t2s before this fix wrote errored tasks as ``fail 0.00``: such a record carries the
    error on its tasks, and neither the cache nor the gate may trust it."""
    from t2s.config import load_config
    from t2s.evaluation.context import make_context
    from t2s.evaluation.evaluate import make_record
    from t2s.evaluation.runner import RunResult
    from t2s.record.notes import TaskVerdict, update_eval_note

    store = make_eval_repo(tmp_path, scripted_server, monkeypatch=monkeypatch)
    ctx = make_context(store, load_config(store.root / "t2s.toml"))
    head = store.resolve("HEAD")
    cause = "agent model call to http://127.0.0.1:9/v1 (agent-model) failed after 2 attempts: connection failed"
    poisoned = make_record(
        ctx,
        head,
        store.subtree(head, ctx.skill_dir),
        RunResult(
            verdicts=[
                TaskVerdict(task=t, passed=False, score=0.0, error=cause, stop_reason="error") for t in ctx.task_ids
            ]
        ),
        1.0,
    )
    update_eval_note(store, head, lambda note: note.upsert(poisoned))

    result = invoke("eval", "HEAD", "-C", str(store.root), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["cached"] is False and data["record"]["score"] == TRUE_SCORE
    assert [r.score for r in read_eval_note(store, head).evals] == [TRUE_SCORE]


def test_a_model_that_answers_uselessly_is_a_genuine_failure(tmp_path, scripted_server, monkeypatch):
    """The other side of the line: the endpoint works and the model answers, but with
    prose instead of actions. That is a verdict (failed, score 0), recorded and cached."""
    store = make_eval_repo(tmp_path, scripted_server, monkeypatch=monkeypatch)
    scripted_server.reset()
    scripted_server.on("I would rather not touch spreadsheets today.", role="agent")
    result = invoke("eval", "HEAD", "-C", str(store.root), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["record"]
    assert (record["score"], record["passed"]) == (0.0, 0)
    assert {t["stop_reason"] for t in record["tasks"]} == {"max_turns"} and not any(t["error"] for t in record["tasks"])
    assert read_eval_note(store, "HEAD").evals[0].complete


def test_bisect_stops_at_an_errored_step_instead_of_blaming_the_commit(tmp_path, scripted_server, monkeypatch):
    """Before, the outage scored the middle commit 0.0 and bisect blamed it."""
    store = make_eval_repo(tmp_path, scripted_server, monkeypatch=monkeypatch, heldout=("easy1", "easy2"))
    repo = str(store.root)
    good = store.resolve("HEAD")
    middle = commit_skill(store, [good], ["Tip: keep the sums exact."], "a harmless tip")
    bad = commit_skill(store, [middle], ["Tip: keep the sums exact.", "BREAKING easy1"], "a breaking tip")
    store.create_ref("refs/heads/bad", bad)
    for rev in (good, bad):  # the endpoints are evaluated while the endpoint works (cached)
        assert invoke("eval", rev, "-C", repo, "-q").exit_code == 0
    break_endpoint("500", scripted_server, monkeypatch, "agent")

    result = invoke("bisect", "--good", good, "--bad", bad, "-C", repo, "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["first_bad"] is None
    assert ["task runs errored" in s.get("error", "") for s in data["steps"]] == [True]
    assert read_eval_note(store, middle) is None


# ---------------------------------------------------------------------- analyze
def analyst_flags(base_url: str) -> list[str]:
    return [
        "--base-url",
        base_url,
        "--model",
        "analyst-model",
        "--api-key-env",
        "T2S_TEST_API_KEY",
        "--set",
        "all.max_retries=1",
        "--set",
        "all.backoff_base=0.001",
        "--set",
        "all.backoff_max=0.01",
    ]


def _analysis_repo(tmp_path):
    from tests.test_analysts_support import add_trajectory, load_config_and_suite, make_repo, start_run

    store = make_repo(tmp_path)
    _, suite = load_config_and_suite(store)
    record = start_run(store)
    add_trajectory(record, suite, "txt-1", wrong=True, tmp=tmp_path, traj_id="a-fail")
    add_trajectory(record, suite, "txt-1", wrong=False, tmp=tmp_path, traj_id="b-pass")
    return store, record


@pytest.mark.parametrize("mode", list(MODES))
def test_a_failing_analyst_endpoint_is_retried_on_the_next_run(mode, tmp_path, scripted_server, monkeypatch):
    scripted_server.on(analyst_responder, role="analyst")
    store, record = _analysis_repo(tmp_path)
    repo = str(store.root)
    url = dead_url() if mode == "down" else scripted_server.base_url
    if mode != "down":
        scripted_server.fault(mode, times=None, role="analyst", retry_after=0.01 if mode == "429" else None)
    extra = ["--set", "all.timeout=0.5"] if mode == "hang" else []

    failed = invoke(
        "analyze", "-C", repo, "--run", "r1", "--analyst", "single-call", "--json", *analyst_flags(url), *extra
    )
    assert failed.exit_code == EXIT_ERRORED, failed.output
    summary = json.loads(failed.stdout)
    assert (summary["errored"], summary["analyzed"], summary["rejected"]) == (2, 0, 0)
    assert [(e["kind"], e["count"], e["role"]) for e in summary["errors"]] == [(MODES[mode], 2, "analyst")]
    assert record.list("patches") == []  # no verdict on any trajectory
    analysis = record.read_json("analyses/a-fail.json")
    assert analysis["status"] == "errored" and analysis["error_cause"]["kind"] == MODES[mode]

    scripted_server.clear_faults()
    again = invoke(
        "analyze",
        "-C",
        repo,
        "--run",
        "r1",
        "--analyst",
        "single-call",
        "--json",
        *analyst_flags(scripted_server.base_url),
    )
    assert again.exit_code == 0, again.output + str(scripted_server.errors)
    summary = json.loads(again.stdout)
    assert (summary["analyzed"], summary["accepted"], summary["errored"], summary["skipped"]) == (2, 2, 0, 0)
    assert record.list("patches") == ["patches/0001.json", "patches/0002.json"]


def test_an_analyst_whose_answer_never_validates_is_rejected_not_errored(tmp_path, scripted_server):
    scripted_server.on(analyst_responder, role="analyst")
    store, _record = _analysis_repo(tmp_path)
    scripted_server.fault("non_json_content", times=None, role="analyst")
    result = invoke(
        "analyze",
        "-C",
        str(store.root),
        "--run",
        "r1",
        "--analyst",
        "single-call",
        "--json",
        *analyst_flags(scripted_server.base_url),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["rejected"], summary["errored"]) == (2, 0)
    assert summary["rejected_by_reason"] == {"unusable answer": 2}


def test_the_agentic_analyst_errors_too_and_keep_errored_leaves_them(tmp_path, scripted_server):
    scripted_server.on(analyst_responder, role="analyst")
    store, _record = _analysis_repo(tmp_path)
    repo = str(store.root)
    scripted_server.fault("500", times=None, role="analyst")
    failed = invoke("analyze", "-C", repo, "--run", "r1", "--mode", "error", *analyst_flags(scripted_server.base_url))
    assert failed.exit_code == EXIT_ERRORED, failed.output
    assert "1 of 1 analyses errored" in failed.output and "server-error" in failed.output
    assert "Traceback" not in failed.output

    scripted_server.clear_faults()
    kept = invoke(
        "analyze",
        "-C",
        repo,
        "--run",
        "r1",
        "--mode",
        "error",
        "--keep-errored",
        "--json",
        *analyst_flags(scripted_server.base_url),
    )
    assert kept.exit_code == EXIT_ERRORED and json.loads(kept.stdout)["new"] == 0
    retried = invoke(
        "analyze",
        "-C",
        repo,
        "--run",
        "r1",
        "--mode",
        "error",
        "--retry-errored",
        "--json",
        *analyst_flags(scripted_server.base_url),
    )
    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.stdout)["accepted"] == 1


def test_an_analyst_error_recorded_by_an_older_t2s_is_analysed_again(tmp_path, scripted_server):
    """Before this fix an unreachable analyst was recorded as ``rejected (analyst error)``
    for good; such a record is retried, and keeps its patch number."""
    scripted_server.on(analyst_responder, role="analyst")
    store, record = _analysis_repo(tmp_path)
    legacy = PatchRecord(
        patch="0001",
        trajectory="a-fail",
        task="txt-1",
        outcome="failed",
        analyst="single-call",
        status="rejected",
        reason="analyst call failed: analyst model call to http://127.0.0.1:9/v1 "
        "(analyst-model) failed after 6 attempts: connection failed: refused",
    )
    record.write(
        {legacy.path: legacy, "analyses/a-fail.json": {"status": "rejected", "reject_kind": "analyst error"}},
        "an older t2s",
    )
    result = invoke(
        "analyze",
        "-C",
        str(store.root),
        "--run",
        "r1",
        "--mode",
        "error",
        "--analyst",
        "single-call",
        "--json",
        *analyst_flags(scripted_server.base_url),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["accepted"], data["rejected"], data["new"]) == (1, 0, 1)
    assert PatchRecord.model_validate(record.read_json("patches/0001.json")).status == "accepted"


# ---------------------------------------------------------------------- evolve
def test_evolve_names_the_real_cause(tmp_path, scripted_server, monkeypatch):
    from t2s.demo import _configure
    from t2s.demo.tasks import write_suite
    from t2s.skill.repo import init_skill_repo

    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    init_skill_repo(repo, seed="xlsx", install_git_hooks=False)
    _configure(repo)
    url = dead_url()
    monkeypatch.setenv("T2S_BASE_URL", url)
    monkeypatch.setenv("T2S_API_KEY_ENV", "T2S_TEST_API_KEY")
    monkeypatch.setenv("T2S_MAX_RETRIES", "1")
    monkeypatch.setenv("T2S_BACKOFF_BASE", "0.001")
    result = invoke("evolve", "-C", str(repo), "--run", "e1", "--limit", "2")
    assert result.exit_code == EXIT_ERRORED, result.output
    assert f"2 of 2 trajectories errored: the agent model at {url} was unreachable" in result.output
    assert "t2s analyze` first" not in result.output
    assert "2/3 analyze" not in result.output  # it stopped at the stage that errored

    # merging the run by hand says why there is nothing to merge
    merged = invoke("merge", "-C", str(repo), "--run", "e1")
    assert merged.exit_code == 1
    assert f"2 of 2 trajectories errored: the agent model at {url} was unreachable" in merged.output
    assert "t2s rollout --run e1` again" in merged.output


def test_a_rollout_stops_starting_tasks_while_the_endpoint_is_down(tmp_path, scripted_server, monkeypatch):
    from t2s.demo import _configure
    from t2s.demo.simulation import agent_responder
    from t2s.demo.tasks import write_suite
    from t2s.skill.repo import init_skill_repo

    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    init_skill_repo(repo, seed="xlsx", install_git_hooks=False)
    _configure(repo)
    url = dead_url()
    for name, value in (
        ("T2S_BASE_URL", url),
        ("T2S_API_KEY_ENV", "T2S_TEST_API_KEY"),
        ("T2S_MAX_RETRIES", "1"),
        ("T2S_BACKOFF_BASE", "0.001"),
    ):
        monkeypatch.setenv(name, value)
    args = ["rollout", "-C", str(repo), "--run", "r1", "--limit", "6", "--concurrency", "1", "--json"]
    down = invoke(*args)
    assert down.exit_code == EXIT_ERRORED, down.output
    summary = json.loads(down.stdout)
    assert (summary["errored"], summary["remaining"], summary["total"]) == (3, 3, 6)
    assert summary["stopped"].startswith(f"3 tasks in a row errored because the agent model at {url} was unreachable")
    assert "3 task(s) not run" in " ".join(down.stderr.split())

    scripted_server.on(agent_responder, role="agent")
    monkeypatch.setenv("T2S_BASE_URL", scripted_server.base_url)
    up = invoke(*args)
    assert up.exit_code == 0, up.output
    summary = json.loads(up.stdout)
    assert (summary["ran"], summary["errored"], summary["remaining"]) == (6, 0, 0)


def test_the_breaker_counts_endpoint_failures_in_a_row_only():
    from t2s.faults import Breaker, ErrorCause

    down = ErrorCause(kind="unreachable", message="refused", role="agent", endpoint="http://x/v1")
    breaker = Breaker(2, "tasks")
    assert breaker.record(down) is None
    assert breaker.record(None) is None  # a verdict in between: the endpoint works
    assert breaker.record(down) is None
    assert (
        breaker.record(ErrorCause(kind="unusable-answer", message="prose", role="agent")) is None
    )  # the model, not the endpoint
    assert breaker.record(ErrorCause(kind="harness", message="a crash")) is None
    assert (
        breaker.record(down)
        == "2 tasks in a row errored because the agent model at http://x/v1 was unreachable (refused)"
    )


# ---------------------------------------------------------------------- models check
def test_models_check_honours_the_configured_timeout_on_a_hanging_endpoint(tmp_path, scripted_server):
    """``T2S_TIMEOUT`` (and ``[models]`` timeouts) bound the probe: a hanging endpoint is
    reported after that time, not after the probe's own 60 s (twice)."""
    scripted_server.fault("hang", times=None)
    env = {
        **__import__("os").environ,
        "T2S_BASE_URL": scripted_server.base_url,
        "T2S_TIMEOUT": "0.5",
        "T2S_API_KEY_ENV": "T2S_TEST_API_KEY",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "t2s", "models", "check", "--role", "agent", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert not row["ok"] and "0.5s" in row["error"] and "timeout" in row["error"]

    (tmp_path / "t2s.toml").write_text("[models.analyst]\ntimeout = 0.5\n")
    env.pop("T2S_TIMEOUT")
    proc = subprocess.run(
        [sys.executable, "-m", "t2s", "models", "check", "--role", "analyst", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert "0.5s" in row["error"]


# ---------------------------------------------------------------------- the eval lock
_WAITER = """
import sys
from t2s.cli import main
sys.argv = ["t2s", "eval", "HEAD", "-C", sys.argv[1], "--json"]
main()
"""


def _first_line(stream, timeout: float = 60) -> str:
    """The first line of ``stream``, read in a thread so a process that never writes
    one fails the test instead of hanging it."""
    import queue
    import threading

    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


def test_two_evals_of_one_revision_run_the_model_once(tmp_path, scripted_server, monkeypatch):
    """The second `t2s eval` of the same skill waits for the first, then reuses its note."""
    import threading

    from tests.test_eval_support import agent_responder

    store = make_eval_repo(tmp_path, scripted_server, monkeypatch=monkeypatch)
    started, release = threading.Event(), threading.Event()

    async def held_agent(req):
        import asyncio

        started.set()
        await asyncio.get_running_loop().run_in_executor(None, release.wait)
        return agent_responder(req)

    scripted_server.reset()
    scripted_server.on(held_agent, role="agent")
    cmd = [sys.executable, "-c", _WAITER, str(store.root)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert started.wait(60), "the first eval never called the model"
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert "waiting for another `t2s eval`" in _first_line(second.stderr)
            release.set()
            out1, err1 = first.communicate(timeout=120)
            out2, err2 = second.communicate(timeout=120)
        finally:
            second.kill()
    finally:
        release.set()
        first.kill()
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    one, two = json.loads(out1), json.loads(out2)
    assert one["cached"] is False and two["cached"] is True
    assert one["record"]["score"] == two["record"]["score"] == TRUE_SCORE
    assert agent_calls(scripted_server) == 8  # the model ran once, for the first eval only
