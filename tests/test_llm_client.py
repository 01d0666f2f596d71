"""t2s.llm.client.LLM.chat against the real scripted server: roles, retries, concurrency."""

from __future__ import annotations

import asyncio
import json

import pytest

from t2s.config import Config, RoleModel, parse_config
from t2s.errors import ConfigError, T2SError
from t2s.llm.client import LLM
from t2s.llm.errors import LLMError
from t2s.llm.results import ChatResult, ToolCall
from t2s.llm.roles import resolve_roles
from t2s.testing import Reply, ScriptedServer, tool_call
from t2s.testing.pytest_plugin import scripted_role

USER = [{"role": "user", "content": "hello"}]


def make_llm(srv: ScriptedServer, **role_settings) -> LLM:
    roles = {r: scripted_role(srv, model=f"{r}-model", **role_settings) for r in ("agent", "analyst", "merger")}
    return LLM(roles=roles, env={}, cache_mode="off", phase="test")


# --------------------------------------------------------------------------- basics


def test_chat_returns_content_usage_and_sends_role_and_phase_headers(scripted_server):
    scripted_server.on(role="analyst", responder=Reply(content="analysis", usage=(30, 5)))
    llm = make_llm(scripted_server)
    res = llm.chat_sync("analyst", USER, phase="analyze")
    assert isinstance(res, ChatResult)
    assert res.content == "analysis"
    assert (res.usage.prompt_tokens, res.usage.completion_tokens) == (30, 5)
    assert res.finish_reason == "stop"
    assert res.model == "analyst-model"
    assert res.cached is False and res.attempts == 1
    req = scripted_server.requests[0]
    assert (req.role, req.phase, req.model) == ("analyst", "analyze", "analyst-model")
    assert req.body["temperature"] == 0.0 and req.body["max_tokens"] == 4096


def test_chat_default_phase_and_request_parameters(scripted_server):
    llm = LLM(
        roles={
            "agent": scripted_role(
                scripted_server,
                temperature=0.7,
                seed=3,
                max_tokens=99,
                extra_body={"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}},
            )
        },
        env={},
        cache_mode="off",
        phase="rollout",
    )
    llm.chat_sync("agent", USER, stop=["END"], extra_body={"top_p": 0.9})
    body = scripted_server.requests[0].body
    assert scripted_server.requests[0].phase == "rollout"
    assert body["temperature"] == 0.7 and body["seed"] == 3 and body["max_tokens"] == 99
    assert body["top_k"] == 20 and body["top_p"] == 0.9
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert body["stop"] == ["END"]


def test_tool_calls_round_trip(scripted_server):
    scripted_server.script(
        [Reply(tool_calls=[tool_call("run_python", {"code": "1+1"}, id="call_9")]), "done: 2"],
        role="agent",
    )
    llm = make_llm(scripted_server)
    tools = [{"type": "function", "function": {"name": "run_python", "parameters": {"type": "object"}}}]

    async def conversation():
        messages = list(USER)
        first = await llm.chat("agent", messages, tools=tools)
        assert first.tool_calls == [ToolCall(id="call_9", name="run_python", arguments='{"code": "1+1"}')]
        assert first.finish_reason == "tool_calls"
        assert first.tool_calls[0].parsed_arguments() == {"code": "1+1"}
        messages.append(first.message)
        messages.append({"role": "tool", "tool_call_id": "call_9", "content": "2"})
        return await llm.chat("agent", messages, tools=tools)

    second = llm.run(conversation())
    assert second.content == "done: 2"
    sent = scripted_server.requests[1]
    assert sent.messages[1]["tool_calls"][0]["function"]["name"] == "run_python"
    assert sent.messages[2] == {"role": "tool", "tool_call_id": "call_9", "content": "2"}
    assert sent.tools == tools


def test_unknown_role_is_a_config_error(scripted_server):
    llm = make_llm(scripted_server)
    with pytest.raises(ConfigError, match="unknown model role 'critic'"):
        llm.chat_sync("critic", USER)


def test_chat_sync_works_from_inside_a_running_loop(scripted_server):
    llm = make_llm(scripted_server)

    async def inside():
        return llm.chat_sync("agent", USER)

    assert asyncio.run(inside()).content == "ok"


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("kind", ["429", "500", "hang", "drop", "malformed", "truncated"])
def test_retries_recover_from_transient_faults(scripted_server, kind):
    scripted_server.fault(kind, times=2, retry_after=0.01 if kind == "429" else None)
    llm = make_llm(scripted_server, timeout=0.2 if kind == "hang" else 10.0)
    res = llm.chat_sync("agent", USER)
    assert res.content == "ok"
    assert res.attempts == 3
    assert len(scripted_server.requests) == 3
    row = llm.ledger.summary()[0]
    assert (row["calls"], row["attempts"], row["errors"]) == (1, 3, 0)


def test_gives_up_with_a_clear_error_naming_role_endpoint_and_cause(scripted_server):
    scripted_server.fault("500", times=None, status=503)
    llm = make_llm(scripted_server, max_retries=2)
    with pytest.raises(LLMError) as info:
        llm.chat_sync("merger", USER)
    err = info.value
    assert isinstance(err, T2SError)
    assert err.role == "merger" and err.attempts == 3 and err.status == 503
    assert "merger" in err.message
    assert scripted_server.base_url in err.message
    assert "merger-model" in err.message
    assert "after 3 attempts" in err.message and "HTTP 503" in err.message
    assert len(scripted_server.requests) == 3
    assert llm.ledger.summary()[0]["errors"] == 1


def test_timeout_error_after_last_attempt(scripted_server):
    scripted_server.fault("hang", times=None)
    llm = make_llm(scripted_server, timeout=0.2, max_retries=1)
    with pytest.raises(LLMError, match=r"after 2 attempts: no answer within 0.2s \(timeout\)"):
        llm.chat_sync("agent", USER)


def test_connection_refused_is_reported(scripted_server):
    srv = ScriptedServer().start()
    url = srv.base_url
    srv.stop()  # nothing listens there any more
    llm = LLM(
        roles={"agent": {"base_url": url, "max_retries": 1, "backoff_base": 0.001, "api_key_env": ""}},
        env={},
        cache_mode="off",
    )
    with pytest.raises(LLMError, match="connection failed"):
        llm.chat_sync("agent", USER)


def test_client_errors_are_not_retried(scripted_server):
    scripted_server.on(responder=Reply(status=404, content="model 'nope' does not exist"))
    llm = make_llm(scripted_server)
    with pytest.raises(LLMError) as info:
        llm.chat_sync("agent", USER)
    assert info.value.attempts == 1 and info.value.status == 404
    assert "model 'nope' does not exist" in info.value.message
    assert info.value.hint and "base_url" in info.value.hint
    assert len(scripted_server.requests) == 1


def test_retry_after_is_honoured_over_long_backoff(scripted_server):
    # With backoff_base=60 s, only honouring the 10 ms Retry-After finishes in time.
    scripted_server.fault("429", times=1, retry_after=0.01)
    llm = make_llm(scripted_server, backoff_base=60.0, backoff_max=60.0)

    async def go():
        try:
            return await asyncio.wait_for(llm.chat("agent", USER), timeout=10)
        finally:
            await llm.aclose()

    assert asyncio.run(go()).attempts == 2


def test_backoff_grows_and_is_capped():
    cfg = RoleModel(backoff_base=1.0, backoff_max=5.0)
    delays = [LLM._backoff(cfg, attempt, None) for attempt in (1, 2, 3, 4, 5)]
    assert 0.5 <= delays[0] <= 1.0
    assert 1.0 <= delays[1] <= 2.0
    assert 2.0 <= delays[2] <= 4.0
    assert all(2.5 <= d <= 5.0 for d in delays[3:])
    assert LLM._backoff(cfg, 1, 7.0) >= 7.0


# --------------------------------------------------------------------------- concurrency


def test_concurrency_bound_holds_per_endpoint():
    with ScriptedServer(latency=0.02) as srv:
        llm = make_llm(srv, concurrency=4)

        async def many():
            return await asyncio.gather(*(llm.chat("agent", [{"role": "user", "content": f"t{i}"}]) for i in range(30)))

        results = llm.run(many())
        assert len(results) == 30 and all(r.content == "ok" for r in results)
        assert srv.peak_in_flight == 4


def test_roles_sharing_an_endpoint_share_the_smallest_bound():
    with ScriptedServer(latency=0.02) as srv:
        llm = LLM(
            roles={"agent": scripted_role(srv, concurrency=6), "analyst": scripted_role(srv, concurrency=3)},
            env={},
            cache_mode="off",
        )

        async def many():
            return await asyncio.gather(
                *(llm.chat("agent" if i % 2 else "analyst", [{"role": "user", "content": f"t{i}"}]) for i in range(24))
            )

        llm.run(many())
        assert srv.peak_in_flight == 3


def test_retry_backoff_does_not_hold_a_concurrency_slot():
    with ScriptedServer() as srv:
        srv.fault("500", times=1, role="agent")
        llm = LLM(
            roles={
                "agent": scripted_role(srv, concurrency=1, backoff_base=0.3, backoff_max=0.3),
                "analyst": scripted_role(srv, concurrency=1),
            },
            env={},
            cache_mode="off",
        )
        order = []

        async def agent():
            res = await llm.chat("agent", USER)
            order.append("agent")
            return res

        async def analyst():
            await asyncio.sleep(0.05)  # start while the agent is backing off
            res = await llm.chat("analyst", USER)
            order.append("analyst")
            return res

        async def both():
            return await asyncio.gather(agent(), analyst())

        llm.run(both())
        assert order == ["analyst", "agent"]


# --------------------------------------------------------------------------- settings


def test_env_and_flag_precedence():
    config = parse_config(
        '[models.agent]\nmodel = "toml-agent"\nbase_url = "http://toml/v1"\n'
        '[models.analyst]\nmodel = "toml-analyst"\ntemperature = 0.3\n'
    )
    env = {
        "T2S_MODEL": "global-model",
        "T2S_BASE_URL": "http://global/v1",
        "T2S_AGENT_BASE_URL": "http://agent-env/v1",
        "T2S_MERGER_MODEL": "merger-env",
        "T2S_ANALYST_EXTRA_BODY": '{"top_k": 5}',
        "T2S_ANALYST_SEED": "none",
        "T2S_AGENT_SEED": "7",
    }
    roles = resolve_roles(
        config, env=env, overrides={"*": {"base_url": "http://flag/v1"}, "merger": {"model": "merger-flag"}}
    )
    assert roles["agent"].model == "global-model"  # global env beats toml
    assert roles["analyst"].model == "global-model"
    assert roles["merger"].model == "merger-flag"  # role flag beats role env
    assert {r.base_url for r in roles.values()} == {"http://flag/v1"}  # flag beats role env
    assert roles["analyst"].temperature == 0.3  # toml kept where nothing overrides
    assert roles["analyst"].extra_body == {"top_k": 5}
    assert roles["analyst"].seed is None and roles["agent"].seed == 7

    roles = resolve_roles(config, env=env)
    assert roles["agent"].base_url == "http://agent-env/v1"  # role env beats global env
    assert roles["merger"].base_url == "http://global/v1"
    assert resolve_roles(config, env={})["agent"].model == "toml-agent"
    assert resolve_roles(Config(), env={})["merger"].model == RoleModel().model


def test_bad_env_value_names_the_variable():
    with pytest.raises(ConfigError, match=r"temperature \(\$T2S_AGENT_TEMPERATURE\)"):
        resolve_roles(Config(), env={"T2S_AGENT_TEMPERATURE": "hot"})
    with pytest.raises(ConfigError, match="extra_body must be a JSON object"):
        resolve_roles(Config(), env={"T2S_EXTRA_BODY": "[1]"})


def test_llm_reads_process_environment(scripted_server, monkeypatch):
    monkeypatch.setenv("T2S_BASE_URL", scripted_server.base_url)
    monkeypatch.setenv("T2S_ANALYST_MODEL", "from-env")
    monkeypatch.setenv("T2S_MAX_RETRIES", "0")
    llm = LLM(Config(), cache_mode="off")
    llm.chat_sync("analyst", USER)
    assert scripted_server.requests[0].model == "from-env"
    assert llm.role("analyst").max_retries == 0


def test_config_file_roles_and_cache_off_by_default_without_path(scripted_server, tmp_path):
    config = parse_config(
        f'[models.agent]\nmodel = "m"\nbase_url = "{scripted_server.base_url}"\n[cache]\nmode = "read-write"\n'
    )
    llm = LLM(config, env={})
    assert llm.cache is None
    llm.chat_sync("agent", USER)
    llm.chat_sync("agent", USER)
    assert len(scripted_server.requests) == 2
    with pytest.raises(ConfigError, match="replay"):
        LLM(config, env={}, cache_mode="replay")


def test_garbage_in_200_body_without_choices_is_retried_then_reported(scripted_server):
    scripted_server.on(responder={"unexpected": True})
    llm = make_llm(scripted_server, max_retries=1)
    with pytest.raises(LLMError, match="malformed response body"):
        llm.chat_sync("agent", USER)
    assert len(scripted_server.requests) == 2


def test_raw_dict_responder_is_parsed(scripted_server):
    scripted_server.on(
        responder={
            "id": "x",
            "object": "chat.completion",
            "model": "served-name",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "a", "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
                        ],
                    },
                }
            ],
        }
    )
    res = make_llm(scripted_server).chat_sync("agent", USER)
    assert res.model == "served-name"
    assert res.usage.total_tokens == 0  # no usage reported: zero, not a crash
    assert json.loads(res.tool_calls[0].arguments) == {"x": 1}
