"""The text protocol parser on real model replies (tests/fixtures/agent_replies): each
reply parses into the actions it was meant as.

``recorded.json`` holds replies of a real small model (Qwen2.5-Coder-1.5B-Instruct)
recorded while t2s ran it; ``issue21.json`` the kinds of reply issue 21 describes that
the recording does not hold. An expectation may name:

- ``tools``: the tools of every parsed action, in order (``[]``: no action);
- ``first_tool`` / ``count``: the first action's tool and the number of actions;
- ``first_arguments`` / ``arguments``: argument values of the first / of each action
  (``None``: not checked);
- ``first_code_parses`` / ``first_code_contains`` / ``first_code_excludes``: about the
  code (or command) of the first action;
- ``final_answer``: what ``parse_final_answer`` reads (None when absent).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from t2s.agent.actions import parse_final_answer, parse_text_actions

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "agent_replies"


def _replies() -> list:
    params = []
    for name in ("recorded.json", "issue21.json"):
        for reply in json.loads((FIXTURES / name).read_text(encoding="utf-8"))["replies"]:
            params.append(pytest.param(reply, id=f"{name.removesuffix('.json')}:{reply['id']}"))
    return params


def _code(action) -> str:
    return action.arguments.get("code", action.arguments.get("command", ""))


@pytest.mark.parametrize("reply", _replies())
def test_a_reply_parses_as_intended(reply):
    expect = reply["expect"]
    actions = parse_text_actions(reply["content"])
    tools = [a.tool for a in actions]
    assert "invalid" not in tools, [a.error for a in actions]
    if "tools" in expect:
        assert tools == expect["tools"]
    if "first_tool" in expect:
        assert tools[0] == expect["first_tool"]
    if "count" in expect:
        assert len(actions) == expect["count"]
    if "first_arguments" in expect:
        assert {k: actions[0].arguments.get(k) for k in expect["first_arguments"]} == expect["first_arguments"]
    for action, wanted in zip(actions, expect.get("arguments", []), strict=False):
        if wanted is not None:
            assert {k: action.arguments.get(k) for k in wanted} == wanted
    if "first_code_parses" in expect:
        try:
            ast.parse(_code(actions[0]))
            parses = True
        except SyntaxError:
            parses = False
        assert parses is expect["first_code_parses"]
    if "first_code_contains" in expect:
        assert expect["first_code_contains"] in _code(actions[0])
    if "first_code_excludes" in expect:
        assert expect["first_code_excludes"] not in _code(actions[0])
    assert parse_final_answer(reply["content"]) == expect.get("final_answer")


def test_the_fixtures_stay_small_and_say_where_they_come_from():
    recorded = json.loads((FIXTURES / "recorded.json").read_text(encoding="utf-8"))
    assert recorded["model"] == "qwen2.5-coder-1.5b-instruct" and len(recorded["replies"]) >= 10
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 300_000
    assert "Qwen2.5-Coder-1.5B-Instruct" in (FIXTURES / "README.md").read_text(encoding="utf-8")


def test_code_that_only_looks_like_the_protocol_stays_code():
    (action,) = parse_text_actions("```python\nFINAL_ANSWER = 3\nprint(FINAL_ANSWER)\n# FINISH\n```")
    assert action.arguments["code"] == "FINAL_ANSWER = 3\nprint(FINAL_ANSWER)\n# FINISH\n"
    assert parse_final_answer("```python\nFINAL_ANSWER = 3\nprint(FINAL_ANSWER)\n```") is None
    assert parse_final_answer("```python\nprint('FINAL ANSWER: no')\n```") is None
