"""A machine where no sandbox can be had: doctor says what is missing, the commands
that run model code refuse, and ``--unsafe-no-sandbox`` runs it anyway, loudly.

"No sandbox" is real here: every tool stays on PATH except bubblewrap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from t2s.sandbox import bwrap as _bwrap
from t2s.sandbox.run import SandboxUnavailable, run_code


def _path_without_bwrap(root: Path) -> str:
    """PATH with every folder that holds ``bwrap`` replaced by a copy (of links)
    without it."""
    dirs = []
    for n, d in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        folder = Path(d)
        if not (folder / "bwrap").exists():
            dirs.append(d)
            continue
        shadow = root / f"path{n}"
        shadow.mkdir()
        for entry in folder.iterdir():
            if entry.name != "bwrap":
                (shadow / entry.name).symlink_to(entry)
        dirs.append(str(shadow))
    return os.pathsep.join(dirs)


@pytest.fixture
def no_bwrap(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _path_without_bwrap(tmp_path))
    monkeypatch.delenv("T2S_UNSAFE_NO_SANDBOX", raising=False)
    _bwrap.availability.cache_clear()
    _bwrap.bwrap_version.cache_clear()
    yield os.environ["PATH"]
    _bwrap.availability.cache_clear()
    _bwrap.bwrap_version.cache_clear()


def test_run_code_refuses_unless_running_unsandboxed_is_allowed(no_bwrap, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(SandboxUnavailable, match="bubblewrap is not installed") as info:
        run_code("print(1)", work)
    assert "--unsafe-no-sandbox" in info.value.hint
    r = run_code(
        "import os\nprint(os.environ.get('OPENAI_API_KEY'), open('/etc/hostname').read() != '')",
        work,
        unsafe_no_sandbox=True,
    )
    assert r.ok and r.stdout == "None True\n" and not r.sandboxed  # the host's files: no sandbox
    assert r.isolation["sandbox"].startswith("NONE") and any("WARNING: no sandbox" in n for n in r.notes)
    monkeypatch.setenv("T2S_UNSAFE_NO_SANDBOX", "1")
    assert run_code("print(2)", work).stdout == "2\n"


def _t2s(*args, cwd: Path, path: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path, **(extra_env or {})}
    env.pop("T2S_UNSAFE_NO_SANDBOX", None)
    return subprocess.run(
        [sys.executable, "-m", "t2s", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_doctor_says_exactly_what_is_missing(no_bwrap, tmp_path):
    r = _t2s("doctor", cwd=tmp_path, path=no_bwrap)
    assert r.returncode == 1
    assert "MISSING sandbox" in r.stdout and "missing: bubblewrap is not installed" in r.stdout
    assert "refuse to run model code unless --unsafe-no-sandbox" in r.stdout
    data = json.loads(_t2s("doctor", "--json", "--no-smoke", cwd=tmp_path, path=no_bwrap).stdout)
    assert data["ok"] is False and data["sandbox"]["ok"] is False
    assert any("bubblewrap is not installed" in m for m in data["sandbox"]["missing"])


def test_rollout_and_eval_refuse_and_the_flag_runs_loudly(no_bwrap, tmp_path, scripted_server):
    from t2s.demo import _configure
    from t2s.demo.simulation import agent_responder
    from t2s.demo.tasks import write_suite
    from t2s.skill.repo import init_skill_repo

    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    init_skill_repo(repo, seed="xlsx", install_git_hooks=False)
    _configure(repo)
    scripted_server.on(agent_responder, role="agent")
    model = {"T2S_BASE_URL": scripted_server.base_url, "T2S_MODEL": "m"}

    refused = _t2s("rollout", "--run", "u1", "--limit", "1", cwd=repo, path=no_bwrap, extra_env=model)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert "refusing to run model-written code" in refused.stderr
    assert "bubblewrap is not installed" in refused.stderr and "--unsafe-no-sandbox" in refused.stderr
    assert not scripted_server.requests  # not one model call
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "refs/t2s/runs/u1"], cwd=repo).returncode != 0

    evaluated = _t2s("eval", "HEAD", cwd=repo, path=no_bwrap, extra_env=model)
    assert evaluated.returncode != 0 and "refusing to run model-written code" in evaluated.stderr

    ran = _t2s(
        "rollout", "--run", "u1", "--limit", "1", "--unsafe-no-sandbox", cwd=repo, path=no_bwrap, extra_env=model
    )
    assert ran.returncode == 0, ran.stderr
    assert "WARNING: no sandbox" in ran.stderr
    listing = subprocess.run(
        ["git", "ls-tree", "--name-only", "refs/t2s/runs/u1:trajectories"], cwd=repo, capture_output=True, text=True
    ).stdout.split()
    traj = json.loads(
        subprocess.run(
            ["git", "show", f"refs/t2s/runs/u1:trajectories/{listing[0]}"], cwd=repo, capture_output=True, text=True
        ).stdout
    )
    assert traj["meta"]["sandbox"].startswith("NONE")  # the record says so too
