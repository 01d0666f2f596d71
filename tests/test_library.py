"""The library example of docs/library.md runs as written, against the simulated models."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import t2s
from t2s.demo import DEMO_CONFIG, _configure, _environment
from t2s.demo.simulation import agent_responder, analyst_responder
from t2s.demo.tasks import write_suite
from t2s.gitstore.store import GitStore
from t2s.skill.repo import init_skill_repo
from t2s.testing.server import ScriptedServer
from t2s.testing.simulated import merger_responder

DOC = Path(__file__).resolve().parents[1] / "docs" / "library.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert len(blocks) == 1, "docs/library.md has one runnable example"
    return blocks[0]


def test_the_documented_library_example_runs(tmp_path, monkeypatch):
    assert DEMO_CONFIG  # the demo's suite configuration, as a user would write it
    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    init_skill_repo(repo, seed="xlsx")
    _configure(repo)
    GitStore.discover(repo).commit_paths(["t2s.toml"], "Configure the task suite")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with ScriptedServer(models=["sim"]) as server:
        server.on(agent_responder, role="agent")
        server.on(analyst_responder, role="analyst")
        server.on(merger_responder, role="merger")
        env = {
            "T2S_BASE_URL": server.base_url,
            "T2S_MODEL": "sim",
            "T2S_API_KEY_ENV": "T2S_LIB_KEY",
            "T2S_CACHE_MODE": "off",
        }
        with _environment(env), contextlib.redirect_stdout(out):
            exec(compile(_example(), str(DOC), "exec"), {"__name__": "__doc_example__"})
    printed = out.getvalue()
    assert "patches -> refs/heads/t2s/r1/candidate" in printed
    assert "released v0.1.0" in printed
    assert t2s.open_repo(repo).store.rev_parse("v0.1.0")
