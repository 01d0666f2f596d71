"""The run record: an append-only commit chain under refs/t2s/runs/<run>."""

from __future__ import annotations

import subprocess
import sys

import pytest

from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunManifest, RunRecord, list_runs


def test_record_grows_by_commits_and_keeps_every_stage(git_repo):
    store = GitStore.discover(git_repo)
    record = RunRecord(store, "r1")
    record.create(RunManifest(run="r1", s0=store.resolve("HEAD"), skill_dir="skills/x"))
    record.write({"trajectories/t1.json": {"task": "t1"}}, "trajectory t1")
    record.set_stage("rollout", "done", {"passed": 1})
    assert record.read_json("trajectories/t1.json") == {"task": "t1"}
    assert record.manifest().stages["rollout"].status == "done"
    assert record.list("trajectories") == ["trajectories/t1.json"]
    assert list_runs(store) == ["r1"]
    assert len(store.rev_list(record.ref)) == 3
    assert store.trailers(record.ref) == [("T2S-Run", "r1")]
    with pytest.raises(UsageError):
        record.create(RunManifest(run="r1", s0="x", skill_dir="y"))


def test_bad_run_names_and_missing_runs_are_usage_errors(git_repo):
    store = GitStore.discover(git_repo)
    with pytest.raises(UsageError):
        RunRecord(store, "../evil")
    with pytest.raises(UsageError, match="does not exist"):
        RunRecord(store, "nope").manifest()


_WRITER = """
import sys
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunRecord
record = RunRecord(GitStore.discover(sys.argv[1]), "r1")
for i in range(5):
    record.write({f"w{sys.argv[2]}/{i}.json": {"i": i}}, "write")
"""


def test_concurrent_writers_from_several_processes_lose_nothing(git_repo):
    store = GitStore.discover(git_repo)
    RunRecord(store, "r1").create(RunManifest(run="r1", s0=store.resolve("HEAD"), skill_dir="s"))
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(git_repo), str(w)]) for w in range(4)]
    assert [p.wait() for p in procs] == [0] * 4
    record = RunRecord(store, "r1")
    assert sum(len(record.list(f"w{w}")) for w in range(4)) == 20
