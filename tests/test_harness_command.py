"""``[models.agent] harness = "command"``: a CLI agent run as a real subprocess in the
task's work folder, its transcript read by the importers, its output scored by the suite."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2s.agent.trajectory import read_trajectories
from t2s.cli import main
from t2s.config import load_config
from t2s.evaluation.context import agent_fingerprint
from t2s.record.runs import RunRecord
from tests.test_analysts_support import make_repo

FAKE = Path(__file__).parent / "fake_agents" / "fake_cli_agent.py"


def configure(store, mode: str, *, timeout: float = 60, cap: int = 1_000_000, command=None) -> None:
    toml = store.root / "t2s.toml"
    text = toml.read_text()
    argv = command or [sys.executable, str(FAKE), mode, "--output", "{output}", "--skills", "{workdir}/.claude/skills"]
    block = (
        '\nharness = "command"\n'
        f"command = {json.dumps(argv)}\n"
        f"command_timeout = {timeout}\n"
        f"max_output_bytes = {cap}\n"
        'transcript = "claude-code"\n'
    )
    text = text.replace(
        'protocol = "auto"               # tools | text | auto (falls back to text actions)\n',
        'protocol = "auto"\n' + block,
        1,
    )
    assert block in text
    toml.write_text(text)


def rollout(store, run: str, *tasks: str):
    args = ["rollout", "-C", str(store.root), "--run", run, "--split", "evolve", "--json"]
    for t in tasks:
        args += ["--task", t]
    return CliRunner().invoke(main, args)


def trajectories(store, run: str):
    return {t.task_id: t for t in read_trajectories(RunRecord(store, run))}


def test_a_cli_agent_solves_in_its_work_folder_with_the_skill_installed(tmp_path):
    store = make_repo(tmp_path)
    configure(store, "solve")
    result = rollout(store, "c1", "txt-1")
    assert result.exit_code == 0, result.output
    traj = trajectories(store, "c1")["txt-1"]
    assert traj.verdict == "passed" and traj.source == "harness:command" and traj.stop_reason == "finished"
    assert traj.model == "fake-model" and traj.usage.prompt_tokens == 650 and traj.turns == 2
    assert [s.tool for s in traj.steps] == ["Bash"] and traj.steps[0].observation == "saved"
    assert "Reading the skill at xlsx." in traj.messages[1].content  # it found .claude/skills/xlsx/SKILL.md
    assert traj.outputs == ["output.xlsx"]
    assert RunRecord(store, "c1").read("artifacts/txt-1/output.xlsx")[:2] == b"PK"


def test_a_wrong_agent_fails_and_is_analysable(tmp_path):
    store = make_repo(tmp_path)
    configure(store, "wrong")
    assert rollout(store, "c2", "txt-1").exit_code == 0
    traj = trajectories(store, "c2")["txt-1"]
    assert traj.verdict == "failed" and traj.scripts and "strip()" in traj.scripts[0]


@pytest.mark.parametrize(
    ("mode", "stop", "problem"),
    [
        ("hang", "timeout", "no transcript"),
        ("silent", "finished", "no transcript"),
        ("flood", "output_limit", "no claude-code conversation"),
        ("crash", "exit 3", "no transcript"),
    ],
)
def test_harness_failures_are_failed_episodes_with_the_reason(tmp_path, mode, stop, problem):
    store = make_repo(tmp_path)
    configure(store, mode, timeout=1 if mode == "hang" else 60, cap=200_000)
    result = rollout(store, "c3", "txt-1")
    assert result.exit_code == 0, result.output
    traj = trajectories(store, "c3")["txt-1"]
    assert traj.verdict == "failed" and traj.stop_reason == stop and traj.outputs == []
    assert problem in traj.meta["transcript_problem"]
    if mode == "flood":
        assert traj.meta["stdout_bytes"] == 200_000


def test_a_command_that_cannot_start_is_errored_not_failed(tmp_path):
    store = make_repo(tmp_path)
    configure(store, "solve", command=[str(tmp_path / "no-such-agent"), "-p"])
    result = rollout(store, "c4", "txt-1")
    traj = trajectories(store, "c4")["txt-1"]
    assert traj.verdict == "errored" and "cannot start" in traj.error and traj.error_cause.kind == "harness"
    assert result.exit_code != 0


def test_the_harness_is_in_the_agent_fingerprint_only_when_external(tmp_path):
    store = make_repo(tmp_path)
    builtin = load_config(store.root / "t2s.toml")
    before = agent_fingerprint(builtin, builtin.models["agent"])
    assert "external_harness" not in before
    configure(store, "solve")
    command = load_config(store.root / "t2s.toml")
    after = agent_fingerprint(command, command.models["agent"])
    assert after["external_harness"]["harness"] == "command" and after["external_harness"]["command"][2] == "solve"
    assert {k: v for k, v in after.items() if k != "external_harness"} == before


def test_a_cli_agent_harness_refuses_a_remote_executor(tmp_path):
    """A Ray worker would run the builtin agent instead of the configured CLI agent: refuse."""
    from types import SimpleNamespace

    from t2s.errors import UsageError
    from t2s.llm.client import LLM
    from t2s.rollouts.harness import HarnessExecutor, episode_executor

    store = make_repo(tmp_path)
    remote = SimpleNamespace(name="ray")  # only its name matters here; Ray itself is tested in test_ray_executor
    builtin = LLM(load_config(store.root / "t2s.toml"))
    assert episode_executor(builtin, remote) is remote
    assert isinstance(episode_executor(builtin, None), HarnessExecutor)
    configure(store, "solve")
    command = LLM(load_config(store.root / "t2s.toml"))
    assert isinstance(episode_executor(command, None), HarnessExecutor)
    with pytest.raises(UsageError, match="runs the CLI agent on this machine"):
        episode_executor(command, remote)
