"""Shared fixtures: real git repositories in temporary directories, a fixed identity."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["t2s.testing.pytest_plugin"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"
SPREADSHEETBENCH = SHARED / "benchmarks" / "spreadsheetbench-verified"
WIKITABLEQUESTIONS = SHARED / "benchmarks" / "wikitablequestions"

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.test",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.test",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch, tmp_path_factory):
    """Every test sees the same git identity and no user-level git config."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for key, value in _GIT_ENV.items():
        monkeypatch.setenv(key, value)
    subprocess.run(["git", "config", "--global", "init.defaultBranch", "main"], check=True)
    subprocess.run(["git", "config", "--global", "user.name", "Test User"], check=True)
    subprocess.run(["git", "config", "--global", "user.email", "user@example.test"], check=True)


def pytest_configure(config):
    """Where no sandbox can be had, the tests that are not about isolation run the
    model code unsandboxed (as t2s --unsafe-no-sandbox would); the isolation tests
    skip with the reason, which the header repeats."""
    import os

    from t2s.sandbox.run import availability

    if not availability().ok:
        os.environ["T2S_UNSAFE_NO_SANDBOX"] = "1"


def pytest_report_header(config):
    from t2s.sandbox.run import availability

    avail = availability()
    if avail.ok:
        return f"sandbox: bubblewrap {avail.version}"
    return (
        "sandbox: UNAVAILABLE (" + "; ".join(avail.missing) + "): isolation tests skip, the rest "
        "run model code unsandboxed"
    )


def git(cwd: Path, *args: str, input: str | None = None, check: bool = True) -> str:
    """Run git in ``cwd`` for a test and return its stdout."""
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


@pytest.fixture
def git_repo(tmp_path) -> Path:
    """An empty, real git repository with one initial commit on main."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("hello\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def needs_shared(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} not available")
