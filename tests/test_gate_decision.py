"""The gate's decision rule: a strict improvement by default (0 -> 0 fails), and
``decide = "significant"``, which passes only a gain that is larger than the agent's
own noise (paired bootstrap interval over tasks and seeds)."""

from __future__ import annotations

import hashlib
import json
import re

from click.testing import CliRunner

from t2s.cli import main
from t2s.evaluation.significance import delta_interval, flaky_tasks, pass_rates
from t2s.record.notes import EvalRecord, TaskVerdict, read_eval_note
from t2s.testing import Reply, tool_call
from tests.test_eval_support import CODE, commit_skill, make_repo

FLAKY = [f"t{n}" for n in range(8)]
SEEDS = 4


def coin(task: str, seed: int, variant: str) -> bool:
    """The flaky agent's luck: a fixed coin per (task, seed, skill variant)."""
    return hashlib.sha256(f"{task}:{seed}:{variant}".encode()).digest()[0] % 2 == 0


def flaky_responder(req):
    """An agent that solves a task only when its coin says so, unless the skill says
    ``LESSON all``; which coin it gets depends on the seed and on the skill's
    ``VARIANT`` line (a change that does not help, only reshuffles the luck)."""
    system = next((m.get("content") or "" for m in req.messages if m["role"] == "system"), "")
    user = next(m["content"] for m in req.messages if m["role"] == "user")
    inp = re.search(r"Input workbook: (\S+)", user).group(1)
    out = re.search(r"Write the finished workbook to: (\S+)", user).group(1)
    task = re.search(r"1_(.+?)_init\.xlsx", inp).group(1)
    variant = (re.search(r"VARIANT (\w+)", system) or [None, "v0"])[1]
    right = "LESSON all" in system or coin(task, int(req.body.get("seed") or 0), variant)
    if not any(m["role"] == "assistant" for m in req.messages):
        code = CODE.format(inp=inp, out=out, wrong="" if right else " + 1")
        return Reply(tool_calls=[tool_call("run_python", {"code": code})])
    return Reply(tool_calls=[tool_call("finish", {"summary": "done"})])


def expected_score(variant: str) -> float:
    return sum(coin(t, s, variant) for t in FLAKY for s in range(SEEDS)) / (len(FLAKY) * SEEDS)


def gate_json(store, cand, base, *args):
    out = CliRunner().invoke(main, ["gate", cand, "--baseline", base, "-C", str(store.root), "--json", *args])
    assert out.exit_code in (0, 1), out.output
    return out.exit_code, json.loads(out.output)


def test_an_unchanged_score_fails_by_default_and_the_summary_says_why(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    s0 = store.resolve("HEAD")
    same = commit_skill(store, [s0], ["A remark that changes nothing."], "no-op")
    code, data = gate_json(store, same, s0)
    gate = data["gate"]
    assert code == 1 and not data["passed"]
    assert gate["delta"] == 0.0 and gate["require_improvement"] is True
    assert "a strict improvement is required" in data["markdown"]
    assert "need > +0.000" in data["markdown"]
    assert not read_eval_note(store, same).has_passing_gate()  # release would refuse it
    # Opting out of the strict rule accepts an equal score, and says so.
    (store.root / "t2s.toml").write_text(
        (store.root / "t2s.toml").read_text() + "\n[gate]\nrequire_improvement = false\n"
    )
    code, data = gate_json(store, same, s0)
    assert code == 0 and "is at least +0.000" in data["markdown"]


def test_significant_fails_a_gain_inside_the_noise_and_passes_a_real_one(tmp_path, scripted_server):
    store = make_repo(
        tmp_path,
        scripted_server,
        heldout=FLAKY,
        suite_ids=[*FLAKY, "evo1"],
        extra_toml=f"\n[gate]\nseeds = {SEEDS}\nmax_regressions = 8\n",
    )
    scripted_server.reset()
    scripted_server.on(flaky_responder, role="agent")
    s0 = store.resolve("HEAD")
    base = commit_skill(store, [s0], ["VARIANT v0"], "baseline")
    # A variant that only reshuffles the luck yet happens to score higher.
    lucky = next(f"v{n}" for n in range(1, 200) if expected_score(f"v{n}") - expected_score("v0") >= 0.12)
    noisy = commit_skill(store, [base], [f"VARIANT {lucky}"], "reshuffled luck")

    code, data = gate_json(store, noisy, base)  # decide = "delta": the lucky draw passes
    assert code == 0 and data["gate"]["delta"] >= 0.12
    gate = data["gate"]
    assert gate["flaky"] and set(gate["flaky"]) <= set(FLAKY)
    assert gate["baseline_pass_rates"]["t0"] == sum(coin("t0", k, "v0") for k in range(SEEDS)) / SEEDS
    assert "| task | baseline pass rate | candidate pass rate | flaky |" in data["markdown"]

    code, data = gate_json(store, noisy, base, "--decide", "significant")
    gate = data["gate"]
    assert code == 1, data["markdown"]
    assert gate["ci_low"] <= 0.0 < gate["ci_high"] and gate["decide"] == "significant"
    assert "is not significant" in data["markdown"]
    assert "paired hierarchical bootstrap" in data["markdown"]

    better = commit_skill(store, [base], ["VARIANT v0", "LESSON all"], "a real lesson")
    code, data = gate_json(store, better, base, "--decide", "significant")
    assert code == 0, data["markdown"]
    assert data["gate"]["ci_low"] > 0 and data["gate"]["candidate_score"] == 1.0
    assert "so the gain is not noise" in data["markdown"]


def _record(scores: dict[str, list[float]]) -> EvalRecord:
    tasks = [
        TaskVerdict(task=t, seed=k, passed=s >= 1, score=s) for t, runs in scores.items() for k, s in enumerate(runs)
    ]
    return EvalRecord(
        suite="s",
        split="h",
        suite_hash="x",
        skill_tree="t",
        skill_dir="d",
        agent={},
        agent_hash="a",
        seeds=len(next(iter(scores.values()))),
        tasks=tasks,
        score=sum(v.score for v in tasks) / len(tasks),
        passed=sum(v.passed for v in tasks),
        total=len(tasks),
    )


def test_the_interval_is_paired_reproducible_and_widens_with_seed_noise():
    steady_base = _record({f"t{n}": [0.0, 0.0] for n in range(6)})
    steady_cand = _record({f"t{n}": [1.0, 1.0] if n < 3 else [0.0, 0.0] for n in range(6)})
    ids = [f"t{n}" for n in range(6)]
    first = delta_interval(steady_base, steady_cand, ids, alpha=0.05)
    assert first == delta_interval(steady_base, steady_cand, ids, alpha=0.05)  # seeded: same verdict every time
    assert first.low <= 0.5 <= first.high and first.high <= 1.0
    # Same mean delta, but each task is a coin over the seeds: a wider interval.
    noisy_cand = _record({f"t{n}": [1.0, 0.0] for n in range(6)})
    noisy = delta_interval(steady_base, noisy_cand, ids, alpha=0.05)
    assert noisy.high - noisy.low > 0
    assert flaky_tasks(steady_base, noisy_cand) == ids and flaky_tasks(steady_base, steady_cand) == []
    assert pass_rates(noisy_cand)["t0"] == 0.5
    # A larger alpha gives a narrower interval.
    loose = delta_interval(steady_base, steady_cand, ids, alpha=0.5)
    assert first.low <= loose.low and loose.high <= first.high


def test_eval_repeat_measures_the_noise_floor_without_any_cache(tmp_path, scripted_server):
    store = make_repo(
        tmp_path,
        scripted_server,
        heldout=FLAKY,
        suite_ids=[*FLAKY, "evo1"],
    )
    scripted_server.reset()
    scripted_server.on(flaky_responder, role="agent")
    toml = store.root / "t2s.toml"  # the response cache on: --repeat must not replay it
    toml.write_text(toml.read_text().replace('mode = "off"', 'mode = "read-write"'))
    s0 = store.resolve("HEAD")
    first = CliRunner().invoke(main, ["eval", s0, "-C", str(store.root), "--json"])
    assert first.exit_code == 0, first.output
    calls = len(scripted_server.requests_for("agent"))
    out = CliRunner().invoke(main, ["eval", s0, "-C", str(store.root), "--repeat", "2", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    # Both runs ran: neither the eval note nor the cached answers of the first command were reused ...
    assert len(scripted_server.requests_for("agent")) == calls + 2 * 2 * len(FLAKY)
    # ... and the second sampled with another seed: the flaky agent's coins differ.
    want = [sum(coin(t, k, "v0") for t in FLAKY) / len(FLAKY) for k in (0, 1)]
    assert data["scores"] == want
    unstable = [t for t in FLAKY if coin(t, 0, "v0") != coin(t, 1, "v0")]
    assert data["unstable"] == unstable and unstable
    assert data["agreement"] == 1 - len(unstable) / len(FLAKY)
    assert data["spread"] == round(abs(want[0] - want[1]), 6)
    assert "is the agent's own noise" in data["summary"]
