"""`t2s release`: refusal without a gate, the release merge, the tag, CAS on main."""

from __future__ import annotations

import json

from click.testing import CliRunner

from t2s.cli import main
from t2s.hooks import pre_push
from t2s.record.notes import EvalNote, EvalRecord, GateRecord, read_eval_note, write_eval_note
from t2s.record.runs import RunManifest, RunRecord
from tests.conftest import git
from tests.test_eval_support import SKILL_DIR, commit_skill, make_repo


def fake_gate(store, cand: str, base: str, passed: bool = True) -> None:
    """A gate note as `t2s gate` writes it (for tests that are not about evaluation)."""
    record = EvalRecord(
        suite="sums",
        split="heldout",
        suite_hash="h",
        skill_tree=store.subtree(cand, SKILL_DIR),
        score=1.0,
        passed=4,
        total=4,
    )
    gate = GateRecord(
        passed=passed,
        candidate=cand,
        baseline=base,
        split="heldout",
        suite_hash="h",
        candidate_score=1.0,
        baseline_score=0.5,
        delta=0.5,
        regressions=0,
        min_delta=0.0,
        max_regressions=0,
        paired={"both": 2, "only_baseline": 0, "only_candidate": 2, "neither": 0},
        p_value=0.5,
    )
    write_eval_note(store, cand, EvalNote(evals=[record], gate=gate))


def _user_view(repo):
    return (
        git(repo, "status", "--porcelain", "--untracked-files=all"),
        git(repo, "rev-parse", "HEAD"),
        (repo / ".git" / "index").read_bytes(),
    )


def test_release_refuses_without_a_gate_then_tags_and_moves_main(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    repo = store.root
    s0 = store.resolve("main")
    cand = commit_skill(
        store, [s0], ["LESSON hard1", "LESSON hard2"], "Add lessons for the hard sums", [("T2S-Support", "2")]
    )
    store.create_ref("refs/heads/t2s/r1/candidate", cand)
    git(repo, "checkout", "-q", "--detach")  # the user works elsewhere; main is not checked out
    (repo / "scratch.txt").write_text("user's own file\n")
    before = _user_view(repo)
    runner = CliRunner()

    refused = runner.invoke(main, ["release", "t2s/r1/candidate", "-C", str(repo)])
    assert refused.exit_code == 1 and "no gate verdict" in refused.output and "t2s gate" in refused.output
    assert store.resolve("main") == s0 and store.tags() == []

    gated = runner.invoke(main, ["gate", "t2s/r1/candidate", "--baseline", s0, "-C", str(repo)])
    assert gated.exit_code == 0, gated.output
    out = runner.invoke(main, ["release", "t2s/r1/candidate", "-C", str(repo), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["version"] == "v0.1.0" and data["branch_moved"] is True
    rel = store.resolve("main")
    assert rel == data["commit"] and store.parents(rel) == [s0, cand]
    assert store.subtree(rel, SKILL_DIR) == store.subtree(cand, SKILL_DIR)
    assert store.read_blob(rel, "t2s.toml") == store.read_blob(s0, "t2s.toml")
    assert dict(store.trailers(rel))["T2S-Release"] == "v0.1.0"
    assert dict(store.trailers(rel))["T2S-Candidate"] == cand
    assert store.resolve("v0.1.0") == rel
    assert git(repo, "cat-file", "-t", "v0.1.0").strip() == "tag"
    message = store.tag_message("v0.1.0")
    assert "| score | 50.0% | 100.0% |" in message
    assert "Add lessons for the hard sums (support 2)" in message
    note = read_eval_note(store, rel)
    assert note.has_passing_gate()
    assert pre_push(store, [f"refs/tags/v0.1.0 {store.rev_parse('refs/tags/v0.1.0')} refs/tags/v0.1.0 {'0' * 40}"]) == 0
    assert _user_view(repo) == before

    again = runner.invoke(main, ["release", "t2s/r1/candidate", "-C", str(repo)])
    assert again.exit_code == 2 and "already part of main" in again.output


def test_second_release_has_the_previous_release_as_first_parent(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    git(store.root, "checkout", "-q", "--detach")
    s0 = store.resolve("main")
    c1 = commit_skill(store, [s0], ["LESSON hard1"], "one")
    fake_gate(store, c1, s0)
    from t2s.config import load_config
    from t2s.releases.release import release

    config = load_config(store.root / "t2s.toml")
    r1 = release(store, config, c1)
    c2 = commit_skill(store, [r1.commit], ["LESSON hard1", "LESSON hard2"], "two")
    fake_gate(store, c2, r1.commit)
    r2 = release(store, config, c2, bump="patch")
    assert (r1.version, r2.version) == ("v0.1.0", "v0.1.1")
    assert store.parents(r2.commit) == [r1.commit, c2]
    assert git(store.root, "rev-list", "--first-parent", "main").split()[:3] == [r2.commit, r1.commit, s0]
    c3 = commit_skill(store, [r2.commit], ["LESSON hard2"], "three")
    fake_gate(store, c3, r2.commit, passed=False)
    out = CliRunner().invoke(main, ["release", c3, "-C", str(store.root)])
    assert out.exit_code == 1 and "its gate failed" in out.output
    fake_gate(store, c3, r2.commit)
    assert release(store, config, c3, bump="major").version == "v1.0.0"


def test_release_leaves_a_checked_out_main_and_its_files_alone(tmp_path, scripted_server):
    store = make_repo(tmp_path, scripted_server)
    repo = store.root
    s0 = store.resolve("main")
    cand = commit_skill(store, [s0], ["LESSON hard1"], "one")
    fake_gate(store, cand, s0)
    before = _user_view(repo)
    out = CliRunner().invoke(main, ["release", cand, "-C", str(repo)])
    assert out.exit_code == 0, out.output
    assert "git merge --ff-only v0.1.0" in out.output
    assert store.resolve("main") == s0 and _user_view(repo) == before
    # A later release refuses until main has the previous one.
    c2 = commit_skill(store, [store.resolve("v0.1.0")], ["LESSON hard2"], "two")
    fake_gate(store, c2, store.resolve("v0.1.0"))
    blocked = CliRunner().invoke(main, ["release", c2, "-C", str(repo)])
    assert blocked.exit_code == 2 and "does not contain the latest release v0.1.0" in blocked.output
    git(repo, "merge", "-q", "--ff-only", "v0.1.0")
    assert git(repo, "status", "--porcelain") == ""
    assert "LESSON hard1" in (repo / SKILL_DIR / "SKILL.md").read_text()


def test_changelog_uses_the_runs_lessons_and_their_support(tmp_path, scripted_server):
    from t2s.config import load_config
    from t2s.releases.release import release

    store = make_repo(tmp_path, scripted_server)
    git(store.root, "checkout", "-q", "--detach")
    s0 = store.resolve("main")
    record = RunRecord(store, "r7")
    record.create(RunManifest(run="r7", s0=s0, skill_dir=SKILL_DIR))
    cand = commit_skill(store, [s0], ["LESSON hard1"], "merge", [("T2S-Run", "r7"), ("T2S-Merge-Level", "1")])
    store.create_ref("refs/heads/t2s/r7/merge/L1-01", cand)
    report = {
        "lessons": [
            {
                "id": "L1-01.1",
                "text": "Sum with a generator, not a formula.",
                "support": ["t1", "t2", "t3"],
                "placement": "skill",
            },
            {"id": "L1-01.2", "text": "Rare: check merged cells.", "support": ["t4"], "placement": "reference"},
        ]
    }
    record.write({"merges/L1-01.json": report}, "merge report")
    fake_gate(store, cand, s0)
    result = release(store, load_config(store.root / "t2s.toml"), cand)
    message = store.tag_message(result.version)
    assert "- Sum with a generator, not a formula. (support 3)" in message
    assert "- Rare: check merged cells. (support 1, in references/)" in message
    assert dict(store.trailers(result.commit))["T2S-Run"] == "r7"


def test_only_t2s_release_tags_count_when_choosing_the_next_version(tmp_path, scripted_server):
    """A stray lightweight v0.9.0 on a patch commit once made `release` choose v0.10.0."""
    from t2s.config import load_config
    from t2s.record.tags import release_tags
    from t2s.releases.release import release

    store = make_repo(tmp_path, scripted_server)
    git(store.root, "checkout", "-q", "--detach")
    s0 = store.resolve("main")
    config = load_config(store.root / "t2s.toml")
    c1 = commit_skill(store, [s0], ["LESSON hard1"], "one")
    fake_gate(store, c1, s0)
    assert release(store, config, c1).version == "v0.1.0"
    patch = commit_skill(store, [store.resolve("main")], ["LESSON hard2"], "a patch", [("T2S-Patch", "0001")])
    git(store.root, "tag", "v0.9.0", patch)  # lightweight, on a patch commit
    git(store.root, "tag", "-a", "v0.8.0", "-m", "annotated, but not a release merge", patch)
    git(store.root, "tag", "-a", "v01.02.03", "-m", "leading zeros", "v0.1.0^{commit}")
    git(store.root, "tag", "-a", "vbanana", "-m", "not a version", "v0.1.0^{commit}")
    assert release_tags(store) == [((0, 1, 0), "v0.1.0")]
    fake_gate(store, patch, store.resolve("main"))
    out = CliRunner().invoke(main, ["release", patch, "-C", str(store.root), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["version"] == "v0.2.0"


def _gc(repo) -> tuple[str, str]:
    import subprocess

    gc = subprocess.run(["git", "gc", "--quiet"], cwd=repo, capture_output=True, text=True)
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert gc.returncode == 0 and fsck.returncode == 0, (gc.stderr, fsck.stderr)
    return gc.stderr, fsck.stdout + fsck.stderr


def test_git_gc_is_silent_after_a_release_and_repairs_older_tag_reflogs(tmp_path, scripted_server):
    """t2s once wrote a reflog for each release tag; `git gc` then printed "not a
    commit" and "is a commit, not a tag" after every release."""
    import subprocess

    store = make_repo(tmp_path, scripted_server)
    repo = store.root
    git(repo, "checkout", "-q", "--detach")
    s0 = store.resolve("main")
    c1 = commit_skill(store, [s0], ["LESSON hard1"], "one")
    fake_gate(store, c1, s0)
    out = CliRunner().invoke(main, ["release", c1, "-C", str(repo)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert not (repo / ".git" / "logs" / "refs" / "tags" / "v0.1.0").exists()
    assert (repo / ".git" / "logs" / "refs" / "heads" / "main").exists()  # the branch keeps its reflog
    assert _gc(repo) == ("", "")

    # A repository where an earlier t2s left a tag reflog: the next release repairs it.
    log = repo / ".git" / "logs" / "refs" / "tags" / "v0.1.0"  # what `update-ref --create-reflog` wrote
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        f"{'0' * 40} {store.rev_parse('refs/tags/v0.1.0')} T2S <t2s@example.test> 1700000000 +0000\t"
        "t2s release v0.1.0\n"
    )
    assert "not a commit" in subprocess.run(["git", "gc"], cwd=repo, capture_output=True, text=True).stderr
    c2 = commit_skill(store, [store.resolve("main")], ["LESSON hard1", "LESSON hard2"], "two")
    fake_gate(store, c2, store.resolve("main"))
    out = CliRunner().invoke(main, ["release", c2, "-C", str(repo)], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert _gc(repo) == ("", "")
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/tags").split() == [
        "refs/tags/v0.1.0",
        "refs/tags/v0.2.0",
    ]
