"""The response cache: hits make no HTTP request, replay-only fails on a miss."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from t2s.llm.cache import ResponseCache, request_key
from t2s.llm.client import LLM
from t2s.llm.errors import CacheMiss, LLMError
from t2s.testing import Reply, tool_call
from t2s.testing.pytest_plugin import scripted_role

USER = [{"role": "user", "content": "what is 2+2?"}]


def make_llm(srv, cache_path, mode="read-write", env=None, **settings):
    return LLM(
        roles={"agent": scripted_role(srv, **settings), "analyst": scripted_role(srv, **settings)},
        env=env or {},
        cache_path=cache_path,
        cache_mode=mode,
    )


def test_hit_makes_no_http_request_and_is_marked_cached(scripted_server, tmp_path):
    scripted_server.script(["4", "should never be asked"], role="agent")
    cache = tmp_path / "cache.sqlite3"
    first = make_llm(scripted_server, cache).chat_sync("agent", USER)
    llm = make_llm(scripted_server, cache)  # a new process, the same file
    second = llm.chat_sync("agent", USER)
    assert len(scripted_server.requests) == 1
    assert (first.content, first.cached) == ("4", False)
    assert (second.content, second.cached) == ("4", True)
    assert second.usage == first.usage
    row = llm.ledger.summary()[0]
    assert (row["calls"], row["cached"], row["prompt_tokens"]) == (0, 1, 0)


def test_tool_calls_survive_the_cache(scripted_server, tmp_path):
    scripted_server.on(responder=Reply(tool_calls=[tool_call("f", {"a": [1, 2]}, id="t1")]))
    llm = make_llm(scripted_server, tmp_path / "c.db")
    first = llm.chat_sync("agent", USER)
    second = llm.chat_sync("agent", USER)
    assert second.cached and second.tool_calls == first.tool_calls
    assert second.finish_reason == "tool_calls"
    assert len(scripted_server.requests) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.5},
        {"seed": 1},
        {"max_tokens": 10},
        {"extra_body": {"top_k": 3}},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"messages": [{"role": "user", "content": "what is 2+3?"}]},
    ],
)
def test_every_request_parameter_is_part_of_the_key(scripted_server, tmp_path, change):
    llm = make_llm(scripted_server, tmp_path / "c.db")
    llm.chat_sync("agent", USER)
    change = dict(change)
    messages = change.pop("messages", USER)
    second = llm.chat_sync("agent", messages, **change)
    assert second.cached is False
    assert len(scripted_server.requests) == 2


def test_model_is_part_of_the_key_but_endpoint_and_api_key_are_not(scripted_server, tmp_path):
    cache = tmp_path / "c.db"
    make_llm(scripted_server, cache, env={"T2S_TEST_API_KEY": "key-one"}).chat_sync("agent", USER)
    other_key = make_llm(scripted_server, cache, env={"T2S_TEST_API_KEY": "key-two"})
    assert other_key.chat_sync("agent", USER).cached
    other_model = make_llm(scripted_server, cache, model="another-model")
    assert not other_model.chat_sync("agent", USER).cached
    assert len(scripted_server.requests) == 2


def test_role_and_phase_do_not_change_the_answer_key(scripted_server, tmp_path):
    llm = make_llm(scripted_server, tmp_path / "c.db")
    llm.chat_sync("agent", USER, phase="rollout")
    assert llm.chat_sync("analyst", USER, phase="analyze").cached  # same model, same request


def test_replay_only_serves_hits_and_fails_on_a_miss(scripted_server, tmp_path):
    cache = tmp_path / "c.db"
    make_llm(scripted_server, cache).chat_sync("agent", USER)
    replay = make_llm(scripted_server, cache, mode="replay")
    assert replay.chat_sync("agent", USER).cached
    with pytest.raises(CacheMiss, match="replay-only cache has no answer") as info:
        replay.chat_sync("agent", [{"role": "user", "content": "never recorded"}])
    assert not isinstance(info.value, LLMError)  # a run must stop, not record and go on
    assert len(scripted_server.requests) == 1


def test_replay_does_not_write(scripted_server, tmp_path):
    cache = tmp_path / "c.db"
    make_llm(scripted_server, cache).chat_sync("agent", USER)
    replay = make_llm(scripted_server, cache, mode="replay")
    replay.chat_sync("agent", [{"role": "user", "content": "x"}], cache=False)  # explicit bypass
    assert len(ResponseCache(cache, "read-write")) == 1


def test_off_mode_touches_no_file(scripted_server, tmp_path):
    cache = tmp_path / "c.db"
    llm = make_llm(scripted_server, cache, mode="off")
    llm.chat_sync("agent", USER)
    llm.chat_sync("agent", USER)
    assert not cache.exists()
    assert len(scripted_server.requests) == 2


def test_failures_are_not_cached(scripted_server, tmp_path):
    scripted_server.fault("500", times=2)
    llm = make_llm(scripted_server, tmp_path / "c.db", max_retries=1)
    with pytest.raises(LLMError):
        llm.chat_sync("agent", USER)
    assert llm.chat_sync("agent", USER).cached is False


def test_concurrent_writers_share_the_file(scripted_server, tmp_path):
    cache = tmp_path / "c.db"
    scripted_server.on(responder=lambda req: f"answer to {req.last_user_text}")
    llm = make_llm(scripted_server, cache)

    async def many():
        return await asyncio.gather(*(llm.chat("agent", [{"role": "user", "content": f"q{i}"}]) for i in range(40)))

    llm.run(many())
    replay = make_llm(scripted_server, cache, mode="replay")

    async def replayed():
        return await asyncio.gather(*(replay.chat("agent", [{"role": "user", "content": f"q{i}"}]) for i in range(40)))

    again = replay.run(replayed())
    assert [r.content for r in again] == [f"answer to q{i}" for i in range(40)]
    assert all(r.cached for r in again)
    mode = sqlite3.connect(cache).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_request_key_is_canonical():
    a = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    b = {"temperature": 0, "messages": [{"content": "x", "role": "user"}], "model": "m"}
    assert request_key(a) == request_key(b)
    assert request_key(a) != request_key({**a, "temperature": 0.1})
