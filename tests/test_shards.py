"""Shards: the stable partition, ``--shard auto``, sharded evaluations and rollouts as
separate ``t2s`` processes (on one repository, and through a bare remote), collect."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.errors import UsageError
from t2s.evaluation.kept import key_hash
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.notes import read_eval_note
from t2s.record.runs import RunRecord
from t2s.record.shards import Shard, bucket, parse_shard, shard_from_env
from tests.conftest import git
from tests.test_eval_support import HELDOUT, agent_calls, agent_responder, make_repo


# ---------------------------------------------------------------------- the partition
def test_the_partition_is_a_stable_hash_and_covers_every_item_once():
    # sha256("easy1")[:8] as an integer, modulo 4: the same on every machine and Python
    assert bucket("easy1", 4) == int.from_bytes(__import__("hashlib").sha256(b"easy1").digest()[:8], "big") % 4
    assert [bucket(t, 3) for t in ("easy1", "easy2", "hard1", "hard2")] == [
        bucket(t, 3) for t in ("easy1", "easy2", "hard1", "hard2")
    ]
    ids = [f"task{i}" for i in range(200)]
    parts = [Shard(k, 4).select(ids) for k in range(1, 5)]
    assert sorted(i for part in parts for i in part) == sorted(ids)
    assert all(30 < len(part) < 70 for part in parts)  # roughly even
    # pinned: a change of the hash would reshuffle every sharded run in flight
    assert bucket("45300", 8) == 5 and bucket("hard2", 2) == 1


def test_shard_parsing_and_auto_from_each_engine():
    assert parse_shard("2/4") == Shard(2, 4) and parse_shard(None) is None
    for bad in ("0/4", "5/4", "2", "a/b", "2/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)
    assert shard_from_env({"T2S_SHARD": "3/8"}) == Shard(3, 8)  # GitHub Actions matrix
    assert shard_from_env({"JOB_COMPLETION_INDEX": "0", "T2S_SHARD_COUNT": "4"}) == Shard(1, 4)  # Kubernetes
    with pytest.raises(UsageError, match="T2S_SHARD_COUNT"):
        shard_from_env({"JOB_COMPLETION_INDEX": "0"})
    slurm = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "5"}
    assert shard_from_env(slurm) == Shard(3, 3)  # --array=5-7
    stepped = {"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "0"}
    assert shard_from_env({**stepped, "SLURM_ARRAY_TASK_STEP": "2"}) == Shard(3, 3)  # --array=0-4:2
    assert parse_shard("auto", {"T2S_SHARD": "1/2"}) == Shard(1, 2)
    with pytest.raises(UsageError, match="no shard in the environment"):
        shard_from_env({})


# ---------------------------------------------------------------------- evaluations
def t2s(*args: str, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """A real ``t2s`` process."""
    proc = subprocess.run(
        [sys.executable, "-m", "t2s", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def comparable(record) -> dict:
    """An eval record without what differs between any two runs of it (times)."""
    return record.model_dump(exclude={"created_at", "duration_s"})


def kept_trajectories(store: GitStore, ref: str | None) -> list[str]:
    """The trajectory files an eval note's ``trajectories`` ref keeps."""
    head = store.rev_parse(ref) if ref else None
    return sorted(store.read_files(head, "trajectories")) if head else []


def test_sharded_eval_in_separate_processes_collects_into_the_unsharded_note(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    t2s("eval", "HEAD", "--quiet", cwd=store.root)
    unsharded = read_eval_note(store, "HEAD").evals[0]
    kept = kept_trajectories(store, unsharded.trajectories)
    assert len(kept) >= len(HELDOUT)  # every held-out task's trajectories
    git(store.root, "update-ref", "-d", refs.notes_ref(refs.EVAL_NOTES))  # as if never evaluated
    git(store.root, "update-ref", "-d", unsharded.trajectories)
    calls = agent_calls(scripted_server)
    procs = [
        subprocess.Popen([sys.executable, "-m", "t2s", "eval", "HEAD", "--shard", f"{k}/3", "--json"], cwd=store.root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k in (1, 2, 3)
    ]  # fmt: skip
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert agent_calls(scripted_server) - calls == 8  # every task once, across the shards
    parts = [json.loads(out)["record"] for out, _ in outs]
    assert sorted(t["task"] for part in parts for t in part["tasks"]) == sorted(HELDOUT)
    assert read_eval_note(store, "HEAD") is None  # shards write only their own notes
    assert sorted(store.refs(refs.NOTES)) == [refs.eval_shard_notes(f"{k}-of-3") for k in (1, 2, 3)]

    collected = json.loads(t2s("collect", "--eval", "HEAD", "--json", cwd=store.root).stdout)
    assert collected["evaluation"]["written"] and collected["evaluation"]["shards"] == 3
    joined = read_eval_note(store, "HEAD")
    assert len(joined.evals) == 1 and comparable(joined.evals[0]) == comparable(unsharded)
    assert kept_trajectories(store, joined.evals[0].trajectories) == kept  # the same trajectories, kept
    notes = store.rev_parse(refs.notes_ref(refs.EVAL_NOTES))
    kept_head = store.rev_parse(joined.evals[0].trajectories)
    again = json.loads(t2s("collect", "--eval", "HEAD", "--json", cwd=store.root).stdout)
    assert not again["evaluation"]["written"]
    assert store.rev_parse(refs.notes_ref(refs.EVAL_NOTES)) == notes  # collecting twice: a no-op
    assert store.rev_parse(joined.evals[0].trajectories) == kept_head
    # the gate's evaluation of HEAD now comes from the note: no model call
    before = agent_calls(scripted_server)
    out = json.loads(t2s("eval", "HEAD", "--json", cwd=store.root).stdout)
    assert out["cached"] and agent_calls(scripted_server) == before


def clones_of(tmp_path: Path, origin: GitStore, names: tuple[str, ...]) -> list[Path]:
    """A bare remote cloned from ``origin``, and one clone of it per name."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(origin.root), str(bare))
    clones = []
    for name in names:
        git(tmp_path, "clone", "-q", str(bare), str(tmp_path / name))
        git(tmp_path / name, "config", "user.email", "t@example.com")
        git(tmp_path / name, "config", "user.name", "T")
        clones.append(tmp_path / name)
    return clones


def test_sharded_eval_through_a_bare_remote_keeps_every_trajectory(tmp_path, scripted_server):
    origin = make_repo(tmp_path / "origin", scripted_server)
    a, b, collector = clones_of(tmp_path, origin, ("a", "b", "c"))
    for k, clone in ((1, a), (2, b)):
        t2s("eval", "HEAD", "--shard", f"{k}/2", "--quiet", cwd=clone)
        t2s("push", "origin", cwd=clone)  # its notes and the trajectories they keep
    git(collector, "fetch", "-q", "origin", "refs/notes/*:refs/notes/*")
    out = t2s("collect", "--eval", "HEAD", cwd=collector, check=False)
    assert out.returncode == 1 and "trajectories of shard(s) 1/2, 2/2" in out.stderr, out.stderr
    assert "refs/t2s/eval-trajectories/*" in out.stderr and "Traceback" not in out.stderr
    store = GitStore.discover(collector)
    assert read_eval_note(store, "HEAD") is None  # nothing partial is noted
    git(collector, "fetch", "-q", "origin", "refs/t2s/*:refs/t2s/*")
    t2s("collect", "--eval", "HEAD", cwd=collector)
    joined = read_eval_note(store, "HEAD").evals[0]
    names = kept_trajectories(store, joined.trajectories)
    assert len(names) == joined.total  # every task run's trajectory, from both shards
    # where an unsharded evaluation keeps them
    assert joined.trajectories == refs.eval_trajectories(store.resolve("HEAD"), key_hash(joined.cache_key()))


def test_a_missing_shard_is_named_and_the_gate_refuses(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    s0 = store.resolve("HEAD")
    t2s("eval", "HEAD", "--shard", "1/2", "--quiet", cwd=store.root)
    out = t2s("collect", "--eval", "HEAD", cwd=store.root, check=False)
    assert out.returncode == 1
    assert "shard(s) 2/2 of 2 are missing" in out.stderr and "--shard 2/2" in out.stderr
    assert "Traceback" not in out.stderr
    gate = t2s("gate", "HEAD", "--baseline", s0, cwd=store.root, check=False)
    assert gate.returncode == 1 and "2/2" in gate.stderr and "missing" in gate.stderr
    assert read_eval_note(store, "HEAD") is None  # nothing judged, nothing noted
    # the missing shard, run alone, completes it; then the gate runs on the whole evaluation
    t2s("eval", "HEAD", "--shard", "2/2", "--quiet", cwd=store.root)
    calls = agent_calls(scripted_server)
    gate = t2s("gate", "HEAD", "--baseline", s0, "--json", cwd=store.root, check=False)
    assert json.loads(gate.stdout)["gate"]["candidate_score"] == 0.5, gate.stderr
    assert agent_calls(scripted_server) == calls  # both sides came from the (collected) note


def test_collect_refuses_shards_run_with_different_agent_settings(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    t2s("eval", "HEAD", "--shard", "1/2", "--quiet", cwd=store.root)
    t2s("eval", "HEAD", "--shard", "2/2", "--quiet", cwd=store.root, env={"T2S_AGENT_TEMPERATURE": "0.7"})
    out = t2s("collect", "--eval", "HEAD", cwd=store.root, check=False)
    assert out.returncode == 1 and "disagree on agent settings" in out.stderr, out.stderr
    assert "2-of-2" in out.stderr or "1-of-2" in out.stderr  # the odd shard is named
    assert read_eval_note(store, "HEAD") is None
    gate = t2s("gate", "HEAD", "--baseline", "HEAD", cwd=store.root, check=False)
    assert gate.returncode == 1 and "disagree" in gate.stderr


# ---------------------------------------------------------------------- rollouts
TASKS = ["--task", "easy1", "--task", "easy2", "--task", "hard1", "--task", "hard2"]


def trajectories(store: GitStore, ref: str) -> dict[str, str]:
    """trajectory id -> verdict, in the record ``ref``."""
    head = store.rev_parse(ref)
    files = store.read_files(head, "trajectories") if head else {}
    return {json.loads(data)["id"]: json.loads(data)["verdict"] for data in files.values()}


def without_wall(estimate: dict) -> dict:
    """A kept estimate without its wall times."""
    rows = [{k: v for k, v in row.items() if k != "wall_s"} for row in estimate["rows"]]
    return {**estimate, "rows": rows, "totals": {k: v for k, v in estimate["totals"].items() if k != "wall_s"}}


def without_latency(ledger: dict) -> dict:
    """A kept ledger without the time its calls took."""

    def rows(items: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "latency_s"} for row in items]

    totals = {k: v for k, v in ledger["totals"].items() if k != "latency_s"}
    return {**ledger, **{key: rows(ledger[key]) for key in ("rows", "by_role", "by_phase")}, "totals": totals}


def test_sharded_rollout_through_a_bare_remote_collects_into_the_unsharded_record(tmp_path, scripted_server):
    plain = make_repo(tmp_path / "plain", scripted_server)
    t2s("rollout", "--run", "r1", *TASKS, "--json", cwd=plain.root)
    unsharded = RunRecord(plain, "r1")

    origin = make_repo(tmp_path / "origin", scripted_server)
    clones = clones_of(tmp_path, origin, ("a", "b", "c"))
    for k, clone in ((1, clones[0]), (2, clones[1])):
        t2s("rollout", "--run", "r1", *TASKS, "--shard", f"{k}/2", "--json", cwd=clone)
        t2s("push", "origin", "--run", "r1", cwd=clone)
    collector = clones[2]
    git(collector, "fetch", "-q", "origin", "refs/t2s/*:refs/t2s/*")
    store = GitStore.discover(collector)
    assert sorted(store.refs(refs.shard_records("r1"))) == [
        refs.shard_record("r1", "rollout", f"{k}-of-2") for k in (1, 2)
    ]
    out = json.loads(t2s("collect", "--run", "r1", "--json", cwd=collector).stdout)
    assert out["stages"][0]["collected"] and out["stages"][0]["shards"] == 2
    record = RunRecord(store, "r1")
    assert trajectories(store, record.ref) == trajectories(plain, unsharded.ref)
    assert len(trajectories(store, record.ref)) == 4
    manifest, plain_manifest = record.manifest(), unsharded.manifest()
    assert (manifest.suite, manifest.split, manifest.options) == (
        plain_manifest.suite,
        plain_manifest.split,
        plain_manifest.options,
    )
    summary = manifest.stages["rollout"].summary
    for key in ("total", "passed", "failed", "errored", "ran"):
        assert summary[key] == plain_manifest.stages["rollout"].summary[key], key
    assert manifest.stages["rollout"].status == "done"
    # the same files as the unsharded record (ledger and manifest hold times and counts)
    paths = {e.path for e in store.list_tree(record.ref)}
    assert paths == {e.path for e in plain.list_tree(unsharded.ref)}
    # the same ledger: the shards' spending added up, row by row (but for time)
    assert without_latency(record.read_json("ledger/rollout.json")) == without_latency(
        unsharded.read_json("ledger/rollout.json")
    )
    # the same estimate (the shards' parts added up), but for the wall time: shards run
    # side by side, so theirs is the longest shard's, as the manifest's wall time is
    assert without_wall(record.read_json("estimates/rollout.json")) == without_wall(
        unsharded.read_json("estimates/rollout.json")
    )
    head = record.head()
    again = json.loads(t2s("collect", "--run", "r1", "--json", cwd=collector).stdout)
    assert not again["stages"][0]["collected"] and record.head() == head  # collecting twice: a no-op


def test_a_shard_killed_with_kill_9_resumes_alone_and_duplicates_nothing(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    ids = ["easy1", "easy2", "hard1", "hard2"]
    k = next(k for k in (1, 2) if len(Shard(k, 2).select(ids)) >= 2)
    mine = Shard(k, 2).select(ids)
    last = mine[-1]
    reached, release = threading.Event(), threading.Event()

    async def hold_last(req):
        user = next(m["content"] for m in req.messages if m["role"] == "user")
        if f"1_{last}_init" in user and not release.is_set():
            reached.set()
            await asyncio.to_thread(release.wait, 60)
        return agent_responder(req)

    scripted_server.reset()  # the rule make_repo set first would answer before this one
    scripted_server.on(hold_last, role="agent")
    args = [sys.executable, "-m", "t2s", "rollout", "--run", "r1", *TASKS, "--shard", f"{k}/2", "--concurrency", "1"]
    proc = subprocess.Popen(args, cwd=store.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reached.wait(120), "the shard never reached its last task"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    release.set()
    part = refs.shard_record("r1", "rollout", f"{k}-of-2")
    done = trajectories(store, part)
    assert set(done) == set(mine[:-1])  # the finished tasks were recorded, the cut one was not
    assert store.rev_parse(refs.run_record("r1")) is None  # a shard writes only its own ref
    out = t2s("collect", "--run", "r1", cwd=store.root, check=False)
    assert out.returncode == 1 and f"{3 - k}/2" in out.stderr  # the other shard is missing

    before = {
        t: len([r for r in scripted_server.requests_for("agent") if f"1_{t}_init" in str(r.messages)]) for t in ids
    }
    summary = json.loads(t2s("rollout", "--run", "r1", *TASKS, "--shard", f"{k}/2", "--json", cwd=store.root).stdout)
    assert summary["ran"] == 1 and summary["skipped"] == len(mine) - 1
    after = {
        t: len([r for r in scripted_server.requests_for("agent") if f"1_{t}_init" in str(r.messages)]) for t in ids
    }
    assert [t for t in ids if after[t] != before[t]] == [last]  # only the cut task ran again
    t2s("rollout", "--run", "r1", *TASKS, "--shard", f"{3 - k}/2", cwd=store.root)
    t2s("collect", "--run", "r1", cwd=store.root)
    record = RunRecord(store, "r1")
    assert sorted(trajectories(store, record.ref)) == sorted(ids)
    commits = git(store.root, "log", "--format=%s", part)
    assert commits.count(f"rollout {last} ") == 1  # recorded once


def test_a_dry_run_of_a_shard_estimates_only_its_tasks(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    ids = ["easy1", "easy2", "hard1", "hard2"]

    def items(*args: str) -> int:
        rows = json.loads(t2s(*args, "--dry-run", "--json", cwd=store.root).stdout)["rows"]
        return sum(row["items"] for row in rows)

    assert items("rollout", "--run", "r1", *TASKS) == 4
    assert [items("rollout", "--run", "r1", *TASKS, "--shard", f"{k}/2") for k in (1, 2)] == [
        len(Shard(k, 2).select(ids)) for k in (1, 2)
    ]
    # a shard that ran counts what its own part of the record holds as done
    k = next(k for k in (1, 2) if Shard(k, 2).select(ids))
    t2s("rollout", "--run", "r1", *TASKS, "--shard", f"{k}/2", cwd=store.root)
    assert items("rollout", "--run", "r1", *TASKS, "--shard", f"{k}/2") == 0
    assert items("rollout", "--run", "r1", *TASKS, "--shard", f"{3 - k}/2") == len(Shard(3 - k, 2).select(ids))

    seeds = items("eval", "HEAD") // len(HELDOUT)
    assert [items("eval", "HEAD", "--shard", f"{k}/2") for k in (1, 2)] == [
        len(Shard(k, 2).select(HELDOUT)) * seeds for k in (1, 2)
    ]
    t2s("eval", "HEAD", "--shard", f"{k}/2", "--quiet", cwd=store.root)
    assert items("eval", "HEAD", "--shard", f"{k}/2") == 0  # this shard's note has it: costs nothing
    assert items("eval", "HEAD") == len(HELDOUT) * seeds  # the whole evaluation is not noted yet


def test_cli_collect_needs_something_to_collect(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    out = CliRunner().invoke(main, ["collect", "-C", str(store.root)])
    assert out.exit_code == 2 and "collect what?" in out.output
    out = CliRunner().invoke(main, ["collect", "--run", "nope", "-C", str(store.root)])
    assert out.exit_code == 2 and "no shards" in out.output


# ---------------------------------------------------------------------- analyses
def test_sharded_analysis_numbers_patches_as_one_unsharded_analysis_does(tmp_path, scripted_server):
    from t2s.testing.simulated import analyst_responder
    from tests.test_analysts_support import (
        add_trajectory,
        load_config_and_suite,
        make_repo as make_analyst_repo,
        start_run,
    )
    from tests.test_analyze_cli import model_flags

    scripted_server.on(analyst_responder, role="analyst")
    records = {}
    for name in ("plain", "sharded"):
        folder = tmp_path / name[:5]  # paths of one length: the prompts that name them too
        store = make_analyst_repo(folder)
        _, suite = load_config_and_suite(store)
        record = start_run(store)
        for task, wrong, traj in (("txt-1", True, "a-fail"), ("txt-1", False, "b-pass"), ("mul-2", True, "c-fail")):
            add_trajectory(record, suite, task, wrong=wrong, tmp=folder, traj_id=traj)
        records[name] = record
    runner = CliRunner()
    plain = records["plain"]
    out = runner.invoke(main, ["analyze", "-C", str(plain.store.root), "--run", "r1", *model_flags(scripted_server)])
    assert out.exit_code == 0, out.output

    sharded = records["sharded"]
    for k in (2, 1):  # in any order
        out = runner.invoke(
            main,
            [
                "analyze",
                "-C",
                str(sharded.store.root),
                "--run",
                "r1",
                "--shard",
                f"{k}/2",
                "--json",
                *model_flags(scripted_server),
            ],
        )
        assert out.exit_code == 0, out.output
    assert not sharded.read_json("patches/0001.json")  # the shards wrote only their own refs
    out = runner.invoke(main, ["collect", "-C", str(sharded.store.root), "--run", "r1", "--json"])
    assert out.exit_code == 0, out.output

    def numbering(record) -> dict[str, str]:
        return {
            json.loads(data)["trajectory"]: json.loads(data)["patch"]
            for data in record.store.read_files(record.head(), "patches").values()
        }

    assert numbering(sharded) == numbering(plain) == {"a-fail": "0001", "b-pass": "0002", "c-fail": "0003"}
    branches = sorted(r.rsplit("/", 1)[-1] for r in sharded.store.refs(refs.run_branches("r1")))
    assert branches == sorted(r.rsplit("/", 1)[-1] for r in plain.store.refs(refs.run_branches("r1")))
    summary = sharded.manifest().stages["analyze"].summary
    assert (summary["analyzed"], summary["accepted"]) == (3, 3)
    # the same run record content (but for times)
    assert {e.path for e in sharded.store.list_tree(sharded.head())} == {
        e.path for e in plain.store.list_tree(plain.head())
    }
    for path, strip in (("ledger/analyze.json", without_latency), ("estimates/analyze.json", without_wall)):
        assert strip(sharded.read_json(path)) == strip(plain.read_json(path)), path


def analysis_repos(tmp_path: Path, legacy: bool = False) -> dict[str, RunRecord]:
    """Two identical runs ("plain", "sharded") holding three trajectories to analyze;
    ``legacy``: with a "rejected" patch record of an older t2s whose analyst call failed."""
    from t2s.record.lessons import PatchRecord
    from tests.test_analysts_support import (
        add_trajectory,
        load_config_and_suite,
        make_repo as make_analyst_repo,
        start_run,
    )

    records = {}
    for name in ("plain", "sharded"):
        folder = tmp_path / name[:5]  # paths of one length: the prompts that name them too
        store = make_analyst_repo(folder)
        _, suite = load_config_and_suite(store)
        record = start_run(store)
        for task, wrong, traj in (("txt-1", True, "a-fail"), ("txt-1", False, "b-pass"), ("mul-2", True, "c-fail")):
            add_trajectory(record, suite, task, wrong=wrong, tmp=folder, traj_id=traj)
        if legacy:
            old = PatchRecord(
                patch="0001",
                trajectory="a-fail",
                task="txt-1",
                outcome="failed",
                analyst="single-call",
                status="rejected",
                reason="analyst call failed: analyst model call to http://127.0.0.1:9/v1 "
                "(analyst-model) failed after 6 attempts: connection failed: refused",
            )
            record.write(
                {old.path: old, "analyses/a-fail.json": {"status": "rejected", "reject_kind": "analyst error"}},
                "an older t2s",
            )
        records[name] = record
    return records


def test_a_dry_run_of_an_analysis_shard_estimates_only_its_trajectories(tmp_path, scripted_server):
    record = analysis_repos(tmp_path)["sharded"]
    ids = ["a-fail", "b-pass", "c-fail"]

    def items(*args: str) -> int:
        out = t2s("analyze", "--run", "r1", "--mode", "combined", *args, "--dry-run", "--json", cwd=record.store.root)
        return sum(row["items"] for row in json.loads(out.stdout)["rows"])

    assert items() == 3
    assert [items("--shard", f"{k}/2") for k in (1, 2)] == [len(Shard(k, 2).select(ids)) for k in (1, 2)]


def test_collect_carries_over_what_a_shard_deleted(tmp_path, scripted_server):
    """An analysis that errors again removes an older t2s's "rejected" record of the same
    error (unsharded and in a shard alike): the collected record must lose it too."""
    from t2s.testing.simulated import analyst_responder
    from tests.test_analyze_cli import model_flags

    scripted_server.on(analyst_responder, role="analyst")
    records = analysis_repos(tmp_path, legacy=True)
    scripted_server.fault("500", times=None, role="analyst")
    flags = ["--mode", "error", "--analyst", "single-call", *model_flags(scripted_server)]
    plain, sharded = records["plain"], records["sharded"]
    out = t2s("analyze", "--run", "r1", *flags, cwd=plain.store.root, check=False)
    assert out.returncode == 3, out.stdout + out.stderr  # every analysis errored
    assert plain.read("patches/0001.json") is None
    for k in (1, 2):
        t2s("analyze", "--run", "r1", "--shard", f"{k}/2", *flags, cwd=sharded.store.root, check=False)
    assert sharded.read("patches/0001.json") is not None  # the shards wrote only their own refs
    t2s("collect", "--run", "r1", cwd=sharded.store.root)
    assert sharded.read("patches/0001.json") is None
    assert {e.path for e in sharded.store.list_tree(sharded.head())} == {
        e.path for e in plain.store.list_tree(plain.head())
    }
    assert sharded.read_json("analyses/a-fail.json")["status"] == "errored"
    head = sharded.head()
    t2s("collect", "--run", "r1", cwd=sharded.store.root)
    assert sharded.head() == head  # collecting twice: a no-op


def test_collect_adds_the_shards_estimates_and_ledgers_to_what_the_run_held_where_they_forked(tmp_path):
    """An analysis begun unsharded (its estimate and ledger kept) and finished in two
    shards: each shard's part of the run starts from the run's; collect counts it once."""
    from t2s.estimates.model import Estimate, RoleEstimate
    from t2s.estimates.recorded import record_estimate
    from t2s.llm.ledger import Ledger, LedgerRow, accumulate
    from t2s.record.runs import RunManifest
    from t2s.record.shards import collect_run

    git(tmp_path, "init", "-q", "repo")
    git(tmp_path / "repo", "commit", "-q", "--allow-empty", "-m", "S0")
    store = GitStore.discover(tmp_path / "repo")
    record = RunRecord(store, "r1")
    record.create(RunManifest(run="r1", s0=store.resolve("HEAD"), skill_dir="skill"))

    def analysts(items: int, wall: float) -> Estimate:
        row = RoleEstimate(stage="analyze", role="analyst", model="m", items=items, calls=items, usd=0.001 * items)
        return Estimate(rows=[row.model_copy(update={"input_tokens": 100 * items, "wall_s": wall})])

    def spent(record: RunRecord, calls: int) -> None:
        ledger = Ledger()
        ledger.rows[("analyst", "analyze")] = LedgerRow("analyst", "analyze", calls=calls, prompt_tokens=10 * calls)
        record.write({"ledger/analyze.json": accumulate(record.read_json("ledger/analyze.json"), ledger)}, "spent")

    record_estimate(store, "r1", "analyze", analysts(1, 10.0))  # the unsharded invocation
    spent(record, 1)
    for k, items in ((1, 2), (2, 3)):
        part = record.shard_part("analyze", f"{k}-of-2")
        record_estimate(store, "r1", "analyze", analysts(items, 5.0 * items), shard=f"{k}-of-2")
        spent(part, items)
        part.set_stage("analyze", "done", {"analyzed": items})
    collect_run(store, "r1", "analyze")
    ledger = record.read_json("ledger/analyze.json")
    assert [(r["role"], r["calls"], r["prompt_tokens"]) for r in ledger["rows"]] == [("analyst", 6, 60)]
    row = record.read_json("estimates/analyze.json")["rows"][0]
    assert (row["items"], row["calls"], row["input_tokens"]) == (6, 6, 600)  # 1 + 2 + 3
    assert row["usd"] == 0.006 and row["wall_s"] == 25.0  # 10 s, then the longer shard's 15 s
    head = record.head()
    assert not collect_run(store, "r1", "analyze").collected and record.head() == head
