"""The ledger (calls, tokens, latency, cost per role and phase) and the hard caps."""

from __future__ import annotations

import asyncio
import json

import pytest

from t2s.config import parse_config
from t2s.errors import T2SError
from t2s.llm.client import LLM, Ledger
from t2s.llm.errors import BudgetExceeded, LLMError
from t2s.llm.results import ChatResult
from t2s.testing import Reply
from t2s.testing.pytest_plugin import scripted_role


def task(i: int) -> list[dict]:
    return [{"role": "user", "content": f"task {i}"}]


def make_llm(srv, budget=None, prices=None, cache_path=None, **settings) -> LLM:
    roles = {r: scripted_role(srv, model=f"{r}-model", **settings) for r in ("agent", "analyst", "merger")}
    return LLM(
        roles=roles,
        env={},
        budget=budget,
        prices=prices,
        cache_path=cache_path,
        cache_mode="read-write" if cache_path else "off",
    )


def test_calls_cap_is_checked_before_sending_and_keeps_finished_work(scripted_server):
    llm = make_llm(scripted_server, budget={"max_calls": 3}, concurrency=8)

    async def run_all():
        return await asyncio.gather(*(llm.chat("agent", task(i)) for i in range(10)), return_exceptions=True)

    results = llm.run(run_all())
    done = [r for r in results if isinstance(r, ChatResult)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(done) == 3 and len(refused) == 7
    assert all(r.content == "ok" for r in done)
    assert len(scripted_server.requests) == 3  # never exceeded, even with 8 slots free
    assert llm.ledger.totals.calls == 3
    assert "max_calls=3" in llm.ledger.stopped
    assert isinstance(refused[0], T2SError) and not isinstance(refused[0], LLMError)
    assert refused[0].hint


def test_a_loop_stops_cleanly_at_the_cap(scripted_server):
    llm = make_llm(scripted_server, budget={"max_calls": 2})
    finished = []
    with pytest.raises(BudgetExceeded, match="budget exhausted: max_calls=2 reached"):
        for i in range(5):
            finished.append(llm.chat_sync("agent", task(i)).content)
    assert finished == ["ok", "ok"]
    with pytest.raises(BudgetExceeded):  # stays stopped
        llm.chat_sync("analyst", task(9))
    assert len(scripted_server.requests) == 2


def test_token_cap_stops_new_requests_once_reached(scripted_server):
    scripted_server.on(responder=Reply(content="x", usage=(100, 100)))
    llm = make_llm(scripted_server, budget={"max_tokens": 300})
    llm.chat_sync("agent", task(1))  # 200 tokens
    llm.chat_sync("agent", task(2))  # 400: over, but it was admitted at 200
    with pytest.raises(BudgetExceeded, match="max_tokens=300 reached \\(400 tokens used\\)"):
        llm.chat_sync("agent", task(3))
    assert len(scripted_server.requests) == 2


def test_usd_cap_uses_prices_by_model(scripted_server):
    scripted_server.on(responder=Reply(content="x", usage=(500_000, 250_000)))
    prices = {"analyst-model": {"input": 1.0, "output": 2.0}}  # USD per million tokens
    llm = make_llm(scripted_server, budget={"max_usd": 1.5}, prices=prices)
    llm.chat_sync("analyst", task(1), phase="analyze")  # $0.50 + $0.50
    llm.chat_sync("analyst", task(2), phase="analyze")  # $2.00 total
    with pytest.raises(BudgetExceeded, match=r"max_usd=1\.5"):
        llm.chat_sync("analyst", task(3), phase="analyze")
    assert llm.ledger.totals.cost_usd == pytest.approx(2.0)


def test_cache_hits_are_free_and_allowed_after_the_cap(scripted_server, tmp_path):
    llm = make_llm(scripted_server, budget={"max_calls": 1}, cache_path=tmp_path / "c.db")
    llm.chat_sync("agent", task(1))
    assert llm.chat_sync("agent", task(1)).cached
    with pytest.raises(BudgetExceeded):
        llm.chat_sync("agent", task(2))
    assert llm.ledger.totals.cached == 1 and llm.ledger.totals.calls == 1


def test_ledger_rows_per_role_and_phase_with_totals_and_json(scripted_server):
    scripted_server.on(role="agent", responder=Reply(content="a", usage=(10, 2)))
    scripted_server.on(role="analyst", responder=Reply(content="b", usage=(1000, 100)))
    prices = {"agent-model": {"input": 0.5, "output": 1.5}}
    llm = make_llm(scripted_server, prices=prices)
    llm.phase = "rollout"
    for i in range(3):
        llm.chat_sync("agent", task(i))
    llm.chat_sync("agent", task(9), phase="gate")
    llm.chat_sync("analyst", task(0), phase="analyze")
    rows = {(r["role"], r["phase"]): r for r in llm.ledger.summary()}
    assert set(rows) == {("agent", "gate"), ("agent", "rollout"), ("analyst", "analyze"), ("total", "")}
    rollout = rows[("agent", "rollout")]
    assert (rollout["calls"], rollout["prompt_tokens"], rollout["completion_tokens"]) == (3, 30, 6)
    assert rollout["cost_usd"] == pytest.approx((30 * 0.5 + 6 * 1.5) / 1e6)
    assert rollout["latency_s"] > 0
    assert rows[("total", "")]["calls"] == 5
    assert rows[("total", "")]["total_tokens"] == 30 + 6 + 12 + 1100

    data = json.loads(llm.ledger.to_json())
    assert data["unpriced_models"] == ["analyst-model"]
    assert {r["role"] for r in data["by_role"]} == {"agent", "analyst"}
    assert {r["phase"] for r in data["by_phase"]} == {"analyze", "gate", "rollout"}
    restored = Ledger.from_json(llm.ledger.to_json())
    assert restored.summary()[:-1] == llm.ledger.summary()[:-1]
    assert restored.totals.calls == 5 and restored.totals.total_tokens == 1148


def test_failed_calls_are_counted_as_errors(scripted_server):
    scripted_server.fault("500", times=None)
    llm = make_llm(scripted_server, max_retries=1)
    with pytest.raises(LLMError):
        llm.chat_sync("merger", task(0), phase="merge")
    row = llm.ledger.summary()[0]
    assert (row["role"], row["phase"], row["calls"], row["errors"], row["attempts"]) == ("merger", "merge", 1, 1, 2)


def test_budget_and_prices_come_from_t2s_toml(scripted_server):
    scripted_server.on(responder=Reply(content="x", usage=(1_000_000, 0)))
    config = parse_config(
        f'[models.agent]\nmodel = "priced"\nbase_url = "{scripted_server.base_url}"\n'
        "[prices.priced]\ninput = 3.0\noutput = 6.0\n"
        "[budget]\nmax_usd = 5.0\n"
    )
    llm = LLM(config, env={}, cache_mode="off")
    llm.chat_sync("agent", task(1))
    llm.chat_sync("agent", task(2))
    with pytest.raises(BudgetExceeded):
        llm.chat_sync("agent", task(3))
    assert llm.ledger.totals.cost_usd == pytest.approx(6.0)
