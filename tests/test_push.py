"""`t2s push`: branches, run record, notes and tags reach a bare remote."""

from __future__ import annotations

import json

from click.testing import CliRunner

from t2s.cli import main
from t2s.record.runs import RunManifest, RunRecord
from tests.conftest import git
from tests.test_eval_support import commit_skill, make_repo
from tests.test_release import fake_gate


def test_push_carries_branches_run_record_notes_and_tags(tmp_path, scripted_server):
    from t2s.config import load_config
    from t2s.releases.release import release

    store = make_repo(tmp_path, scripted_server)
    git(store.root, "checkout", "-q", "--detach")
    s0 = store.resolve("main")
    RunRecord(store, "r1").create(RunManifest(run="r1", s0=s0, skill_dir="skills/sheet-sums"))
    RunRecord(store, "r2").create(RunManifest(run="r2", s0=s0, skill_dir="skills/sheet-sums"))
    p1 = commit_skill(store, [s0], ["LESSON hard1"], "patch 1", [("T2S-Run", "r1"), ("T2S-Patch", "0001")])
    p2 = commit_skill(store, [s0], ["LESSON hard2"], "patch 2", [("T2S-Run", "r1"), ("T2S-Patch", "0002")])
    merge = commit_skill(
        store, [p1, p2], ["LESSON hard1", "LESSON hard2"], "merge", [("T2S-Run", "r1"), ("T2S-Merge-Level", "1")]
    )
    for ref, sha in (("patch/0001", p1), ("patch/0002", p2), ("merge/L1-01", merge), ("candidate", merge)):
        store.create_ref(f"refs/heads/t2s/r1/{ref}", sha)
    store.create_ref("refs/heads/t2s/r2/patch/0001", p1)
    fake_gate(store, merge, s0)
    release(store, load_config(store.root / "t2s.toml"), "t2s/r1/candidate")
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))

    out = CliRunner().invoke(main, ["push", str(remote), "--run", "r1", "-C", str(store.root), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["refspecs"] == [
        "refs/heads/t2s/r1/*:refs/heads/t2s/r1/*",
        "refs/t2s/runs/r1:refs/t2s/runs/r1",
        "refs/notes/t2s/*:refs/notes/t2s/*",
        "refs/tags/v0.1.0:refs/tags/v0.1.0",
    ]
    remote_refs = dict(
        reversed(line.split()) for line in git(remote, "for-each-ref", "--format=%(objectname) %(refname)").splitlines()
    )
    for ref in (
        "refs/heads/t2s/r1/patch/0001",
        "refs/heads/t2s/r1/patch/0002",
        "refs/heads/t2s/r1/merge/L1-01",
        "refs/heads/t2s/r1/candidate",
        "refs/t2s/runs/r1",
        "refs/notes/t2s/eval",
        "refs/tags/v0.1.0",
    ):
        assert remote_refs.get(ref) == store.rev_parse(ref), ref
    assert "refs/heads/t2s/r2/patch/0001" not in remote_refs and "refs/t2s/runs/r2" not in remote_refs
    assert "refs/heads/main" not in remote_refs
    assert {u["ref"] for u in data["updated"]} >= {"refs/tags/v0.1.0", "refs/notes/t2s/eval"}
    assert json.loads(git(remote, "notes", "--ref", "t2s/eval", "show", "v0.1.0^{commit}"))["gate"]["passed"] is True

    # Everything, and the release branch; a second push reports "up to date".
    everything = CliRunner().invoke(main, ["push", str(remote), "--release-branch", "main", "-C", str(store.root)])
    assert everything.exit_code == 0, everything.output
    assert git(remote, "rev-parse", "refs/t2s/runs/r2").strip() == store.rev_parse("refs/t2s/runs/r2")
    assert git(remote, "rev-parse", "main").strip() == store.resolve("main")
    assert "refs/tags/v0.1.0: up to date" in everything.output
    missing = CliRunner().invoke(main, ["push", str(remote), "--run", "nope", "-C", str(store.root)])
    assert missing.exit_code == 2 and "does not exist" in missing.output
