"""`t2s init` into empty and existing repositories, and the hooks in real git commands."""

from __future__ import annotations

import os
import subprocess
import sys

from click.testing import CliRunner

from t2s.cli import main
from t2s.config import load_config
from t2s.gitstore.store import GitStore
from t2s.record.notes import EvalNote, EvalRecord, GateRecord, write_eval_note
from tests.conftest import git


def run_init(*args: str):
    return CliRunner().invoke(main, ["init", *args])


def test_init_into_an_empty_directory(tmp_path):
    target = tmp_path / "skills-repo"
    result = run_init(str(target), "--seed", "xlsx")
    assert result.exit_code == 0, result.output
    assert git(target, "log", "--format=%s").splitlines() == ["t2s init: add skill xlsx"]
    files = set(git(target, "ls-files").split())
    assert {
        "t2s.toml",
        ".github/workflows/t2s.yml",
        "skills/xlsx/SKILL.md",
        "skills/xlsx/references/formulas.md",
    } <= files
    assert load_config(target / "t2s.toml").skill.name == "xlsx"
    assert os.access(target / ".git" / "hooks" / "pre-commit", os.X_OK)
    assert git(target, "status", "--porcelain") == ""
    lint = CliRunner().invoke(main, ["lint", "-C", str(target), "HEAD"])
    assert lint.exit_code == 0, lint.output


def test_init_into_an_existing_repo_keeps_the_users_staged_work(git_repo):
    (git_repo / "notes.txt").write_text("mine\n")
    git(git_repo, "add", "notes.txt")
    result = run_init(str(git_repo), "--name", "csv-clean", "--description", "Clean CSV files. Use for messy CSVs.")
    assert result.exit_code == 0, result.output
    assert git(git_repo, "rev-list", "--count", "HEAD").strip() == "2"
    assert "notes.txt" not in git(git_repo, "show", "--name-only", "--format=", "HEAD")
    assert git(git_repo, "status", "--porcelain") == "A  notes.txt\n"
    text = (git_repo / "skills" / "csv-clean" / "SKILL.md").read_text()
    assert "name: csv-clean" in text


def test_init_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "r"
    assert run_init(str(target), "--seed", "xlsx").exit_code == 0
    again = run_init(str(target), "--seed", "xlsx")
    assert again.exit_code == 2 and "already exists" in again.output
    forced = run_init(str(target), "--seed", "xlsx", "--force")
    assert forced.exit_code == 0, forced.output


def test_init_rejects_bad_names_and_missing_seeds(tmp_path):
    bad = run_init(str(tmp_path / "a"), "--name", "Bad_Name", "--description", "x")
    assert bad.exit_code == 2 and "a-z" in bad.output
    missing = run_init(str(tmp_path / "b"), "--seed", "no-such-seed")
    assert missing.exit_code == 2 and "not found" in missing.output
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def _hook_env() -> dict[str, str]:
    env = dict(os.environ)
    env["T2S_PYTHON"] = sys.executable
    return env


def test_pre_commit_hook_refuses_a_broken_skill(tmp_path):
    repo = tmp_path / "r"
    assert run_init(str(repo), "--seed", "xlsx").exit_code == 0
    skill = repo / "skills" / "xlsx" / "SKILL.md"
    skill.write_text(skill.read_text().replace("name: xlsx", "name: Not_Valid"))
    git(repo, "add", "-A")
    proc = subprocess.run(
        ["git", "commit", "-m", "break it"], cwd=repo, capture_output=True, text=True, env=_hook_env()
    )
    assert proc.returncode != 0
    assert "skills/xlsx/SKILL.md:2: name:" in proc.stderr
    skill.write_text(skill.read_text().replace("name: Not_Valid", "name: xlsx") + "\nMore advice.\n")
    git(repo, "add", "-A")
    proc = subprocess.run(["git", "commit", "-m", "improve"], cwd=repo, capture_output=True, text=True, env=_hook_env())
    assert proc.returncode == 0, proc.stderr


def test_pre_push_hook_refuses_release_tags_without_a_passing_gate(tmp_path):
    from t2s.releases.release import release

    repo = tmp_path / "r"
    remote = tmp_path / "remote.git"
    assert run_init(str(repo), "--seed", "xlsx").exit_code == 0
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "tag", "-a", "v0.1.0", "-m", "release")

    def push(*refs: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "push", "origin", *refs], cwd=repo, capture_output=True, text=True, env=_hook_env()
        )

    assert push("main").returncode == 0  # branches are not checked
    hand_made = push("v0.1.0")  # annotated, but not on a release merge t2s made
    assert hand_made.returncode != 0 and "not a t2s release tag" in hand_made.stderr
    git(repo, "tag", "-d", "v0.1.0")

    store = GitStore.discover(repo)
    head = store.resolve("HEAD")
    skill = "skills/xlsx/SKILL.md"
    tree = store.build_tree(head, {skill: store.read_blob(head, skill) + b"\nOne more tip.\n"})
    candidate = store.commit(tree, [head], "a better skill")
    record = EvalRecord(suite="s", split="heldout", suite_hash="h", skill_tree="t", score=0.5, passed=1, total=2)
    gate = GateRecord(
        passed=True,
        candidate=candidate,
        baseline=head,
        split="heldout",
        suite_hash="h",
        candidate_score=0.5,
        baseline_score=0.0,
        delta=0.5,
        regressions=0,
        min_delta=0.0,
        max_regressions=0,
    )
    write_eval_note(store, candidate, EvalNote(evals=[record], gate=gate))
    released = release(store, load_config(repo / "t2s.toml"), candidate).commit
    git(repo, "notes", "--ref", "t2s/eval", "remove", released)
    refused = push("v0.1.0")
    assert refused.returncode != 0 and "no evaluation note" in refused.stderr

    failed = gate.model_copy(update={"passed": False, "regressions": 1})
    write_eval_note(store, released, EvalNote(evals=[record], gate=failed))
    still = push("v0.1.0")
    assert still.returncode != 0 and "no passing gate" in still.stderr

    write_eval_note(store, released, EvalNote(evals=[record], gate=gate))
    ok = push("v0.1.0")
    assert ok.returncode == 0, ok.stderr
    assert git(remote, "tag").split() == ["v0.1.0"]
