"""``t2s rollout``: the run record, resume after a budget stop, the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from t2s.agent.trajectory import read_trajectories
from t2s.cli import main
from t2s.config import load_config
from t2s.gitstore.store import GitStore
from t2s.llm.client import LLM
from t2s.record.runs import RunRecord
from t2s.rollouts.rollout import rollout
from t2s.testing.pytest_plugin import scripted_role
from tests._agent_support import EVOLVE, make_skill_repo, needs_benchmark, task_of, tools_agent

pytestmark = needs_benchmark


@pytest.fixture
def repo(tmp_path):
    return make_skill_repo(tmp_path / "skills")


def llm_for(srv, **budget):
    return LLM(roles={"agent": scripted_role(srv, protocol="tools")}, env={}, budget=budget or None)


def test_rollout_records_every_task_in_the_run(scripted_server, repo):
    scripted_server.on(tools_agent(inspect=False), role="agent")
    store = GitStore.discover(repo)
    config = load_config(repo / "t2s.toml")
    s0 = store.resolve("HEAD")
    # an uncommitted edit of the skill must not reach the agent: S0 is read from git
    skill_md = repo / "skills" / "xlsx" / "SKILL.md"
    skill_md.write_text(skill_md.read_text().replace("# Working with Excel workbooks", "# WORKING TREE EDIT"))

    summary = rollout(store, config, run="r1", llm=llm_for(scripted_server), concurrency=2)
    assert (summary.passed, summary.failed, summary.errored, summary.remaining) == (3, 0, 0, 0)
    assert summary.s0 == s0 and summary.split == "evolve" and summary.tokens > 0
    assert all("WORKING TREE EDIT" not in r.messages[0]["content"] for r in scripted_server.requests)

    record = RunRecord(store, "r1")
    manifest = record.manifest()
    assert manifest.s0 == s0 and manifest.skill_dir == "skills/xlsx"
    assert manifest.suite == "sheets" and manifest.split == "evolve"
    assert manifest.stages["rollout"].status == "done"
    assert manifest.stages["rollout"].summary["passed"] == 3
    assert "api_key" not in json.dumps(manifest.models).replace("api_key_env", "")
    trajs = {t.id: t for t in read_trajectories(record)}
    assert set(trajs) == set(EVOLVE)
    for traj in trajs.values():
        assert traj.verdict == "passed" and traj.s0 == s0
        assert traj.skill_tree == store.subtree(s0, "skills/xlsx")
        assert traj.suite == "sheets" and traj.split == "evolve" and traj.source == "rollout"
        assert record.read(f"artifacts/{traj.id}/output.xlsx")[:2] == b"PK"  # a real xlsx (zip)
        assert b"openpyxl" in record.read(f"artifacts/{traj.id}/scripts/001.py")
    ledger = record.read_json("ledger/rollout.json")
    assert ledger["totals"]["calls"] == 6


def test_interrupted_rollout_resumes_without_rerunning_finished_tasks(scripted_server, repo):
    scripted_server.on(tools_agent(), role="agent")  # 3 calls per task
    store = GitStore.discover(repo)
    config = load_config(repo / "t2s.toml")

    first = rollout(store, config, run="r2", llm=llm_for(scripted_server, max_calls=4), concurrency=1)
    assert first.stopped and "max_calls=4" in first.stopped
    assert (first.passed, first.remaining) == (1, 2)
    record = RunRecord(store, "r2")
    assert record.manifest().stages["rollout"].status == "failed"
    done = [t.task_id for t in read_trajectories(record)]
    assert done == ["45300"]  # the task cut off midway is not recorded

    before = len(scripted_server.requests)
    second = rollout(store, config, run="r2", llm=llm_for(scripted_server), concurrency=2)
    assert (second.passed, second.skipped, second.ran, second.remaining) == (3, 1, 2, 0)
    assert second.stopped is None
    new_requests = scripted_server.requests[before:]
    assert len(new_requests) == 6
    assert {task_of(r)[0] for r in new_requests} == {"51431", "40478"}  # 45300 made no new request
    assert record.manifest().stages["rollout"].status == "done"
    assert record.read_json("ledger/rollout.json")["totals"]["calls"] == 4 + 6

    third = rollout(store, config, run="r2", llm=llm_for(scripted_server))
    assert (third.ran, third.skipped, third.passed) == (0, 3, 3)
    assert len(scripted_server.requests) == before + 6


def test_errored_tasks_run_again_on_resume(scripted_server, repo):
    store = GitStore.discover(repo)
    config = load_config(repo / "t2s.toml")
    scripted_server.fault("500", times=None)
    first = rollout(store, config, run="r3", llm=llm_for(scripted_server), limit=1)
    assert first.errored == 1
    scripted_server.reset()
    scripted_server.on(tools_agent(inspect=False), role="agent")
    second = rollout(store, config, run="r3", llm=llm_for(scripted_server), limit=1)
    assert second.passed == 1 and second.errored == 0 and second.ran == 1


def test_resume_refuses_a_different_s0_or_split(scripted_server, repo):
    scripted_server.on(tools_agent(inspect=False), role="agent")
    store = GitStore.discover(repo)
    config = load_config(repo / "t2s.toml")
    rollout(store, config, run="r4", llm=llm_for(scripted_server), limit=1)
    (repo / "notes.txt").write_text("x")
    store.commit_paths(["notes.txt"], "another commit")
    from t2s.errors import UsageError

    with pytest.raises(UsageError, match="was started at S0"):
        rollout(store, config, run="r4", llm=llm_for(scripted_server), rev="HEAD", limit=1)
    with pytest.raises(UsageError, match="held-out"):
        rollout(store, config, run="r5", llm=llm_for(scripted_server), split="heldout")
    # without --rev a resumed run keeps its S0 even though HEAD moved
    again = rollout(store, config, run="r4", llm=llm_for(scripted_server), limit=2)
    assert again.s0 == RunRecord(store, "r4").manifest().s0 != store.resolve("HEAD")


def test_cli_rollout_json_and_table(scripted_server, repo, monkeypatch):
    scripted_server.on(tools_agent(inspect=False), role="agent")
    monkeypatch.setenv("T2S_AGENT_BASE_URL", scripted_server.base_url)
    monkeypatch.setenv("T2S_AGENT_MODEL", "scripted-model")
    monkeypatch.setenv("T2S_AGENT_PROTOCOL", "tools")
    runner = CliRunner()
    result = runner.invoke(main, ["rollout", "-C", str(repo), "--run", "c1", "--limit", "2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"] == 2 and data["total"] == 2 and data["run"] == "c1"

    result = runner.invoke(main, ["rollout", "-C", str(repo), "--run", "c1"])
    assert result.exit_code == 0, result.output
    for word in ("passed", "failed", "errored", "tokens", "time"):
        assert word in result.stdout
    assert "2 task(s) were already in the record" in result.stdout


def test_cli_refuses_overlapping_splits(repo):
    toml = repo / "t2s.toml"
    toml.write_text(toml.read_text().replace('heldout = { ids = ["49801"] }', 'heldout = { ids = ["49801", "45300"] }'))
    result = CliRunner().invoke(main, ["rollout", "-C", str(repo), "--run", "x"])
    assert result.exit_code == 2
    assert "overlap" in result.output and "45300" in result.output


def test_cli_unknown_split_is_a_clear_error(repo):
    result = CliRunner().invoke(main, ["rollout", "-C", str(repo), "--run", "x", "--split", "nope"])
    assert result.exit_code == 2
    assert "no split 'nope'" in result.output


def test_eval_runner_drives_the_agent(scripted_server, repo, monkeypatch):
    """The default runner of an evaluation (t2s.evaluation.runner.evaluate_tasks) drives the agent."""
    from t2s.evaluation.context import make_context
    from t2s.evaluation.evaluate import evaluate

    scripted_server.on(tools_agent(inspect=False, wrong=False), role="agent")
    monkeypatch.setenv("T2S_AGENT_BASE_URL", scripted_server.base_url)
    monkeypatch.setenv("T2S_AGENT_PROTOCOL", "tools")
    store = GitStore.discover(repo)
    ctx = make_context(store, load_config(repo / "t2s.toml"), split="evolve")
    outcome = evaluate(ctx, "HEAD")
    assert outcome.ran and outcome.record.passed == 3 and outcome.record.total == 3
    assert outcome.record.model_calls == 6
    assert {t.task: t.stop_reason for t in outcome.record.tasks} == dict.fromkeys(EVOLVE, "finished")
