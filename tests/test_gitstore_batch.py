"""The merge-speed paths of gitstore: batched apply checks, held objects, pipelined
reads and the caches of immutable facts. Each is checked against git itself."""

from __future__ import annotations

from t2s.gitstore.store import GitStore, _prefix_diff
from t2s.record.runs import RunManifest, RunRecord
from tests.conftest import git


def _diff(path: str, old: str, new: str) -> str:
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n"


def test_prefix_diff_rewrites_headers_and_leaves_lookalike_content():
    # a removed line reading "-- a/x" and an added one reading "++ b/y" look like headers
    diff = (
        "diff --git a/notes.md b/notes.md\n--- a/notes.md\n+++ b/notes.md\n"
        "@@ -1,2 +1,2 @@\n--- a/x\n+++ b/y\n keep\n\\ No newline at end of file\n"
        "diff --git a/new.md b/new.md\nnew file mode 100644\n--- /dev/null\n+++ b/new.md\n@@ -0,0 +1 @@\n+hi\n"
    )
    moved, paths = _prefix_diff(diff, "slot/")
    assert "--- a/slot/notes.md\n+++ b/slot/notes.md\n" in moved
    assert "@@ -1,2 +1,2 @@\n--- a/x\n+++ b/y\n keep\n" in moved
    assert "--- /dev/null\n+++ b/slot/new.md\n" in moved
    assert set(paths) == {"notes.md", "new.md"}
    assert _prefix_diff('diff --git "a/sp ace.md" "b/sp ace.md"\n', "slot/") is None
    assert _prefix_diff("rename from a.md\n", "slot/") is None


def test_apply_check_many_agrees_with_one_check_per_diff(git_repo):
    store = GitStore.discover(git_repo)
    (git_repo / "docs").mkdir()
    (git_repo / "docs" / "guide.md").write_text("guide\n")
    git(git_repo, "add", "docs")
    git(git_repo, "commit", "-q", "-m", "docs")
    diffs = [
        _diff("README.md", "hello", "hello world"),
        _diff("docs/guide.md", "guide", "the guide"),
        "diff --git a/docs/new.md b/docs/new.md\nnew file mode 100644\n--- /dev/null\n+++ b/docs/new.md\n@@ -0,0 +1 @@\n+new\n",
        _diff("README.md", "hello", "hi"),  # the same file as the first: each diff has its own copy
    ]
    assert store.apply_check_many("HEAD", diffs) == [None, None, None, None]
    bad = _diff("README.md", "goodbye", "hello")
    reasons = store.apply_check_many("HEAD", [diffs[0], bad, diffs[1]])
    assert reasons[0] is None and reasons[2] is None
    assert reasons[1] == store.apply_check("HEAD", bad) and "patch does not apply" in reasons[1]
    assert store.apply_check_many("HEAD", []) == []
    # nothing of the batch leaks into what the user sees
    assert git(git_repo, "status", "--porcelain") == ""


def test_held_objects_reach_git_only_when_written(git_repo):
    store = GitStore.discover(git_repo)
    held: list = []
    tree = store.build_tree("HEAD", {"notes/a.md": "held\n"}, hold=held)
    commit = store.commit(tree, [store.resolve("HEAD")], "held commit", hold=held)
    assert len(held) == 4  # blob, notes/, root tree, commit
    assert git(git_repo, "cat-file", "-t", commit, check=False) == ""
    store.write_held(held)
    assert git(git_repo, "cat-file", "-t", commit).strip() == "commit"
    assert store.read_blob(commit, "notes/a.md") == b"held\n"

    # many held objects go to git as one pack, which git verifies as it indexes it
    many: list = []
    trees = [store.build_tree("HEAD", {f"bulk/{i}.md": f"{i}\n"}, hold=many) for i in range(40)]
    packs = set((store.git_dir / "objects" / "pack").glob("*.pack"))
    store.write_held(many)
    assert len(set((store.git_dir / "objects" / "pack").glob("*.pack")) - packs) == 1
    assert all(store.read_blob(t, f"bulk/{i}.md") == f"{i}\n".encode() for i, t in enumerate(trees))
    assert "error" not in store.fsck()


def test_tree_of_follows_a_moving_ref_but_remembers_object_ids(git_repo):
    store = GitStore.discover(git_repo)
    first = store.tree_of("HEAD")
    tree = store.build_tree("HEAD", {"b.md": "b\n"})
    git(git_repo, "update-ref", "refs/heads/main", store.commit(tree, [store.resolve("HEAD")], "b"))
    assert store.tree_of("HEAD") == tree != first


def test_pipelined_reads_return_every_blob_in_order(git_repo):
    store = GitStore.discover(git_repo)
    files = {f"many/{i:03d}.md": f"file {i}\n" * (i % 7 + 1) for i in range(300)}  # > one chunk
    tree = store.build_tree("HEAD", files)
    assert store.read_files(tree, "many") == {path[5:]: text.encode() for path, text in files.items()}
    record = RunRecord(store, "r1")
    record.create(RunManifest(run="r1", s0=store.resolve("HEAD"), skill_dir="skills/x"))
    record.write({"patches/0001.json": {"a": 1}, "patches/0002.json": {"b": 2}, "other.json": {}}, "two")
    assert sorted(record.read_folder("patches")) == ["patches/0001.json", "patches/0002.json"]
    assert record.read_folder("missing") == {}
