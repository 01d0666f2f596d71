"""The scripted OpenAI-compatible server, spoken to over real HTTP (urllib and openai)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openai
import pytest

from t2s.testing import Reply, ScriptedServer, tool_call


def post(srv: ScriptedServer, body: dict, headers: dict | None = None, timeout: float = 5):
    req = urllib.request.Request(
        srv.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def chat_body(text: str = "hi", model: str = "m", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def test_plain_answer_has_openai_shape_and_usage(scripted_server):
    scripted_server.on(responder="hello there")
    status, _, raw = post(scripted_server, chat_body("say hello", model="x-model"))
    data = json.loads(raw)
    assert status == 200
    assert data["object"] == "chat.completion"
    assert data["model"] == "x-model"
    choice = data["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello there"}
    assert choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_openai_client_parses_tool_calls_and_explicit_usage(scripted_server):
    scripted_server.on(
        responder=Reply(tool_calls=[tool_call("run_python", {"code": "print(1)"}, id="c1")], usage=(11, 7))
    )

    async def go():
        client = openai.AsyncOpenAI(base_url=scripted_server.base_url, api_key="k", max_retries=0)
        try:
            return await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "go"}],
                tools=[{"type": "function", "function": {"name": "run_python", "parameters": {}}}],
            )
        finally:
            await client.close()

    completion = asyncio.run(go())
    call = completion.choices[0].message.tool_calls[0]
    assert call.id == "c1"
    assert call.function.name == "run_python"
    assert json.loads(call.function.arguments) == {"code": "print(1)"}
    assert completion.choices[0].finish_reason == "tool_calls"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 7)
    assert scripted_server.requests[0].tools[0]["function"]["name"] == "run_python"


def test_models_endpoint_lists_configured_and_routed_models():
    with ScriptedServer(models=["alpha"]) as srv:
        srv.on(model="beta", responder="b")
        with urllib.request.urlopen(srv.base_url + "/models", timeout=5) as resp:
            data = json.loads(resp.read())
    assert [m["id"] for m in data["data"]] == ["alpha", "beta"]


def test_routing_by_role_model_content_first_match_wins(scripted_server):
    srv = scripted_server
    srv.on(role="analyst", responder="analyst answer")
    srv.on(model="special", responder=lambda req: f"special saw {req.last_user_text}")
    srv.on(contains="NEEDLE", responder=Reply(content="found needle"))
    srv.on(role="analyst", responder="never reached: the first analyst rule wins")
    answers = {}
    for label, body, headers in [
        ("analyst", chat_body("NEEDLE", model="special"), {"X-T2S-Role": "analyst"}),
        ("model", chat_body("q1", model="special"), {"X-T2S-Role": "agent"}),
        ("content", chat_body("a NEEDLE here"), {}),
        ("default", chat_body("other"), {}),
    ]:
        _, _, raw = post(srv, body, headers)
        answers[label] = json.loads(raw)["choices"][0]["message"]["content"]
    assert answers == {
        "analyst": "analyst answer",
        "model": "special saw q1",
        "content": "found needle",
        "default": "ok",
    }
    assert [r.role for r in srv.requests] == ["analyst", "agent", None, None]


def test_script_is_sequential_and_fails_loudly_when_exhausted(scripted_server):
    scripted_server.script(["one", Reply(content="two"), lambda req: "three"], role="agent")
    got = []
    for _ in range(3):
        _, _, raw = post(scripted_server, chat_body(), {"X-T2S-Role": "agent"})
        got.append(json.loads(raw)["choices"][0]["message"]["content"])
    assert got == ["one", "two", "three"]
    status, _, raw = post(scripted_server, chat_body(), {"X-T2S-Role": "agent"})
    assert status == 400
    assert "no more replies" in json.loads(raw)["error"]["message"]
    # other roles still get the default
    status, _, _ = post(scripted_server, chat_body(), {"X-T2S-Role": "merger"})
    assert status == 200


def test_responder_exception_is_reported_not_swallowed(scripted_server):
    def broken(req):
        raise RuntimeError("bug in test responder")

    scripted_server.on(responder=broken)
    status, _, raw = post(scripted_server, chat_body())
    assert status == 400
    assert "bug in test responder" in json.loads(raw)["error"]["message"]
    assert scripted_server.errors


def test_async_responder(scripted_server):
    async def slow(req):
        await asyncio.sleep(0)
        return f"async {req.model}"

    scripted_server.on(responder=slow)
    _, _, raw = post(scripted_server, chat_body(model="mm"))
    assert json.loads(raw)["choices"][0]["message"]["content"] == "async mm"


def test_fault_429_carries_retry_after_then_recovers(scripted_server):
    scripted_server.fault("429", times=2, retry_after=1.5)
    first = post(scripted_server, chat_body())
    second = post(scripted_server, chat_body())
    third = post(scripted_server, chat_body())
    assert first[0] == second[0] == 429
    headers = {k.lower(): v for k, v in first[1].items()}
    assert headers["retry-after"] == "1.5"
    assert headers["retry-after-ms"] == "1500"
    assert third[0] == 200


def test_fault_500_and_custom_status_only_for_matching_role(scripted_server):
    scripted_server.fault("500", times=None, status=503, role="merger")
    assert post(scripted_server, chat_body(), {"X-T2S-Role": "merger"})[0] == 503
    assert post(scripted_server, chat_body(), {"X-T2S-Role": "merger"})[0] == 503
    assert post(scripted_server, chat_body(), {"X-T2S-Role": "agent"})[0] == 200


def test_fault_malformed_body(scripted_server):
    scripted_server.fault("malformed")
    status, _, raw = post(scripted_server, chat_body())
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(raw)


def test_fault_truncated_body_breaks_the_response(scripted_server):
    scripted_server.fault("truncated")
    with pytest.raises(Exception) as info:  # http.client.IncompleteRead
        post(scripted_server, chat_body("x" * 200))
    assert "IncompleteRead" in type(info.value).__name__ or "incomplete" in str(info.value).lower()


def test_fault_drop_closes_without_answer(scripted_server):
    scripted_server.fault("drop")
    with pytest.raises((ConnectionError, urllib.error.URLError, Exception)) as info:
        post(scripted_server, chat_body())
    assert "RemoteDisconnected" in type(info.value).__name__ or "closed" in str(info.value).lower()
    assert post(scripted_server, chat_body())[0] == 200


def test_fault_hang_never_answers(scripted_server):
    scripted_server.fault("hang")
    with pytest.raises((socket.timeout, TimeoutError, urllib.error.URLError)):
        post(scripted_server, chat_body(), timeout=0.3)
    assert scripted_server.in_flight == 1  # still hanging, counted in flight
    assert post(scripted_server, chat_body())[0] == 200


def test_content_faults(scripted_server):
    scripted_server.on(responder='{"answer": 42, "why": "because"}')
    scripted_server.fault("truncated_content")
    scripted_server.fault("non_json_content")
    first = json.loads(post(scripted_server, chat_body())[2])["choices"][0]
    second = json.loads(post(scripted_server, chat_body())[2])["choices"][0]
    assert first["finish_reason"] == "length"
    assert first["message"]["content"] == '{"answer": 42, "'
    assert "cannot" in second["message"]["content"]


def test_unknown_fault_kind_is_rejected(scripted_server):
    with pytest.raises(ValueError, match="unknown fault kind"):
        scripted_server.fault("explode")


def test_records_requests_and_peak_in_flight():
    with ScriptedServer(latency=0.05) as srv:

        async def go():
            client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
            try:
                await asyncio.gather(
                    *(
                        client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"n{i}"}])
                        for i in range(6)
                    )
                )
            finally:
                await client.close()

        asyncio.run(go())
        assert sorted(r.last_user_text for r in srv.requests) == [f"n{i}" for i in range(6)]
        assert srv.requests[0].authorization == "Bearer k"
        # six requests each held 50 ms by the server: they overlapped
        assert 2 <= srv.peak_in_flight <= 6
        assert srv.in_flight == 0


def test_standalone_process_prints_base_url_and_serves():
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2s.testing.server", "--port", "0", "--reply", "standalone"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        req = urllib.request.Request(
            base_url + "/chat/completions",
            data=json.dumps(chat_body()).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read())["choices"][0]["message"]["content"] == "standalone"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_latency_counts_from_arrival_and_includes_the_responder():
    """Like a remote model: the answer is worked out while the caller waits, so many
    concurrent requests are not held up by the simulator answering them in turn."""
    called: list[float] = []

    def responder(request):
        called.append(time.monotonic())
        return "done"

    with ScriptedServer(latency=1.0, default=responder) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="k", max_retries=0)
        started = time.monotonic()
        answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        elapsed = time.monotonic() - started
    assert answer.choices[0].message.content == "done"
    assert elapsed >= 1.0
    assert called[0] - started < 0.5  # answered on arrival, then held for the rest
