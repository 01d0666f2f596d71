"""`t2s bisect`: 16 patches, one breaks a held-out task; bisect names it cheaply."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.record.runs import RunManifest, RunRecord
from tests.conftest import git
from tests.test_eval_support import SKILL_DIR, agent_calls, agent_responder, commit_skill, make_repo

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
        sha = commit_skill(
            store,
            [s0],
            lines,
            f"Patch {number}: tip {i}",
            [("T2S-Run", run), ("T2S-Patch", number), ("T2S-Task", "evo1"), ("T2S-Trajectory", f"evo1-{i}")],
        )
        store.create_ref(f"refs/heads/t2s/{run}/patch/{number}", sha)
        patches[i], lines_of[sha] = sha, lines
        files[f"patches/{number}.json"] = {
            "patch": number,
            "task": "evo1",
            "trajectory": f"evo1-{i}",
            "status": "accepted",
            "lessons": [{"id": f"p{number}.1", "text": f"Tip {i}: keep the sums exact.", "support": [f"evo1-{i}"]}],
        }
    record.write(files, "patches")
    level, heads = 1, list(patches.values())
    while len(heads) > 1:
        merged = []
        for g in range(0, len(heads), fan_in):
            group = heads[g : g + fan_in]
            lines = [line for parent in group for line in lines_of[parent]]
            if len(group) == 1:
                merged.append(group[0])
                continue
            name = f"L{level}-{g // fan_in + 1:02d}"
            sha = commit_skill(
                store, group, lines, f"Merge {name}", [("T2S-Run", run), ("T2S-Merge-Level", str(level))]
            )
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
    s0, _cand, patches = build_run(store)
    (repo / "wip.txt").write_text("uncommitted\n")
    before = (
        git(repo, "status", "--porcelain"),
        git(repo, "rev-parse", "HEAD"),
        (repo / ".git" / "index").read_bytes(),
    )
    runner = CliRunner()
    gated = runner.invoke(main, ["gate", "t2s/r1/candidate", "--baseline", s0, "-C", str(repo)])
    assert gated.exit_code == 1 and "regressed: easy1" in gated.output
    calls_after_gate = agent_calls(scripted_server)

    out = runner.invoke(
        main, ["bisect", "--good", s0, "--bad", "t2s/r1/candidate", "--split", "heldout", "-C", str(repo), "--json"]
    )
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
    assert (
        git(repo, "status", "--porcelain"),
        git(repo, "rev-parse", "HEAD"),
        (repo / ".git" / "index").read_bytes(),
    ) == before
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


def _descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _wait_gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` ends within ``timeout`` seconds (a pidfd, no polling)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


@pytest.mark.slow
def test_a_killed_bisect_takes_its_steps_with_it_and_the_next_one_cleans_up(tmp_path, scripted_server):
    """kill -9 of `t2s bisect` once left `git bisect run` calling the model, recording
    verdicts in a bisect nobody owned, and its worktree and refs/bisect/* behind."""
    store = make_repo(tmp_path, scripted_server, heldout=("easy1", "easy2"))
    repo = store.root
    toml = repo / "t2s.toml"  # a step waits for its answer as long as the test holds it
    toml.write_text(toml.read_text().replace("timeout = 20", "timeout = 300"))
    s0, _cand, patches = build_run(store)
    runner = CliRunner()
    assert runner.invoke(main, ["gate", "t2s/r1/candidate", "--baseline", s0, "-C", str(repo)]).exit_code == 1
    notes_before = git(repo, "notes", "--ref", "t2s/eval", "list")

    # From now on the agent's first answer waits until the test lets it go.
    step_calls, let_go = threading.Event(), threading.Event()

    async def held(request):
        step_calls.set()
        await asyncio.get_running_loop().run_in_executor(None, let_go.wait, 120)
        return agent_responder(request)

    scripted_server.reset()
    scripted_server.on(held, role="agent")
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2s", "bisect", "--good", s0, "--bad", "t2s/r1/candidate", "-C", str(repo)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert step_calls.wait(120), "no bisect step reached the model"
        children = _descendants(proc.pid)
        assert len(children) >= 3  # git bisect run, sh, the step's python (and what it started)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # They die at once; the bound only keeps a failing test from hanging.
        still = [pid for pid in children if not _wait_gone(pid, 30)]
        assert still == [], f"orphans still running: {still}"
    finally:
        let_go.set()
        if proc.poll() is None:
            proc.kill()
    calls = len(scripted_server.requests)
    assert git(repo, "notes", "--ref", "t2s/eval", "list") == notes_before  # no verdict was noted
    # What the killed bisect left: its worktree, with a bisect in progress but no verdict in it.
    leftovers = [p for p in (repo / ".git" / "t2s").iterdir() if p.name.startswith("bisect-") and p.is_dir()]
    assert len(leftovers) == 1 and git(repo, "worktree", "list").count("\n") == 2
    (admin,) = (repo / ".git" / "worktrees").iterdir()
    assert (admin / "refs" / "bisect" / "bad").exists()
    assert not any(
        line.startswith(("git bisect good", "git bisect bad"))
        for line in (admin / "BISECT_LOG").read_text().splitlines()
    )

    # The next bisect removes all that, then does its work.
    scripted_server.reset()
    scripted_server.on(agent_responder, role="agent")
    out = runner.invoke(main, ["bisect", "--good", s0, "--bad", "t2s/r1/candidate", "-C", str(repo), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["first_bad"] == patches[BREAKING]
    assert git(repo, "worktree", "list").count("\n") == 1
    assert not (repo / ".git" / "worktrees").exists() or list((repo / ".git" / "worktrees").iterdir()) == []
    assert not any(p.name.startswith("bisect-") for p in (repo / ".git" / "t2s").iterdir())
    assert git(repo, "for-each-ref", "refs/bisect") == "" and not (repo / ".git" / "BISECT_LOG").exists()
    assert calls <= 2  # the held call (and at most one more turn of it) before the kill


def test_clean_stale_bisects_leaves_a_running_one_alone(tmp_path, scripted_server):
    from t2s.views.bisect import clean_stale_bisects

    store = make_repo(tmp_path, scripted_server)
    stale = store.t2s_dir / "bisect-1-dead"
    stale.mkdir()
    store.worktree_add(stale / "wt", "HEAD")
    running = store.t2s_dir / "bisect-2-live"
    running.mkdir()
    with store.exclusive(running.name, "busy"):
        assert clean_stale_bisects(store) == ["bisect-1-dead"]
        assert running.exists() and not stale.exists()
    assert git(store.root, "worktree", "list").count("\n") == 1
    (store.t2s_dir / "unrelated").mkdir()
    assert clean_stale_bisects(store) == ["bisect-2-live"] and (store.t2s_dir / "unrelated").exists()
