"""What a remote analysis works on and what the driver accepts back, with real git and
no Ray: a worker's scratch copy of S0's skill folder is the same folder (modes,
symlinks), and a returned patch is rendered again against the real S0 before it can
become a branch."""

from __future__ import annotations

import os

import pytest

from t2s.analysis.analysts import AnalystOutcome
from t2s.analysis.executors import SkillSnapshot, checked_on_s0, make_analysis_executor
from t2s.errors import UsageError
from t2s.patches.context import PatchContext
from t2s.patches.results import Patch, Rejected
from tests.conftest import git
from tests.test_patches import DIR, skill_repo  # noqa: F401 - the fixture

PITFALL = [{"op": "append_to_section", "heading": "Pitfalls", "text": "- Check merged cells first."}]


def test_the_scratch_copy_holds_the_same_skill_folder(skill_repo, tmp_path):  # noqa: F811
    store, _ = skill_repo
    tool = store.root / DIR / "scripts" / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    os.chmod(tool, 0o755)
    git(store.root, "add", DIR)
    git(store.root, "commit", "-q", "-m", "an executable script")
    real = PatchContext(store, store.resolve("HEAD"), DIR, forbidden_values=["48216"], forbidden_ids=["h-901"])

    copy = SkillSnapshot.of(real).context(tmp_path / "scratch")
    assert copy.store.root != store.root
    assert copy.store.subtree(copy.s0, DIR) == store.subtree(real.s0, DIR)  # every file, mode and symlink
    assert (copy.files, copy.symlinks) == (real.files, real.symlinks) and copy.symlinks == {"references/alias.md"}
    assert (copy.forbidden_values, copy.forbidden_ids) == (["48216"], ["h-901"])


def test_a_patch_from_the_scratch_copy_gets_the_real_tree(skill_repo, tmp_path):  # noqa: F811
    store, s0 = skill_repo
    real = PatchContext(store, s0, DIR)
    remote = SkillSnapshot.of(real).context(tmp_path / "scratch").build(PITFALL)
    assert isinstance(remote, Patch) and remote.tree is not None

    outcome = checked_on_s0(AnalystOutcome(analyst="success", result=remote), real)
    assert isinstance(outcome.result, Patch) and outcome.result.diff == remote.diff
    assert outcome.result.tree == real.build(PITFALL).tree  # a tree of this repository, as locally
    assert store.read_blob(outcome.result.tree, f"{DIR}/SKILL.md").endswith(b"- Check merged cells first.\n")


def test_a_patch_that_does_not_render_the_same_on_s0_is_rejected(skill_repo, tmp_path):  # noqa: F811
    store, s0 = skill_repo
    real = PatchContext(store, s0, DIR)
    forged = real.build(PITFALL)
    assert isinstance(forged, Patch)
    forged = forged.model_copy(update={"diff": forged.diff.replace("merged cells first", "/etc/passwd")})
    outcome = checked_on_s0(AnalystOutcome(analyst="success", result=forged), real)
    assert isinstance(outcome.result, Rejected)
    assert outcome.result.reason.startswith("the worker's patch does not render the same against S0")

    # edits the real S0 refuses (the worker's copy had another SKILL.md): rejected with git's or the guard's reason
    other = tmp_path / "other"
    snapshot = SkillSnapshot.of(real)
    snapshot.entries = [
        (path, mode, data.replace(b"## Pitfalls", b"## Gotchas") if path.endswith("SKILL.md") else data)
        for path, mode, data in snapshot.entries
    ]
    elsewhere = snapshot.context(other).build([{**PITFALL[0], "heading": "Gotchas"}])
    assert isinstance(elsewhere, Patch)
    outcome = checked_on_s0(AnalystOutcome(analyst="success", result=elsewhere), real)
    assert isinstance(outcome.result, Rejected) and "Gotchas" in outcome.result.reason


def test_the_executor_is_named_plainly():
    assert make_analysis_executor(None).name == make_analysis_executor("local").name == "local"
    with pytest.raises(UsageError, match="--ray-address goes with --executor ray"):
        make_analysis_executor("local", "head:6379")
    with pytest.raises(UsageError, match="unknown executor 'spark'"):
        make_analysis_executor("spark")
