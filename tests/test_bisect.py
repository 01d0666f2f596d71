"""`t2s bisect`: 16 patches, one breaks a held-out task; bisect names it cheaply."""

from __future__ import annotations

import json

import pytest

from click.testing import CliRunner

from t2s.cli import main
from t2s.record.runs import RunManifest, RunRecord
from tests.conftest import git
from tests.test_eval_support import SKILL_DIR, agent_calls, commit_skill, make_repo

BREAKING = 11


def build_run(store, n: int = 16, breaking: int = BREAKING, fan_in: int = 4, run: str = "r1") -> tuple[str, str, dict]:
    """S0 (main), ``n`` patch commits on it (patch ``breaking`` adds "BREAKING easy1"),
    octopus merges of ``fan_in`` level by level; returns (s0, candidate, patch commits)."""
    s0 = store.resolve("main")
    record = RunRecord(store, run)
    record.create(RunManifest(run=run, s0=s0, skill_dir=SKILL_DIR))
    patches, lines_of, files = {}, {}, {}
    for i in range(1, n + 1):
        lines = [f"Tip {i}: keep the sums exact."] + (["BREAKING easy1"] if i == breaking else [])
        number = f"{i:04d}"
        sha = commit_skill(store, [s0], lines, f"Patch {number}: tip {i}", [
            ("T2S-Run", run), ("T2S-Patch", number), ("T2S-Task", "evo1"), ("T2S-Trajectory", f"evo1-{i}")])
        store.create_ref(f"refs/heads/t2s/{run}/patch/{number}", sha)
        patches[i], lines_of[sha] = sha, lines
        files[f"patches/{number}.json"] = {"patch": number, "task": "evo1", "trajectory": f"evo1-{i}", "status": "accepted",
                                           "lessons": [{"id": f"p{number}.1", "text": f"Tip {i}: keep the sums exact.", "support": [f"evo1-{i}"]}]}
    record.write(files, "patches")
    level, heads = 1, list(patches.values())
    while len(heads) > 1:
        merged = []
        for g in range(0, len(heads), fan_in):
            group = heads[g:g + fan_in]
            lines = [line for parent in group for line in lines_of[parent]]
            if len(group) == 1:
                merged.append(group[0])
                continue
            name = f"L{level}-{g // fan_in + 1:02d}"
            sha = commit_skill(store, group, lines, f"Merge {name}", [("T2S-Run", run), ("T2S-Merge-Level", str(level))])
            store.create_ref(f"refs/heads/t2s/{run}/merge/{name}", sha)
            lines_of[sha] = lines
            merged.append(sha)
        heads, level = merged, level + 1
    store.create_ref(f"refs/heads/t2s/{run}/candidate", heads[0])
    return s0, heads[0], patches


@pytest.mark.slow
def test_bisect_names_the_breaking_patch_in_at_most_six_evaluations(tmp_path, scripted_server, monkeypatch):
    # Fixed commit ids (a fixed bisect path); two held-out tasks keep each evaluation cheap.
    store = make_repo(tmp_path, scripted_server, monkeypatch=monkeypatch, heldout=("easy1", "easy2"))
    repo = store.root
    s0, cand, patches = build_run(store)
    (repo / "wip.txt").write_text("uncommitted\n")
    before = (git(repo, "status", "--porcelain"), git(repo, "rev-parse", "HEAD"), (repo / ".git" / "index").read_bytes())
    runner = CliRunner()
    gated = runner.invoke(main, ["gate", "t2s/r1/candidate", "--baseline", s0, "-C", str(repo)])
    assert gated.exit_code == 1 and "regressed: easy1" in gated.output
    calls_after_gate = agent_calls(scripted_server)

    out = runner.invoke(main, ["bisect", "--good", s0, "--bad", "t2s/r1/candidate", "--split", "heldout", "-C", str(repo), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["first_bad"] == patches[BREAKING]
    assert data["kind"] == "patch" and data["branches"] == [f"t2s/r1/patch/{BREAKING:04d}"]
    assert data["details"]["task"] == "evo1" and data["details"]["trajectory"] == f"evo1-{BREAKING}"
    assert data["details"]["lessons"] == [f"Tip {BREAKING}: keep the sums exact."]
    assert [e["ran"] for e in data["endpoints"]] == [False, False]  # the gate's results, reused
    assert data["threshold"] == 1.0
    # 21 commits; with these fixed commit ids git bisect takes 4 steps here (the worst
    # case over which patch breaks is 8: 4 sibling merges, then 4 sibling patches).
    assert 1 <= data["evaluations"] <= 6, data["steps"]
    # Each evaluation is 2 tasks x 2 model turns; nothing else called the model.
    assert agent_calls(scripted_server) - calls_after_gate == 4 * data["evaluations"]
    # The user's repository: same files, index, HEAD; no bisect in progress, no worktree left.
    assert (git(repo, "status", "--porcelain"), git(repo, "rev-parse", "HEAD"), (repo / ".git" / "index").read_bytes()) == before
    assert not (repo / ".git" / "BISECT_LOG").exists()
    assert git(repo, "worktree", "list").count("\n") == 1
    assert not any(p.name.startswith("bisect-") for p in (repo / ".git" / "t2s").iterdir())

    # A second bisect is free: every step is in the notes.
    calls = agent_calls(scripted_server)
    again = runner.invoke(main, ["bisect", "--good", s0, "--bad", "t2s/r1/candidate", "-C", str(repo)])
    assert again.exit_code == 0, again.output
    assert f"first bad commit: {patches[BREAKING][:12]}" in again.output and "lesson: Tip 11" in again.output
    assert agent_calls(scripted_server) == calls


def test_bisect_refuses_endpoints_that_do_not_straddle_the_threshold(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    s0 = store.resolve("main")
    fine = commit_skill(store, [s0], ["Tip"], "harmless")
    out = CliRunner().invoke(main, ["bisect", "--good", s0, "--bad", fine, "-C", str(store.root)])
    assert out.exit_code == 2 and "nothing to bisect" in out.output
    assert git(store.root, "worktree", "list").count("\n") == 1
