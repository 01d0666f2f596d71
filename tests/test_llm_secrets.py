"""API keys: sent to the server, never written to any file a run writes, never in errors."""

from __future__ import annotations

import json
import logging

import pytest

from t2s.llm.client import LLM
from t2s.llm.errors import LLMError
from t2s.llm.roles import PLACEHOLDER_API_KEY
from t2s.testing import Reply
from t2s.testing.pytest_plugin import scripted_role

SECRET = "sk-test-SECRET-7f3a9c1e5d"


def test_key_reaches_the_server_but_no_file_of_the_run(scripted_server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("T2S_TEST_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    scripted_server.fault("429", times=1, retry_after=0.001)
    scripted_server.script(["plain", '{"x": 1}'], role="agent")
    run_dir = tmp_path / "run"
    llm = LLM(
        roles={"agent": scripted_role(scripted_server)}, cache_path=run_dir / "cache.sqlite3", cache_mode="read-write"
    )
    llm.chat_sync("agent", [{"role": "user", "content": "hi"}])
    llm.chat_sync("agent", [{"role": "user", "content": "hi"}])  # cache hit
    llm.chat_sync("agent", [{"role": "user", "content": "json please"}])
    (run_dir / "ledger.json").write_text(llm.ledger.to_json())
    (run_dir / "roles.json").write_text(json.dumps({r: c.model_dump() for r, c in llm.roles.items()}))
    llm.close()

    assert scripted_server.requests[0].authorization == f"Bearer {SECRET}"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.name == "cache.sqlite3" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text
    assert "T2S_TEST_API_KEY" in (run_dir / "roles.json").read_text()  # the name, not the value


def test_placeholder_key_when_the_variable_is_unset(scripted_server):
    llm = LLM(roles={"agent": scripted_role(scripted_server)}, env={}, cache_mode="off")
    llm.chat_sync("agent", [{"role": "user", "content": "hi"}])
    assert scripted_server.requests[0].authorization == f"Bearer {PLACEHOLDER_API_KEY}"


def test_key_echoed_by_a_server_is_redacted_from_errors(scripted_server):
    def echo_auth(req):
        return Reply(status=401, content=f"Incorrect API key provided: {req.authorization}")

    scripted_server.on(responder=echo_auth)
    llm = LLM(roles={"agent": scripted_role(scripted_server)}, env={"T2S_TEST_API_KEY": SECRET}, cache_mode="off")
    with pytest.raises(LLMError) as info:
        llm.chat_sync("agent", [{"role": "user", "content": "hi"}])
    assert SECRET not in str(info.value) and SECRET not in (info.value.hint or "")
    assert "Bearer ***" in str(info.value)
    assert "T2S_TEST_API_KEY" in info.value.hint


def test_key_variable_names_are_exposed_for_the_sandbox(scripted_server):
    llm = LLM(
        roles={"agent": scripted_role(scripted_server), "analyst": {"api_key_env": "OTHER_KEY"}},
        env={},
        cache_mode="off",
    )
    assert {"T2S_TEST_API_KEY", "OTHER_KEY"} <= llm.api_key_env_names
