"""The CI workflow template written by `t2s init`: its structure, parsed with PyYAML."""

from __future__ import annotations

from pathlib import Path

import yaml

from t2s.skill.repo import TEMPLATES

TEMPLATE = TEMPLATES / "workflow-t2s.yml"


def _load() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


def _steps_text(job: dict) -> str:
    return "\n".join(
        str(step.get("run", "")) + str(step.get("with", "")) + str(step.get("env", "")) for step in job["steps"]
    )


def test_triggers_and_jobs():
    data = _load()
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    assert set(on) == {"push", "pull_request"}
    assert set(data["jobs"]) == {"lint", "gate", "release"}
    gate = data["jobs"]["gate"]
    assert gate["needs"] == "lint"
    assert "pull_request" in gate["if"] and "refs/heads/t2s/" in gate["if"] and "/candidate" in gate["if"]
    assert gate["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert data["jobs"]["lint"]["steps"][-1]["run"].startswith("t2s lint")


def test_the_gate_job_fetches_notes_gates_summarises_comments_and_pushes_notes():
    gate = _load()["jobs"]["gate"]
    text = _steps_text(gate)
    assert "fetch-depth" in text and "0" in text
    fetch = text.index("refs/notes/t2s/*:refs/notes/t2s/*")
    run_gate = text.index("t2s gate ")
    assert fetch < run_gate
    assert "$GITHUB_STEP_SUMMARY" in text and "--markdown gate.md" in text
    assert "gh pr comment" in text and "--body-file gate.md" in text
    assert "git push origin 'refs/notes/t2s/*:refs/notes/t2s/*'" in text
    assert "release=" in text and '"release"' in text and '"enabled"' in text
    assert gate["outputs"]["passed"] == "${{ steps.gate.outputs.passed }}"


def test_the_release_job_runs_only_after_a_passing_gate_with_release_enabled():
    data = _load()
    job = data["jobs"]["release"]
    assert job["needs"] == "gate"
    cond = job["if"]
    assert "needs.gate.outputs.passed == 'true'" in cond and "needs.gate.outputs.release == 'true'" in cond
    assert "github.event_name == 'push'" in cond
    text = _steps_text(job)
    order = [text.index(s) for s in ("t2s release ", "t2s pack ", "git push --atomic origin main", "gh release create")]
    assert order == sorted(order)
    assert "refs/tags/" in text and "refs/notes/t2s/*:refs/notes/t2s/*" in text
    assert job["permissions"] == {"contents": "write"}


def test_model_endpoint_comes_from_repository_secrets_and_variables():
    raw = TEMPLATE.read_text()
    data = _load()
    assert data["env"]["T2S_API_KEY"] == "${{ secrets.T2S_API_KEY }}"
    assert data["env"]["T2S_API_KEY_ENV"] == "T2S_API_KEY"
    assert "vars.T2S_BASE_URL" in raw
    assert "sk-" not in raw  # no key in the file
    # an unset variable must not override t2s.toml with an empty value
    settings = next(s for s in data["jobs"]["gate"]["steps"] if s.get("id") == "settings")
    assert 'if [ -n "$BASE_URL" ]' in settings["run"]


def test_init_writes_the_template(tmp_path):
    from t2s.skill.repo import init_skill_repo

    result = init_skill_repo(
        tmp_path / "r", name="demo", description="A demo skill. Use it for demos.", install_git_hooks=False
    )
    assert (Path(result.repo) / ".github/workflows/t2s.yml").read_text() == TEMPLATE.read_text()
