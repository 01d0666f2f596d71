"""Edits -> diff -> git: apply checks, trees, patch commits and the retry loop, on real repos."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import unidiff
from pydantic import TypeAdapter

from t2s.errors import RefConflict, UsageError
from t2s.gitstore.store import GitStore
from t2s.patches.context import PatchContext, commit_patch
from t2s.patches.edits import EditList, ReplaceEdit
from t2s.patches.results import EditFailure, Patch, PatchResult, Rejected, RenderResult
from t2s.patches.retries import edits_with_retries
from t2s.record.refs import patch_branch
from t2s.skill.format import Limits, lint_rev
from tests.conftest import git

SKILL = """\
---
name: demo
description: Work with spreadsheets in a demo.
---

# Demo

## Workflow

- Open the workbook with openpyxl.
- Write the answer cells.

## Pitfalls

- Merged cells hide values.

See [formulas](references/formulas.md).
"""
FORMULAS = "# Formulas\n\nUse SUM for totals."  # no trailing newline on purpose
DIR = "skills/demo"


@pytest.fixture
def skill_repo(git_repo: Path) -> tuple[GitStore, str]:
    """A repo with skills/demo committed as S0; returns (store, s0 commit)."""
    base = git_repo / DIR
    (base / "references").mkdir(parents=True)
    (base / "scripts").mkdir()
    (base / "SKILL.md").write_text(SKILL, encoding="utf-8")
    (base / "references" / "formulas.md").write_text(FORMULAS, encoding="utf-8")
    (base / "references" / "crlf.md").write_bytes(b"# CRLF\r\n\r\nWindows line ends.\r\n")
    (base / "scripts" / "run.py").write_text("print('hi')\n")
    os.symlink("formulas.md", base / "references" / "alias.md")
    (base / "SKILL.md").write_text(
        SKILL.replace(
            "See [formulas](references/formulas.md).\n",
            "See [formulas](references/formulas.md), [crlf](references/crlf.md), [alias](references/alias.md).\n",
        ),
        encoding="utf-8",
    )
    git(git_repo, "add", DIR)
    git(git_repo, "commit", "-q", "-m", "add demo skill")
    store = GitStore.discover(git_repo)
    return store, store.resolve("HEAD")


def _check_against_git(store: GitStore, s0: str, commit: str, result: RenderResult) -> None:
    """git's own diff of S0..commit says the same as the rendered diff."""
    ours = unidiff.PatchSet(result.diff)
    theirs = unidiff.PatchSet(store.diff(s0, commit))
    assert sorted(f.path for f in ours) == sorted(f.path for f in theirs) == sorted(result.paths)
    by_path = {f.path: f for f in theirs}
    for mine in ours:
        other = by_path[mine.path]
        assert (mine.added, mine.removed, mine.is_added_file) == (other.added, other.removed, other.is_added_file)
        assert [(line.line_type, line.value) for h in mine for line in h if not line.is_context] == [
            (line.line_type, line.value) for h in other for line in h if not line.is_context
        ]
    for rel, text in result.files.items():
        assert store.read_blob(commit, f"{DIR}/{rel}") == text.encode("utf-8")


def test_every_op_renders_applies_and_commits(skill_repo):
    store, s0 = skill_repo
    before = git(store.root, "status", "--porcelain"), (store.root / ".git" / "index").read_bytes()
    ctx = PatchContext(store, s0, DIR)
    edits = [
        {"op": "insert", "anchor": "- Open the workbook", "text": "- Check the sheet name first."},
        {"op": "replace", "old": "Merged cells hide values.", "new": "Merged cells hide values; unmerge them."},
        {"op": "append_to_section", "heading": "Workflow", "text": "- Save under a new name."},
        {"op": "add_section", "heading": "## Dates", "body": "See [dates](references/dates.md).", "after": "Workflow"},
        {
            "op": "create_reference",
            "file": "references/dates.md",
            "content": "# Dates\n\nSerials start at 1900 — «ça marche» ✓.",
        },
        {"op": "append_to_reference", "file": "references/formulas.md", "text": "Use AVERAGE for means."},
        {"op": "append_to_reference", "file": "references/crlf.md", "text": "Still CRLF."},
    ]
    result = ctx.render(edits)
    assert result.ok, result.feedback()
    assert store.apply_check(s0, result.diff) is None
    assert result.tree == store.apply_to_tree(s0, result.diff)
    assert result.paths == [
        f"{DIR}/SKILL.md",
        f"{DIR}/references/crlf.md",
        f"{DIR}/references/dates.md",
        f"{DIR}/references/formulas.md",
    ]
    assert result.files["references/crlf.md"].endswith("Windows line ends.\r\n\r\nStill CRLF.\r\n")
    patch = Patch.from_render(result)
    commit = commit_patch(
        store,
        s0=s0,
        tree=patch.tree,
        ref=patch_branch("r1", "0001"),
        subject="t2s patch 0001",
        body="Lessons from one trajectory.",
        trailers=[("T2S-Run", "r1"), ("T2S-Patch", "0001")],
    )
    assert store.rev_parse("refs/heads/t2s/r1/patch/0001") == commit
    assert store.parents(commit) == [s0]
    assert store.trailers(commit) == [("T2S-Run", "r1"), ("T2S-Patch", "0001")]
    _check_against_git(store, s0, commit, result)
    # S0's own findings (the symlink and the link to it), nothing new
    assert (
        [f.rule for f in lint_rev(store, commit, DIR)]
        == [f.rule for f in lint_rev(store, s0, DIR)]
        == ["broken-link", "symlink"]
    )
    assert (git(store.root, "status", "--porcelain"), (store.root / ".git" / "index").read_bytes()) == before
    with pytest.raises(RefConflict):
        commit_patch(store, s0=s0, tree=patch.tree, ref=patch_branch("r1", "0001"), subject="again")


def test_unicode_and_missing_newline_agree_with_git(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    result = ctx.render(
        [
            {"op": "replace", "file": "references/formulas.md", "old": "# Formulas", "new": "# Formeln — Σ"},
            {"op": "append_to_section", "heading": "Pitfalls", "text": "- 日本語 headers are fine."},
        ]
    )
    assert result.ok, result.feedback()
    assert result.files["references/formulas.md"] == "# Formeln — Σ\n\nUse SUM for totals."
    assert "\\ No newline at end of file" in result.diff
    commit = commit_patch(store, s0=s0, tree=result.tree, ref="refs/heads/t2s/r2/patch/0001", subject="p")
    _check_against_git(store, s0, commit, result)


def test_symlinked_reference_and_scripts_are_refused(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    assert ctx.symlinks == {"references/alias.md"}
    assert set(ctx.texts()) == {"SKILL.md", "references/formulas.md", "references/crlf.md"}
    result = ctx.render(
        [
            {"op": "append_to_reference", "file": "references/alias.md", "text": "x"},
            {"op": "replace", "file": "scripts/run.py", "old": "hi", "new": "ho"},
            {"op": "create_reference", "file": "/etc/passwd", "content": "root"},
        ]
    )
    assert not result.ok and result.tree is None
    reasons = [f.render() for f in result.failures]
    assert (
        reasons[0]
        == "edit 1 (append_to_reference) on references/alias.md: refusing path 'references/alias.md': references/alias.md is a symlink"
    )
    assert "scripts/ is never edited" in reasons[1]
    assert "absolute paths are not allowed" in reasons[2]


def test_a_diff_git_cannot_apply_is_reported(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    ctx.files["SKILL.md"] = ctx.files["SKILL.md"].replace(b"# Demo", b"# Stale copy")  # out of sync with S0
    result = ctx.render([{"op": "replace", "old": "# Stale copy", "new": "# Fresh"}])
    assert not result.ok
    assert result.failures[0].reason.startswith("the rendered diff does not apply to S0: error: patch failed")


def test_commit_patch_refuses_an_empty_tree(skill_repo):
    store, s0 = skill_repo
    with pytest.raises(UsageError, match="empty patch"):
        commit_patch(store, s0=s0, tree=store.tree_of(s0), ref="refs/heads/t2s/r/patch/0001", subject="x")


def test_limits_and_lint_mode_come_from_the_context(skill_repo):
    store, s0 = skill_repo
    edit = [{"op": "append_to_section", "heading": "Pitfalls", "text": "- one\n- two\n- three"}]
    assert PatchContext(store, s0, DIR).render(edit).ok
    small = PatchContext(store, s0, DIR, limits=Limits(max_skill_lines=18))
    assert "at most 18" in small.render(edit).failures[0].reason
    leaky = PatchContext(store, s0, DIR, forbidden_values=["two"], forbidden_ids=["t3"])  # too short: not policed
    assert leaky.render(edit).ok
    leaky = PatchContext(store, s0, DIR, forbidden_ids=["three"])
    assert "held-out task id 'three'" in leaky.render(edit).failures[0].reason
    with pytest.raises(UsageError):
        PatchContext(store, s0, "skills/missing")


# ---------------------------------------------------------------------- retries
def _run(coro):
    return asyncio.run(coro)


def test_retry_recovers_on_the_second_try(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    asked: list[str | None] = []

    async def ask(feedback):
        asked.append(feedback)
        if feedback is None:
            return [{"op": "replace", "old": "Merged cels show values.", "new": "x"}]
        return EditList(edits=[ReplaceEdit(op="replace", old="Merged cells hide values.", new="Unmerge first.")])

    result = _run(edits_with_retries(ask, ctx.render, max_retries=2))
    assert isinstance(result, Patch) and result.ok
    assert result.attempts == 2
    assert asked[0] is None
    assert asked[1].startswith("Your edits were not applied (1 problem); attempt 1 of 3. Nothing was changed.")
    assert (
        "- edit 1 (replace) on SKILL.md: the text to replace occurs 0 times in SKILL.md "
        "and no single line matches it closely enough; closest text (line 15" in asked[1]
    )
    assert result.tree and result.files == [f"{DIR}/SKILL.md"] and (result.added, result.removed) == (1, 1)


def test_retry_rejects_after_the_bound(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    calls = []

    async def ask(feedback):
        calls.append(feedback)
        return [{"op": "create_reference", "file": "references/new.md", "content": "# New\n\nUnlinked."}]

    result = _run(edits_with_retries(ask, ctx.render, max_retries=1))
    assert isinstance(result, Rejected) and not result.ok
    assert len(calls) == 2 and result.attempts == 2
    assert result.reason.startswith(
        "no valid patch after 2 attempts: patch on references/new.md: references/new.md is new but SKILL.md does not link to it"
    )
    assert result.failures == [EditFailure(file="references/new.md", reason=result.failures[0].reason)]
    assert result.edits[0].file == "references/new.md"
    # the record round-trips as JSON for the run record
    again = TypeAdapter(PatchResult).validate_json(result.model_dump_json())
    assert again == result


def test_retry_counts_invalid_replies_and_async_render(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    replies = iter(
        [
            lambda: EditList.model_validate({"edits": [{"op": "replace", "old": "x"}]}),  # raises ValidationError
            lambda: [{"op": "append_to_section", "heading": "Pitfalls", "text": "- ok"}],
        ]
    )
    feedbacks = []

    async def ask(feedback):
        feedbacks.append(feedback)
        return next(replies)()

    async def render(edits):
        return ctx.render(edits)

    result = _run(edits_with_retries(ask, render, max_retries=3))
    assert result.ok and result.attempts == 2
    assert "patch: the reply is not a valid list of edits (edits.0.replace.new: Field required)" in feedbacks[1]
    assert TypeAdapter(PatchResult).validate_json(result.model_dump_json()) == result


def test_retry_zero_retries_and_other_errors_propagate(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)

    async def empty(feedback):
        return []

    result = _run(edits_with_retries(empty, ctx.render, max_retries=0))
    assert isinstance(result, Rejected) and result.attempts == 1
    assert (
        result.reason
        == "no valid patch after 1 attempt: patch: the list of edits is empty, so the patch changes nothing"
    )

    async def broken(feedback):
        raise RuntimeError("budget exhausted")

    with pytest.raises(RuntimeError, match="budget exhausted"):
        _run(edits_with_retries(broken, ctx.render))


def test_build_is_one_attempt(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    assert isinstance(ctx.build([{"op": "replace", "old": "name: demo", "new": "name: other"}]), Rejected)
    patch = ctx.build([{"op": "append_to_section", "heading": "Pitfalls", "text": "- ok"}])
    assert isinstance(patch, Patch) and patch.diff.startswith("diff --git a/skills/demo/SKILL.md")


def test_concurrent_async_renders_share_one_git_check(skill_repo):
    """A merge level renders many answers at once: one `git apply` checks them all,
    and each result is what a render on its own gives."""
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    edit_lists = [[{"op": "append_to_section", "heading": "Pitfalls", "text": f"- Pitfall {i}."}] for i in range(12)]
    batches = []
    check_many = store.apply_check_many

    def counting(base, diffs):
        batches.append(len(diffs))
        return check_many(base, diffs)

    store.apply_check_many = counting
    held: list = []

    async def go():
        return await asyncio.gather(*(ctx.render_async(edits, hold=held) for edits in edit_lists))

    results = asyncio.run(go())
    assert batches == [12]
    store.write_held(held)
    for edits, result in zip(edit_lists, results, strict=True):
        alone = ctx.render(edits)
        assert result.ok and (result.diff, result.tree) == (alone.diff, alone.tree)


def test_an_async_render_git_refuses_is_told_apart_from_its_batch(skill_repo):
    store, s0 = skill_repo
    ctx = PatchContext(store, s0, DIR)
    ctx.files["SKILL.md"] = ctx.files["SKILL.md"].replace(b"# Demo", b"# Stale copy")  # out of sync with S0

    async def go():
        return await asyncio.gather(
            ctx.render_async([{"op": "replace", "old": "# Stale copy", "new": "# Fresh"}]),
            ctx.render_async([{"op": "append_to_reference", "file": "references/formulas.md", "text": "More."}]),
        )

    stale, fine = asyncio.run(go())
    assert not stale.ok and stale.failures[0].reason.startswith(
        "the rendered diff does not apply to S0: error: patch failed"
    )
    assert fine.ok and fine.tree
