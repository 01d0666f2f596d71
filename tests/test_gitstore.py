"""Plumbing invariants of t2s.gitstore.store, on real repositories."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from t2s.errors import RefConflict, UsageError
from t2s.gitstore.store import ZERO_SHA, GitStore, RefUpdate, format_message, parse_trailers
from t2s.record.notes import EVAL_NOTES
from tests.conftest import git


def _fingerprint(repo: Path) -> tuple[str, str, str]:
    """What the user sees: status, the index file's bytes, HEAD."""
    index = (repo / ".git" / "index").read_bytes()
    return (
        git(repo, "status", "--porcelain", "--untracked-files=all"),
        hashlib.sha256(index).hexdigest(),
        git(repo, "rev-parse", "HEAD"),
    )


@pytest.fixture
def dirty_repo(git_repo: Path) -> Path:
    """A repo where the user has staged one change and left another unstaged."""
    (git_repo / "staged.txt").write_text("staged\n")
    git(git_repo, "add", "staged.txt")
    (git_repo / "README.md").write_text("edited but not staged\n")
    (git_repo / "untracked.txt").write_text("u\n")
    return git_repo


def test_build_tree_and_commit_leave_user_tree_and_index_alone(dirty_repo):
    store = GitStore.discover(dirty_repo)
    before = _fingerprint(dirty_repo)
    tree = store.build_tree("HEAD", {"skills/x/SKILL.md": "hi\n", "README.md": None})
    commit = store.commit(tree, [store.resolve("HEAD")], "add skill", trailers={"T2S-Run": "r1"})
    store.create_ref("refs/heads/t2s/r1/patch/0001", commit)
    store.add_note(EVAL_NOTES, commit, '{"score": 1}')
    assert _fingerprint(dirty_repo) == before
    assert store.read_blob(commit, "skills/x/SKILL.md") == b"hi\n"
    assert store.read_blob(commit, "README.md") is None
    assert store.trailers(commit) == [("T2S-Run", "r1")]


def test_cas_refuses_stale_old_value(git_repo):
    store = GitStore.discover(git_repo)
    head = store.resolve("HEAD")
    c1 = store.commit(store.tree_of(head), [head], "one")
    c2 = store.commit(store.tree_of(head), [head], "two")
    store.create_ref("refs/heads/t2s/x", c1)
    with pytest.raises(RefConflict):
        store.create_ref("refs/heads/t2s/x", c2)  # create-only on an existing ref
    with pytest.raises(RefConflict):
        store.update_ref("refs/heads/t2s/x", c2, head)  # stale old value
    assert store.rev_parse("refs/heads/t2s/x") == c1
    store.update_ref("refs/heads/t2s/x", c2, c1)
    assert store.rev_parse("refs/heads/t2s/x") == c2


def test_multi_ref_update_is_all_or_nothing(git_repo):
    store = GitStore.discover(git_repo)
    head = store.resolve("HEAD")
    store.create_ref("refs/heads/taken", head)
    updates = [
        RefUpdate("refs/heads/t2s/a", head, ZERO_SHA),
        RefUpdate("refs/heads/t2s/b", head, ZERO_SHA),
        RefUpdate("refs/heads/taken", head, ZERO_SHA),  # fails: exists
    ]
    with pytest.raises(RefConflict):
        store.update_refs(updates)
    assert store.refs("refs/heads/t2s/") == {}
    store.update_refs(updates[:2])
    assert set(store.refs("refs/heads/t2s/")) == {"refs/heads/t2s/a", "refs/heads/t2s/b"}


def test_octopus_commit_keeps_five_parents_in_order(git_repo):
    store = GitStore.discover(git_repo)
    head = store.resolve("HEAD")
    heads = []
    for i in range(5):
        tree = store.build_tree(head, {f"f{i}.txt": f"{i}\n"})
        heads.append(store.commit(tree, [head], f"patch {i}"))
    tree = store.build_tree(head, {f"f{i}.txt": f"{i}\n" for i in range(5)})
    merge = store.commit(tree, heads, "octopus", trailers=[("T2S-Merge-Level", "1")])
    assert store.parents(merge) == heads
    assert git(git_repo, "log", "--format=%P", "-1", merge).split() == heads


def test_refs_are_listed_by_prefix(git_repo):
    store = GitStore.discover(git_repo)
    head = store.resolve("HEAD")
    for name in ("t2s/r/patch/0002", "t2s/r/patch/0001", "t2s/other/patch/0001"):
        store.create_ref(f"refs/heads/{name}", head)
    assert list(store.refs("refs/heads/t2s/r/")) == [
        "refs/heads/t2s/r/patch/0001",
        "refs/heads/t2s/r/patch/0002",
    ]


def test_append_commit_grows_a_record_chain(git_repo):
    store = GitStore.discover(git_repo)
    c1 = store.append_commit("refs/t2s/runs/r1", {"manifest.json": "{}"}, "start")
    c2 = store.append_commit("refs/t2s/runs/r1", {"a/b.json": "[]"}, "stage")
    assert store.parents(c2) == [c1]
    assert store.read_files("refs/t2s/runs/r1", "") == {"manifest.json": b"{}", "a/b.json": b"[]"}


_NOTE_WRITER = """
import sys
from t2s.gitstore.store import GitStore
from t2s.record.notes import EVAL_NOTES
store = GitStore.discover(sys.argv[1])
for sha in sys.argv[2:]:
    store.add_note(EVAL_NOTES, sha, "note for " + sha)
"""


def test_eight_processes_writing_notes_lose_nothing(git_repo):
    store = GitStore.discover(git_repo)
    head = store.resolve("HEAD")
    commits = [store.commit(store.tree_of(head), [head], f"c{i}") for i in range(32)]
    procs = [subprocess.Popen([sys.executable, "-c", _NOTE_WRITER, str(git_repo), *commits[i::8]]) for i in range(8)]
    assert [p.wait() for p in procs] == [0] * 8
    notes = store.list_notes(EVAL_NOTES)
    assert set(notes) == set(commits)
    assert store.read_note(EVAL_NOTES, commits[5]) == f"note for {commits[5]}\n"


_EVAL_RECORDER = """
import sys
from t2s.gitstore.store import GitStore
from t2s.record.notes import EvalRecord, update_eval_note
store = GitStore.discover(sys.argv[1])
for split in sys.argv[3:]:
    record = EvalRecord(suite="s", split=split, suite_hash="h", skill_tree="t", score=1.0, passed=1, total=1)
    update_eval_note(store, sys.argv[2], lambda note: note.upsert(record))
"""


def test_processes_adding_records_to_one_eval_note_keep_every_record(git_repo):
    """Evaluations of one commit that finish together each read, change and write
    the same note: the read-modify-write holds the notes lock throughout."""
    from t2s.record.notes import read_eval_note

    store = GitStore.discover(git_repo)
    head = store.resolve("HEAD")
    splits = [f"split-{i}" for i in range(24)]
    procs = [
        subprocess.Popen([sys.executable, "-c", _EVAL_RECORDER, str(git_repo), head, *splits[i::6]]) for i in range(6)
    ]
    assert [p.wait() for p in procs] == [0] * 6
    assert sorted(r.split for r in read_eval_note(store, head).evals) == sorted(splits)


def test_annotated_tag_and_refusal_to_move_it(git_repo):
    store = GitStore.discover(git_repo)
    store.create_tag("v0.1.0", "HEAD", "release 0.1.0\n\n| a | b |\n")
    assert git(git_repo, "cat-file", "-t", "v0.1.0").strip() == "tag"
    assert "| a | b |" in store.tag_message("v0.1.0")
    with pytest.raises(RefConflict):
        store.create_tag("v0.1.0", "HEAD", "again")


def test_archive_materialises_a_folder_at_a_revision(git_repo, tmp_path):
    store = GitStore.discover(git_repo)
    tree = store.build_tree("HEAD", {"skills/s/SKILL.md": "x\n", "skills/s/references/r.md": "r\n"})
    commit = store.commit(tree, [store.resolve("HEAD")], "skill")
    out = store.archive(commit, "skills/s", tmp_path / "out")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "SKILL.md",
        "references/r.md",
    ]
    with pytest.raises(UsageError):
        store.archive(commit, "skills/missing", tmp_path / "none")


def test_apply_check_reports_why_a_diff_does_not_apply(git_repo):
    store = GitStore.discover(git_repo)
    good = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-hello\n+hello world\n"
    bad = "--- a/README.md\n+++ b/README.md\n@@ -1 +1 @@\n-goodbye\n+hello world\n"
    assert store.apply_check("HEAD", good) is None
    assert "patch does not apply" in store.apply_check("HEAD", bad)
    tree = store.apply_to_tree("HEAD", good)
    assert store.read_blob(tree, "README.md") == b"hello world\n"


def test_paths_outside_the_repository_are_refused(git_repo):
    store = GitStore.discover(git_repo)
    for path in ("../x", "/etc/passwd", ".git/config", "a/../../b"):
        with pytest.raises(UsageError):
            store.build_tree("HEAD", {path: "x"})


def test_trailer_round_trip():
    message = format_message("Subject", "Body line.", [("T2S-Run", "r1"), ("T2S-Support", "3")])
    assert parse_trailers(message) == [("T2S-Run", "r1"), ("T2S-Support", "3")]
    assert parse_trailers("Only a subject\n") == []
    assert parse_trailers("Subject\n\nJust prose: with a colon inside it.\n") == []


def test_discover_outside_a_repository_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not inside a git repository"):
        GitStore.discover(tmp_path)


def test_in_process_trees_equal_the_trees_git_writes(git_repo):
    """build_tree writes trees itself; git's own index must agree, path for path."""
    import random

    store = GitStore.discover(git_repo)
    rng = random.Random(3)
    names = ["a.md", "b.txt", "dir/x.md", "dir/sub/y.md", "dir-z.md", "dir.md", "z/q.md", "é.md"]
    base = store.resolve("HEAD")
    for _ in range(25):
        changes = {
            name: (None if rng.random() < 0.3 else f"{name} {rng.random()}\n")
            for name in rng.sample(names, rng.randint(1, len(names)))
        }
        mine = store.build_tree(base, changes)
        theirs = store._build_tree_with_index(base, changes)
        assert mine == theirs, changes
        base = store.commit(mine, [base], "step")
    assert "missing" not in store.fsck()


def test_worktrees_share_t2s_state_with_the_main_repository(git_repo, tmp_path):
    """Locks and caches guard shared refs, so every worktree must find the same ones."""
    main = GitStore.discover(git_repo)
    git(git_repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"))
    other = GitStore.discover(tmp_path / "wt")
    assert other.git_dir != main.git_dir
    assert other.t2s_dir == main.t2s_dir == (git_repo / ".git" / "t2s").resolve()
    with main.exclusive("stage", "busy"), pytest.raises(UsageError, match="busy"), other.exclusive("stage", "busy"):
        pass
