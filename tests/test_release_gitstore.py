"""The plumbing GitStore gained for evaluation and releases, on real repositories."""

from __future__ import annotations

import pytest

from t2s.errors import GitError, RefConflict
from t2s.gitstore.store import ZERO_SHA, GitStore, RefUpdate, clone
from tests.conftest import git


def test_read_objects_batches_and_skips_missing(git_repo):
    store = GitStore.discover(git_repo)
    a, b = store.write_blob("one\n"), store.write_blob(b"two\x00\n")
    got = store.read_objects([a, b, "f" * 40, a])
    assert got == {a: b"one\n", b: b"two\x00\n"}
    assert store.read_objects([]) == {}


def test_replace_subtree_swaps_one_folder_and_keeps_the_rest(git_repo):
    store = GitStore.discover(git_repo)
    base = store.commit(
        store.build_tree("HEAD", {"skills/a/SKILL.md": "old\n", "skills/a/references/x.md": "x\n", "t2s.toml": "t\n"}),
        [store.resolve("HEAD")],
        "base",
    )
    other = store.build_tree(None, {"skills/a/SKILL.md": "new\n"})
    tree = store.replace_subtree(base, "skills/a", store.subtree(other, "skills/a"))
    paths = {e.path for e in store.list_tree(tree)}
    assert paths == {"README.md", "t2s.toml", "skills/a/SKILL.md"}
    assert store.read_blob(tree, "skills/a/SKILL.md") == b"new\n"
    gone = store.replace_subtree(base, "skills/a", None)
    assert {e.path for e in store.list_tree(gone)} == {"README.md", "t2s.toml"}
    before = git(git_repo, "status", "--porcelain")
    assert git(git_repo, "status", "--porcelain") == before


def test_tag_object_moves_with_a_branch_atomically(git_repo):
    store = GitStore.discover(git_repo)
    head = store.resolve("HEAD")
    child = store.commit(store.tree_of(head), [head], "child")
    tag = store.tag_object("v1.0.0", child, "release notes\n\nline")
    assert store.rev_parse("refs/tags/v1.0.0") is None  # no ref yet
    store.create_ref("refs/tags/v1.0.0", store.write_blob("squatter"))
    with pytest.raises(RefConflict):
        store.update_refs([RefUpdate("refs/heads/main", child, head), RefUpdate("refs/tags/v1.0.0", tag, ZERO_SHA)])
    assert store.resolve("main") == head  # all or nothing
    store.delete_ref("refs/tags/v1.0.0")
    store.update_refs([RefUpdate("refs/heads/main", child, head), RefUpdate("refs/tags/v1.0.0", tag, ZERO_SHA)])
    assert store.resolve("v1.0.0") == child and store.tag_message("v1.0.0").startswith("release notes")


def test_worktrees_checked_out_and_bisect_state_stay_private(git_repo, tmp_path):
    store = GitStore.discover(git_repo)
    assert store.checked_out() == {"refs/heads/main": git_repo.resolve()}
    head = store.resolve("HEAD")
    commits = [head]
    for i in range(4):
        commits.append(store.commit(store.build_tree(commits[-1], {f"f{i}": str(i)}), [commits[-1]], f"c{i}"))
    wt = store.worktree_add(tmp_path / "wt", commits[-1])
    assert list((tmp_path / "wt").iterdir()) == [tmp_path / "wt" / ".git"]  # nothing checked out
    # bad from c2 on: the test command fails when f2 exists at BISECT_HEAD
    first_bad, log = wt.bisect_run([head], commits[-1], ["sh", "-c", "! git cat-file -e BISECT_HEAD:f2"])
    assert first_bad == commits[3], log
    assert not (git_repo / ".git" / "BISECT_LOG").exists()
    store.worktree_remove(tmp_path / "wt")
    assert not (tmp_path / "wt").exists()
    assert list(store.checked_out()) == ["refs/heads/main"]


def test_push_and_clone(git_repo, tmp_path):
    store = GitStore.discover(git_repo)
    remote = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    store.create_ref("refs/heads/t2s/x/patch/0001", store.resolve("HEAD"))
    report = store.push(str(remote), ["refs/heads/t2s/x/*:refs/heads/t2s/x/*"])
    assert "refs/heads/t2s/x/patch/0001" in report
    with pytest.raises(GitError):
        store.push(str(tmp_path / "nowhere.git"), ["refs/heads/main:refs/heads/main"])
    cloned = clone(str(remote), tmp_path / "c.git")
    assert cloned.rev_parse("refs/heads/t2s/x/patch/0001") == store.resolve("HEAD")
    assert store.commit_time("HEAD") > 0
