"""`t2s gate`: paired comparison, thresholds, the Markdown summary, the gate note."""

from __future__ import annotations

import json

from click.testing import CliRunner

from t2s.cli import main
from t2s.record.notes import read_eval_note
from tests.conftest import git
from tests.test_eval_support import agent_calls, commit_skill, make_repo


def test_gate_passes_a_better_candidate_and_writes_the_summary(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    s0 = store.resolve("HEAD")
    cand = commit_skill(store, [s0], ["LESSON hard1", "LESSON hard2"], "two lessons")
    summary = tmp_path / "summary.md"
    out = CliRunner().invoke(
        main, ["gate", cand, "--baseline", s0, "-C", str(store.root), "--markdown", str(summary), "--json"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    gate = data["gate"]
    assert gate["passed"] and gate["delta"] == 0.5 and gate["regressions"] == 0
    assert gate["paired"] == {"both": 2, "only_baseline": 0, "only_candidate": 2, "neither": 0}
    assert gate["p_value"] == 0.5  # two discordant pairs, both one way: 2 * (1/4)
    assert gate["improved"] == ["hard1", "hard2"]
    text = summary.read_text()
    assert "t2s gate PASSED" in text and "| only candidate (improved) | 2 |" in text
    note = read_eval_note(store, cand)
    assert note.has_passing_gate() and note.gate.baseline == s0 and note.gate.candidate == cand
    assert read_eval_note(store, s0).gate is None and read_eval_note(store, s0).evals
    calls = agent_calls(scripted_server)
    # Gating again is free: both results come from the notes.
    again = CliRunner().invoke(main, ["gate", cand, "--baseline", s0, "-C", str(store.root)])
    assert again.exit_code == 0, again.output
    assert "PASSED" in again.output and agent_calls(scripted_server) == calls


def test_gate_fails_a_candidate_with_too_many_regressions(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    s0 = store.resolve("HEAD")
    # Better on average (+0.25), but easy1 regressed and max_regressions is 0.
    cand = commit_skill(store, [s0], ["LESSON hard1", "LESSON hard2", "BREAKING easy1"], "mixed")
    out = CliRunner().invoke(main, ["gate", cand, "--baseline", s0, "-C", str(store.root)])
    assert out.exit_code == 1, out.output
    assert "FAILED" in out.output and "regressed: easy1" in out.output
    note = read_eval_note(store, cand)
    assert note.gate is not None and not note.gate.passed and note.gate.regressions == 1
    assert note.gate.delta == 0.25
    # Allowing one regression lets it through; a stricter min_delta does not.
    assert (
        CliRunner()
        .invoke(main, ["gate", cand, "--baseline", s0, "-C", str(store.root), "--max-regressions", "1"])
        .exit_code
        == 0
    )
    strict = CliRunner().invoke(
        main,
        [
            "gate",
            cand,
            "--baseline",
            s0,
            "-C",
            str(store.root),
            "--max-regressions",
            "1",
            "--min-delta",
            "0.3",
            "--json",
        ],
    )
    assert strict.exit_code == 1
    assert "below the minimum" in json.loads(strict.output)["markdown"]


def test_default_baseline_is_the_run_s0_then_the_latest_release(tmp_path, scripted_server):
    from t2s.config import load_config
    from t2s.evaluation.gate import default_baseline
    from t2s.record.runs import RunManifest, RunRecord

    store = make_repo(tmp_path, scripted_server)
    s0 = store.resolve("HEAD")
    RunRecord(store, "r1").create(RunManifest(run="r1", s0=s0, skill_dir="skills/sheet-sums"))
    cand = commit_skill(store, [s0], ["LESSON hard1"], "lesson", [("T2S-Run", "r1")])
    config = load_config(store.root / "t2s.toml")
    assert default_baseline(store, cand, config) == s0
    plain = commit_skill(store, [s0], ["x"], "plain")
    assert default_baseline(store, plain, config) == s0  # merge base with main
    git(store.root, "tag", "v0.9.0", plain)  # a stray lightweight tag is not a release
    store.create_tag("v0.8.0", s0, "hand-made")  # nor an annotated tag on a commit t2s did not release
    assert default_baseline(store, cand, config) == s0
    from t2s.releases.release import release
    from tests.test_release import fake_gate

    fake_gate(store, cand, s0)
    release(store, config, cand)
    assert default_baseline(store, cand, config) == "v0.1.0"
