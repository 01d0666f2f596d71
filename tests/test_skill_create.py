"""``t2s init --create``: a parametric first draft of a skill, linted before it is committed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from t2s.analysis.analysts import create_skill_files
from t2s.cli import main
from t2s.errors import T2SError
from t2s.gitstore.store import GitStore
from t2s.llm.client import LLM
from t2s.skill.format import lint_rev
from t2s.testing.pytest_plugin import scripted_role
from t2s.testing.simulated import skill_creator_responder

DESCRIPTION = "Clean CSV files with pandas. Use when a task gives a messy CSV and asks for a tidy one."


def llm_for(srv):
    return LLM(roles={"analyst": scripted_role(srv, model="analyst-model")}, env={})


def test_create_skill_files_drafts_a_linted_skill(scripted_server):
    scripted_server.on(skill_creator_responder, role="analyst")
    files = create_skill_files(llm_for(scripted_server), "csv-cleaning", DESCRIPTION)
    assert set(files) == {"SKILL.md", "references/pitfalls.md"}
    text = files["SKILL.md"].decode()
    assert text.startswith("---\nname: csv-cleaning\n") and "(references/pitfalls.md)" in text
    request = scripted_server.requests[0]
    assert "- name: csv-cleaning" in request.text and DESCRIPTION in request.text


def test_a_draft_failing_lint_is_retried_once_with_the_findings(scripted_server):
    bad = {"skill_md": "---\nname: other-name\ndescription: x\n---\n\n# X\n\nSee [more](references/more.md).\n"}
    good = {"skill_md": "---\nname: csv-cleaning\ndescription: Clean CSV files.\n---\n\n# CSV cleaning\n\nSteps.\n"}
    scripted_server.script([json.dumps(bad), json.dumps(good)], role="analyst")
    files = create_skill_files(llm_for(scripted_server), "csv-cleaning", DESCRIPTION)
    assert files == {"SKILL.md": good["skill_md"].encode()}
    retry = scripted_server.requests[1].last_user_text
    assert "does not pass the skill linter" in retry
    assert "must equal the skill's folder name 'csv-cleaning'" in retry and "references/more.md" in retry


def test_a_draft_failing_lint_twice_fails_clearly(scripted_server):
    bad = {"skill_md": "no frontmatter at all\n"}
    scripted_server.script([json.dumps(bad), json.dumps(bad)], role="analyst")
    with pytest.raises(T2SError, match="does not pass lint after a retry; nothing was written"):
        create_skill_files(llm_for(scripted_server), "csv-cleaning", DESCRIPTION)
    assert len(scripted_server.requests) == 2


def test_init_create_commits_the_draft(tmp_path, scripted_server):
    scripted_server.on(skill_creator_responder, role="analyst")
    repo = tmp_path / "my-skills"
    result = CliRunner().invoke(
        main,
        [
            "init",
            str(repo),
            "--create",
            "--name",
            "csv-cleaning",
            "--description",
            DESCRIPTION,
            "--no-hooks",
            "--base-url",
            scripted_server.base_url,
            "--api-key-env",
            "T2S_TEST_API_KEY",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    store = GitStore.discover(repo)
    assert store.read_blob("HEAD", "skills/csv-cleaning/references/pitfalls.md")
    assert lint_rev(store, "HEAD", "skills/csv-cleaning") == []
    assert scripted_server.requests_for("analyst")

    usage = CliRunner().invoke(main, ["init", str(tmp_path / "other"), "--create", "--name", "x"])
    assert usage.exit_code == 2 and "--create needs --name and --description" in usage.output
