"""`t2s evolve`: rollout, analyze and merge in one command, resumable."""

from __future__ import annotations

import json

from click.testing import CliRunner

from t2s.cli import main
from t2s.demo import _configure
from t2s.demo.simulation import agent_responder, analyst_responder
from t2s.demo.tasks import write_suite
from t2s.gitstore.store import GitStore
from t2s.skill.repo import init_skill_repo
from t2s.testing.simulated import merger_responder


def test_evolve_runs_all_stages_then_resumes_without_model_calls(tmp_path, scripted_server, monkeypatch):
    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    init_skill_repo(repo, seed="xlsx", install_git_hooks=False)
    _configure(repo)
    scripted_server.on(agent_responder, role="agent")
    scripted_server.on(analyst_responder, role="analyst")
    scripted_server.on(merger_responder, role="merger")
    monkeypatch.setenv("T2S_BASE_URL", scripted_server.base_url)
    monkeypatch.setenv("T2S_API_KEY_ENV", "T2S_TEST_API_KEY")
    runner = CliRunner()
    args = ["evolve", "-C", str(repo), "--run", "e1", "--limit", "4"]

    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    store = GitStore.discover(repo)
    candidate = store.rev_parse("refs/heads/t2s/e1/candidate")
    assert candidate is not None
    manifest = json.loads(store.read_blob("refs/t2s/runs/e1", "manifest.json"))
    assert {k: v["status"] for k, v in manifest["stages"].items()} == {
        "rollout": "done",
        "analyze": "done",
        "merge": "done",
    }

    calls = len(scripted_server.requests)
    again = runner.invoke(main, args)
    assert again.exit_code == 0, again.output
    assert len(scripted_server.requests) == calls  # every stage found its work done
    assert store.rev_parse("refs/heads/t2s/e1/candidate") == candidate
