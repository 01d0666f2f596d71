"""Structured output: extract, repair, validate, re-ask with the exact error, give up."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from t2s.llm.client import LLM
from t2s.llm.errors import LLMError, StructuredOutputError
from t2s.llm.structured import extract_json
from t2s.testing import Reply, tool_call
from t2s.testing.pytest_plugin import scripted_role


class Verdict(BaseModel):
    verdict: str
    score: int
    tags: list[str] = []


ASK = [{"role": "system", "content": "You judge."}, {"role": "user", "content": "Judge this."}]


def make_llm(srv, **kw) -> LLM:
    return LLM(roles={"analyst": scripted_role(srv, model="analyst-model")}, env={}, cache_mode="off", **kw)


def test_bare_json_and_schema_in_system_prompt(scripted_server):
    scripted_server.on(responder='{"verdict": "pass", "score": 3}')
    got = make_llm(scripted_server).structured_sync("analyst", ASK, Verdict, phase="analyze")
    assert got == Verdict(verdict="pass", score=3)
    sent = scripted_server.requests[0]
    assert len(sent.messages) == 2  # the schema went into the existing system message
    assert sent.messages[0]["content"].startswith("You judge.")
    assert '"score"' in sent.messages[0]["content"] and "JSON Schema" in sent.messages[0]["content"]
    assert sent.phase == "analyze"


def test_fenced_answer_with_prose_and_thinking(scripted_server):
    scripted_server.on(
        responder=(
            "<think>the score should be {3}</think>Here is my verdict:\n"
            '```json\n{"verdict": "fail", "score": 1, "tags": ["slow"]}\n```\nHope it helps.'
        )
    )
    got = make_llm(scripted_server).structured_sync("analyst", ASK, Verdict)
    assert got == Verdict(verdict="fail", score=1, tags=["slow"])
    assert len(scripted_server.requests) == 1


def test_trailing_commas_are_repaired_without_asking_again(scripted_server):
    scripted_server.on(responder='{"verdict": "a, b", "score": 2, "tags": ["x",],}')
    got = make_llm(scripted_server).structured_sync("analyst", ASK, Verdict)
    assert got == Verdict(verdict="a, b", score=2, tags=["x"])
    assert len(scripted_server.requests) == 1


def test_wrong_type_is_re_asked_with_the_exact_validation_error(scripted_server):
    scripted_server.script(['{"verdict": "pass", "score": "three"}', '{"verdict": "pass", "score": 3}'], role="analyst")
    got = make_llm(scripted_server).structured_sync("analyst", ASK, Verdict)
    assert got.score == 3
    repair = scripted_server.requests[1].messages
    assert repair[-2] == {"role": "assistant", "content": '{"verdict": "pass", "score": "three"}'}
    assert repair[-1]["role"] == "user"
    assert "score: Input should be a valid integer" in repair[-1]["content"]
    assert "'three'" in repair[-1]["content"]


def test_missing_field_error_names_the_field(scripted_server):
    scripted_server.script(['{"score": 1}', '{"verdict": "ok", "score": 1}'], role="analyst")
    make_llm(scripted_server).structured_sync("analyst", ASK, Verdict)
    assert "verdict: Field required" in scripted_server.requests[1].messages[-1]["content"]


def test_garbage_gives_up_with_raw_text_and_every_error(scripted_server):
    scripted_server.on(responder="I cannot do that, Dave.")
    llm = make_llm(scripted_server)
    with pytest.raises(StructuredOutputError) as info:
        llm.structured_sync("analyst", ASK, Verdict, repairs=2)
    err = info.value
    assert isinstance(err, LLMError)
    assert err.raw == "I cannot do that, Dave."
    assert len(err.errors) == 3 and all("not valid JSON" in e for e in err.errors)
    assert "Verdict" in err.message and "after 3 attempts" in err.message
    assert err.role == "analyst"
    assert len(scripted_server.requests) == 3
    assert llm.ledger.totals.calls == 3


def test_truncated_answer_is_reported_as_cut_off(scripted_server):
    scripted_server.on(responder='{"verdict": "pass", "score": 3, "tags": ["a", "b"]}')
    scripted_server.fault("truncated_content", times=None)
    with pytest.raises(StructuredOutputError, match="cut off at max_tokens"):
        make_llm(scripted_server).structured_sync("analyst", ASK, Verdict, repairs=0)
    assert len(scripted_server.requests) == 1


def test_non_json_content_then_recovery(scripted_server):
    scripted_server.on(responder='{"verdict": "pass", "score": 3}')
    scripted_server.fault("non_json_content", times=1)
    got = make_llm(scripted_server).structured_sync("analyst", ASK, Verdict, repairs=1)
    assert got.verdict == "pass"
    assert "not valid JSON" in scripted_server.requests[1].messages[-1]["content"]


def test_answer_given_as_a_tool_call_is_accepted(scripted_server):
    scripted_server.on(responder=Reply(tool_calls=[tool_call("answer", {"verdict": "v", "score": 9})]))
    assert make_llm(scripted_server).structured_sync("analyst", ASK, Verdict).score == 9


def test_instruct_false_leaves_the_prompt_alone(scripted_server):
    scripted_server.on(responder='{"verdict": "v", "score": 1}')
    make_llm(scripted_server).structured_sync("analyst", ASK[1:], Verdict, instruct=False)
    assert scripted_server.requests[0].messages == ASK[1:]


def test_no_system_message_gets_one(scripted_server):
    scripted_server.on(responder='{"verdict": "v", "score": 1}')
    make_llm(scripted_server).structured_sync("analyst", ASK[1:], Verdict)
    assert [m["role"] for m in scripted_server.requests[0].messages] == ["system", "user"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2,]  ", [1, 2]),
        ('```\n{"a": [1,]}\n```', {"a": [1]}),
        ('```JSON\n{"a": 1}\n```', {"a": 1}),
        ('Sure! {"a": {"b": "}"}} done', {"a": {"b": "}"}}),
        ('prefix {"a": 1,} suffix', {"a": 1}),
        ('<think>{"no": 1}</think>{"yes": 2}', {"yes": 2}),
        ('{"s": "keep, ]this"}', {"s": "keep, ]this"}),
    ],
)
def test_extract_json(text, expected):
    assert extract_json(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "no json here", "{broken: json", None])
def test_extract_json_rejects_garbage(text):
    with pytest.raises(ValueError):
        extract_json(text)
