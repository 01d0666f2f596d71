"""Prompts providers can cache (issue 19): the static part of every role's prompt comes
first, the server's cached-token counts reach the ledger, cached tokens have their own
price, and the report shows the cached share."""

from __future__ import annotations

import os

import pytest

from t2s.config import parse_config
from t2s.consolidation.group import render_messages
from t2s.consolidation.models import MergeInput
from t2s.llm.client import LLM
from t2s.llm.ledger import Ledger
from t2s.prompts import load, render
from t2s.testing import Reply, ScriptedServer
from t2s.testing.prefix import PrefixCache, estimate_tokens, prompt_text
from t2s.testing.pytest_plugin import scripted_role
from t2s.views.report import render_report
from tests._runfixtures import make_skill_repo, start_run

SYSTEM = "You are a careful agent. " * 200  # ~1,250 tokens of static prompt


def conversation(task: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": task}]


def shared_prefix(a: str, b: str) -> str:
    return os.path.commonprefix([a, b])  # noqa: RUF071  (strings, character by character, on purpose)


def test_prefix_cache_counts_what_an_earlier_prompt_shared():
    cache = PrefixCache()
    first = {"model": "m", "messages": conversation("task one")}
    second = {"model": "m", "messages": conversation("task two")}
    other_model = {"model": "n", "messages": conversation("task two")}
    assert cache.cached_tokens(first) == (estimate_tokens(prompt_text(first)), 0)
    total, cached = cache.cached_tokens(second)
    assert cached == len(shared_prefix(prompt_text(first), prompt_text(second))) // 4
    assert 0 < cached < total
    assert cache.cached_tokens(other_model)[1] == 0  # caches are per model


def test_cached_tokens_reach_the_ledger_and_cost_the_cached_price(tmp_path):
    with ScriptedServer(prefix_cache=True) as srv:
        srv.on(role="agent", responder=Reply(content="done", usage=(2000, 10)))
        (tmp_path / "t2s.toml").write_text(
            f'[models.agent]\nmodel = "priced"\nbase_url = "{srv.base_url}"\napi_key_env = "NONE"\n'
            "[prices.priced]\ninput = 3.0\ncached_input = 0.3\noutput = 6.0\n"
        )
        config = parse_config((tmp_path / "t2s.toml").read_text())
        llm = LLM(config, env={"NONE": "x"}, cache_mode="off", phase="rollout")
        first = llm.chat_sync("agent", conversation("task one"))
        second = llm.chat_sync("agent", conversation("task two"))
    assert first.usage.cached_tokens == 0
    expected = len(shared_prefix(prompt_text(srv.requests[0].body), prompt_text(srv.requests[1].body))) // 4
    assert second.usage.cached_tokens == expected > 1000
    row = llm.ledger.summary()[0]
    assert (row["prompt_tokens"], row["cached_tokens"]) == (4000, expected)
    assert row["cached_share"] == pytest.approx(expected / 4000, abs=1e-4)
    assert row["cost_usd"] == pytest.approx(((4000 - expected) * 3.0 + expected * 0.3 + 20 * 6.0) / 1e6)


def test_a_server_that_reports_no_cache_details_records_none_and_prices_as_input(scripted_server):
    scripted_server.on(role="agent", responder=Reply(content="a", usage=(100, 10)))
    prices = {"agent-model": {"input": 1.0, "output": 2.0}}
    roles = {"agent": scripted_role(scripted_server, model="agent-model")}
    llm = LLM(roles=roles, env={}, prices=prices, cache_mode="off")
    llm.chat_sync("agent", conversation("x"))
    llm.chat_sync("agent", conversation("x"))
    total = llm.ledger.totals
    assert total.cached_tokens == 0 and total.cost_usd == pytest.approx((200 * 1.0 + 20 * 2.0) / 1e6)
    assert llm.ledger.price("agent-model") == (1.0, 1.0, 2.0)  # no cached_input: the input price
    assert llm.ledger.price("unknown") is None


def test_a_ledger_stored_before_cached_tokens_existed_reads_back():
    old = {"rows": [{"role": "agent", "phase": "rollout", "calls": 2, "prompt_tokens": 50, "cost_usd": 0.1}]}
    ledger = Ledger.from_dict(old)
    assert ledger.totals.cached_tokens == 0 and ledger.totals.prompt_tokens == 50


def test_report_shows_the_cached_share_of_prompt_tokens(tmp_path):
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    totals = {"calls": 4, "cached": 0, "total_tokens": 1100, "prompt_tokens": 1000, "cached_tokens": 250}
    record.write({"ledger/rollout.json": {"totals": totals, "rows": []}}, "ledger")
    page = render_report(store, "r1")
    assert "<th>cached input</th>" in page
    assert "<td>rollout</td><td>4</td><td>0</td><td>1100</td><td>250 (25%)</td>" in page


# ------------------------------------------------------------------ the layout
def _render_twice(template: str, static: str, **names: str) -> tuple[str, str]:
    a = render(load(template), **{name: f"{name} of trajectory A" for name in names}, **{static: "S0 TEXT " * 50})
    b = render(load(template), **{name: f"{name} of trajectory B" for name in names}, **{static: "S0 TEXT " * 50})
    return a, b


@pytest.mark.parametrize("template", ["analyst_single_task.md", "analyst_error_task.md"])
def test_analyst_prompts_start_with_the_frozen_skill(template):
    per_trajectory = dict.fromkeys(
        (
            "trajectory",
            "task",
            "verdict",
            "instruction",
            "answer_position",
            "workspace",
            "check",
            "facts",
            "transcript",
        ),
        "",
    )
    a, b = _render_twice(template, "skill_files", **per_trajectory)
    assert "S0 TEXT " * 50 in shared_prefix(a, b)  # S0 is in the prefix two trajectories share


def test_merge_prompts_start_with_the_frozen_skill():
    s0 = {"SKILL.md": "# Skill\n" + "Always check the output.\n" * 40}

    def user(group: str, label: str) -> str:
        item = MergeInput(ref=f"refs/heads/{label}", commit="0" * 40, label=label, diff="--- a\n+++ b\n", lessons=[])
        messages = render_messages(run="r1", name=group, level=1, s0_texts=s0, inputs=[item], min_support=2)
        return messages[1]["content"]

    assert s0["SKILL.md"] in shared_prefix(user("L1-01", "p0001"), user("L1-02", "p0002"))
