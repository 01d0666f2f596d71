"""``--dry-run``: estimates of calls, tokens, USD and time per role, built from the real
rendered prompts and the repository's own earlier runs, that spend and write nothing.
On the demo tasks (the simulated roles of ``t2s demo`` on the scripted server) the
estimate is checked against what the real stages then spend."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.demo import DEMO_CONFIG
from t2s.demo.simulation import agent_responder, analyst_responder
from t2s.demo.tasks import write_suite
from t2s.testing.simulated import merger_responder

MODEL = "t2s-demo-sim"


@pytest.fixture
def demo_repo(tmp_path, scripted_server, monkeypatch):
    """A skill repository on the demo suite, the demo's simulated roles behind every model."""
    scripted_server.on(agent_responder, role="agent")
    scripted_server.on(analyst_responder, role="analyst")
    scripted_server.on(merger_responder, role="merger")
    for var, value in {
        "T2S_BASE_URL": scripted_server.base_url,
        "T2S_MODEL": MODEL,
        "T2S_API_KEY_ENV": "T2S_DEMO_API_KEY",
        "T2S_CACHE_MODE": "off",
    }.items():
        monkeypatch.setenv(var, value)
    write_suite(tmp_path / "tasks")
    repo = tmp_path / "my-skills"
    t2s(["init", str(repo), "--seed", "xlsx"])
    config = repo / "t2s.toml"
    text = config.read_text().replace('# suite = "sheets"', 'suite = "demo"')
    config.write_text(text + DEMO_CONFIG + f"\n[prices.{MODEL}]\ninput = 2.0\noutput = 8.0\n")
    subprocess.run(["git", "-C", str(repo), "commit", "-qam", "configure the demo suite"], check=True)
    return repo


def t2s(args: list[str], code: int = 0) -> str:
    out = CliRunner().invoke(main, args)
    assert out.exit_code == code, out.output
    return out.output


def snapshot(repo: Path) -> tuple[str, str, str]:
    """Every ref and note, the working tree, and the files of the git directory."""
    refs = subprocess.run(["git", "-C", str(repo), "for-each-ref"], capture_output=True, text=True, check=True).stdout
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--ignored"], capture_output=True, text=True, check=True
    ).stdout
    files = "\n".join(sorted(str(p.relative_to(repo)) for p in (repo / ".git").rglob("*") if "objects" not in p.parts))
    return refs, status, files


def estimate(repo: Path, *args: str) -> dict:
    return json.loads(t2s([*args, "-C", str(repo), "--dry-run", "--json"]))


def row(data: dict, role: str) -> dict:
    rows = [r for r in data["rows"] if r["role"] == role]
    assert len(rows) == 1, data
    return rows[0]


def ledger(repo: Path, run: str, phase: str, role: str) -> dict:
    from t2s.gitstore.store import GitStore
    from t2s.record.runs import RunRecord

    data = RunRecord(GitStore.discover(repo), run).read_json(f"ledger/{phase}.json")
    return next(r for r in data["by_role"] if r["role"] == role)


def near(estimated: float, actual: float, tolerance: float) -> bool:
    return abs(estimated - actual) <= tolerance * actual


def test_dry_runs_spend_nothing_and_write_nothing(demo_repo, scripted_server):
    before = snapshot(demo_repo)
    data = estimate(demo_repo, "rollout", "--run", "r1")
    agent = row(data, "agent")
    assert agent["calls"] > 0 and agent["input_tokens"] > 0 and agent["usd"] > 0
    assert agent["basis"].startswith("defaults") and "characters per token" in agent["tokenizer"]
    assert data["totals"]["wall_s"] > 0
    evolve = estimate(demo_repo, "evolve", "--run", "r1")
    assert {r["role"] for r in evolve["rows"]} == {"agent", "analyst", "merger"}
    rounds = [r["stage"] for r in estimate(demo_repo, "evolve", "--run", "r1", "--rounds", "2")["rows"]]
    assert rounds.count("gate candidate HEAD") == 1 and rounds.count("gate candidate HEAD (round 2)") == 1
    assert rounds.count("gate baseline HEAD") == 1 and rounds.count("rollout (round 2)") == 1
    assert estimate(demo_repo, "eval", "HEAD")["rows"] and estimate(demo_repo, "gate", "HEAD", "--baseline", "HEAD")
    text = t2s(["rollout", "-C", str(demo_repo), "--run", "r1", "--dry-run"])
    assert "nothing was spent or written" in text and "agent" in text
    assert scripted_server.requests == [] and snapshot(demo_repo) == before


def test_estimates_from_the_repositorys_own_runs_match_what_the_stages_spend(demo_repo, scripted_server):
    # An earlier, smaller run with the same model is the history the estimate learns from.
    t2s(["rollout", "-C", str(demo_repo), "--run", "r0", "--limit", "6"])
    t2s(["analyze", "-C", str(demo_repo), "--run", "r0"])
    t2s(["merge", "-C", str(demo_repo), "--run", "r0"])

    est = row(estimate(demo_repo, "rollout", "--run", "r1"), "agent")
    assert est["basis"].startswith("history: ")
    t2s(["rollout", "-C", str(demo_repo), "--run", "r1"])
    actual = ledger(demo_repo, "r1", "rollout", "agent")
    assert near(est["calls"], actual["calls"], 0.10), (est, actual)
    assert near(est["input_tokens"] + est["output_tokens"], actual["total_tokens"], 0.30), (est, actual)

    before = snapshot(demo_repo)
    est = row(estimate(demo_repo, "analyze", "--run", "r1"), "analyst")
    assert snapshot(demo_repo) == before  # a dry run of an existing run writes nothing either
    assert est["basis"].startswith("history: ")
    t2s(["analyze", "-C", str(demo_repo), "--run", "r1"])
    actual = ledger(demo_repo, "r1", "analyze", "analyst")
    assert near(est["calls"], actual["calls"], 0.10), (est, actual)
    assert near(est["input_tokens"] + est["output_tokens"], actual["total_tokens"], 0.30), (est, actual)

    before = snapshot(demo_repo)
    est = row(estimate(demo_repo, "merge", "--run", "r1"), "merger")
    assert snapshot(demo_repo) == before
    t2s(["merge", "-C", str(demo_repo), "--run", "r1"])
    actual = ledger(demo_repo, "r1", "merge", "merger")
    assert near(est["calls"], actual["calls"], 0.10), (est, actual)
    assert near(est["input_tokens"] + est["output_tokens"], actual["total_tokens"], 0.30), (est, actual)


def test_an_evolve_over_a_budget_cap_is_refused_up_front_unless_forced(demo_repo, scripted_server):
    config = demo_repo / "t2s.toml"
    config.write_text(config.read_text().replace("[budget]", "[budget]\nmax_usd = 0.001", 1))
    assert "max_usd = 0.001" in config.read_text()
    before = snapshot(demo_repo)
    out = CliRunner().invoke(main, ["evolve", "-C", str(demo_repo), "--run", "r1"])
    assert out.exit_code == 1, out.output
    assert "refusing to start: the estimate is over the [budget] caps" in out.output
    assert "max_usd 0.001" in out.output and "--force" in out.output
    assert scripted_server.requests == [] and snapshot(demo_repo) == before
    # Forced, it starts; the cap itself still stops the spending.
    forced = CliRunner().invoke(main, ["evolve", "-C", str(demo_repo), "--run", "r1", "--force", "--limit", "2"])
    assert scripted_server.requests, forced.output
    assert "max_usd=0.001 reached" in forced.output, forced.output


def test_a_real_run_keeps_its_estimate_and_shows_it_against_the_ledger(demo_repo, scripted_server, tmp_path):
    out = t2s(["rollout", "-C", str(demo_repo), "--run", "r1", "--limit", "3"])
    assert "agent: estimated 12 calls" in out and "actual " in out  # defaults: 4 calls per episode
    from t2s.estimates.recorded import estimate_vs_actual
    from t2s.gitstore.store import GitStore

    store = GitStore.discover(demo_repo)
    (row,) = estimate_vs_actual(store, "r1", "rollout")
    assert row["estimated_calls"] == 12 and row["calls"] == ledger(demo_repo, "r1", "rollout", "agent")["calls"]
    t2s(["rollout", "-C", str(demo_repo), "--run", "r1", "--limit", "4"])  # resumed: one more task, added up
    (row,) = estimate_vs_actual(store, "r1", "rollout")
    assert row["calls"] == ledger(demo_repo, "r1", "rollout", "agent")["calls"] and row["estimated_calls"] > 12
    report = tmp_path / "report.html"
    t2s(["report", "-C", str(demo_repo), "--run", "r1", "-o", str(report)])
    html = report.read_text()
    assert "estimated before (calls / tokens / USD)" in html and f"{row['estimated_calls']} / " in html


def test_an_offline_tokenizer_download_falls_back_to_characters(tmp_path):
    """tiktoken fetches an encoding on first use; offline (here: an unreachable proxy and
    an empty cache), a dry run counts by characters instead of failing with a traceback."""
    pytest.importorskip("tiktoken")
    code = (
        "from t2s.estimates.model import count_tokens, tokenizer_name; "
        "print(tokenizer_name('gpt-4o-mini'), count_tokens('abcdefgh', 'gpt-4o-mini'))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    import sys

    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "characters", "per", "token", "2"]
