"""Review: the patch list with statuses, show, verdict notes honoured by merge, pr-body."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from t2s.cli import main
from t2s.consolidation.group import merger_ask
from t2s.consolidation.models import MergeSettings
from t2s.consolidation.scheduler import Merger
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.llm.client import LLM
from t2s.patches.context import PatchContext
from t2s.record.notes import REVIEW_NOTES, ReviewNote
from t2s.testing.pytest_plugin import scripted_role
from t2s.testing.simulated import merger_responder
from t2s.views.review import (
    candidate_view,
    patch_detail,
    pr_body,
    record_verdict,
    resolve_candidate,
    resolve_patch,
    review_rows,
    trajectory_excerpt,
)
from tests._runfixtures import (
    SKILL_DIR,
    add_patch,
    add_rejected_patch,
    add_trajectory,
    make_skill_repo,
    start_run,
    write_gate,
)

LESSONS = [
    ("Recalculate formulas before saving, or write computed values instead.", "formulas"),
    ("Read the target cells back with data_only=True before finishing.", "verification"),
    ("Strip spaces from text keys before grouping rows.", "text-keys"),
]


def merge_run(store, record, server, **settings):
    llm = LLM(roles={"merger": scripted_role(server, model="sim-merger")})
    context = PatchContext(store, record.manifest().s0, SKILL_DIR)
    merger = Merger(store, record, context, merger_ask(llm), MergeSettings(**settings), model="sim-merger")
    return asyncio.run(merger.parallel())


def build(tmp_path, accepted: int = 5):
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    patches = [
        add_patch(store, record, i, *LESSONS[i % 3][:1], topic=LESSONS[i % 3][1]) for i in range(1, accepted + 1)
    ]
    return store, record, patches


def cli(store, *args):
    return CliRunner().invoke(main, [*args, "-C", str(store.root)])


def by_number(rows):
    return {r.patch: r for r in rows}


def test_identity_is_git_config_user_else_author(tmp_path, monkeypatch):
    store = make_skill_repo(tmp_path)
    assert store.identity() == "Test User <user@example.test>"
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nohome"))
    assert GitStore.discover(store.root).identity() == "Test Author <author@example.test>"


def test_review_status_merged_rejected_unvalidated_open_and_verdicts(tmp_path, scripted_server):
    scripted_server.on(merger_responder, role="merger")
    store, record, patches = build(tmp_path, 5)
    add_rejected_patch(record, 6, "Use pandas for everything.", "edits do not apply: anchor not found")
    add_rejected_patch(record, 7, "Check the output.", "no fixed output passed the checker", status="unvalidated")
    store.add_note(
        REVIEW_NOTES,
        patches[1].commit,
        ReviewNote(verdict="reject", comment="too specific", reviewer="R <r@x>").model_dump_json(),
    )
    store.add_note(REVIEW_NOTES, patches[2].commit, ReviewNote(verdict="approve", reviewer="A <a@x>").model_dump_json())
    summary = merge_run(store, record, scripted_server, fan_in=2)
    assert summary.excluded == {"0002": "too specific"}
    late = add_patch(store, record, 8, LESSONS[0][0], topic="formulas")  # analyzed after the merge

    rows = by_number(review_rows(store, "r1"))
    assert sorted(rows) == ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008"]
    # inputs 1,3,4,5 in groups of two: L1-01 = {1, 3}, L1-02 = {4, 5}, then L2-01
    assert rows["0001"].status == "merged into L1-01" and rows["0001"].state == "merged"
    assert rows["0003"].status == "merged into L1-01" and rows["0003"].verdict.verdict == "approve"
    assert rows["0003"].verdict_text == "approved by A <a@x>"
    assert rows["0005"].status == "merged into L1-02" and rows["0005"].in_candidate
    assert rows["0002"].state == "rejected" and rows["0002"].status == "rejected in review: too specific"
    assert not rows["0002"].in_candidate and rows["0002"].verdict_text == "rejected by R <r@x>: too specific"
    assert rows["0006"].state == "rejected" and rows["0006"].status == "rejected: edits do not apply: anchor not found"
    assert rows["0006"].branch is None and rows["0006"].commit is None
    assert rows["0007"].state == "unvalidated" and rows["0007"].status.startswith("unvalidated")
    assert rows["0008"].state == "open" and rows["0008"].commit == late.commit
    one = rows["0001"]
    assert (one.task, one.trajectory, one.outcome, one.analyst, one.validated) == (
        "task1",
        "t001",
        "failed",
        "agentic",
        "yes",
    )
    assert one.lines_added == 1 and one.lines_removed == 0 and one.lessons[0].text == LESSONS[1][0]
    assert one.trailers["T2S-Patch"] == "0001"

    result = cli(store, "review", "--run", "r1", "--json")
    assert result.exit_code == 0, result.output
    data = {r["patch"]: r for r in json.loads(result.output)}
    assert data["0004"]["status"] == "merged into L1-02" and data["0006"]["state"] == "rejected"
    human = cli(store, "review", "--run", "r1")
    assert human.exit_code == 0, human.output
    assert "merged into L1-01" in human.output and "rejected in review: too specific" in human.output
    assert "4 merged, 1 open, 2 rejected, 1 unvalidated" in human.output
    only = cli(store, "review", "--run", "r1", "--state", "open", "--json")
    assert [r["patch"] for r in json.loads(only.output)] == ["0008"]


def test_a_patch_is_named_by_number_branch_ref_or_commit(tmp_path):
    store, _record, patches = build(tmp_path, 2)
    assert resolve_patch(store, "0002") == ("r1", "0002")
    assert resolve_patch(store, "2") == ("r1", "0002")
    assert resolve_patch(store, "t2s/r1/patch/0002") == ("r1", "0002")
    assert resolve_patch(store, "refs/heads/t2s/r1/patch/0002") == ("r1", "0002")
    assert resolve_patch(store, patches[1].commit) == ("r1", "0002")
    assert resolve_patch(store, patches[1].commit[:10]) == ("r1", "0002")
    other = start_run(store, "r2")
    add_patch(store, other, 2, "Another lesson for run two.")
    with pytest.raises(UsageError, match="ambiguous"):
        resolve_patch(store, "0002")
    assert resolve_patch(store, "0002", run="r2") == ("r2", "0002")
    assert resolve_patch(store, "0001") == ("r1", "0001")  # only r1 has a 0001
    with pytest.raises(UsageError, match="no run has a patch 0009"):
        resolve_patch(store, "9")
    with pytest.raises(UsageError, match="not a t2s patch commit"):
        resolve_patch(store, "HEAD")
    with pytest.raises(UsageError, match="belongs to run 'r1'"):
        resolve_patch(store, "t2s/r1/patch/0001", run="r2")
    with pytest.raises(UsageError, match="has a candidate yet"):
        resolve_candidate(store)


def test_show_prints_provenance_diff_lessons_and_the_failure_in_the_trajectory(tmp_path):
    store, record, patches = build(tmp_path, 2)
    add_trajectory(record, "t001", "task1", fail_at=4, steps=6)
    add_rejected_patch(record, 3, "Use pandas for everything.", "edits do not apply")

    detail = patch_detail(store, "0001")
    assert detail.diff == store.diff(record.manifest().s0, patches[0].commit)
    assert detail.excerpt.focus == 4 and [s.index for s in detail.excerpt.steps] == [2, 3, 4, 5]
    assert [s.failed for s in detail.excerpt.steps] == [False, False, True, False]

    result = cli(store, "show", "0001")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "patch 0001 of run r1: open" in out
    assert "T2S-Trajectory: t001" in out and "T2S-Validated: yes" in out
    assert f"+- {LESSONS[1][0]}" in out  # the diff
    assert "p0001.1 [support 1: t001]" in out
    assert "the first failing step (4: exit code 1)" in out and "ZeroDivisionError" in out
    assert "print('step 1')" not in out and "print('step 2')" in out
    assert '"cell": "D2"' in out  # the checker report

    no_traj = cli(store, "show", "t2s/r1/patch/0002", "--no-diff")
    assert no_traj.exit_code == 0, no_traj.output
    assert "trajectory t002 is not in the run record" in no_traj.output and "diff --git" not in no_traj.output
    rejected = cli(store, "show", "3", "--json")
    assert rejected.exit_code == 0, rejected.output
    data = json.loads(rejected.output)
    assert data["view"]["status"] == "rejected: edits do not apply" and data["view"]["branch"] is None
    missing = cli(store, "show", "0042")
    assert missing.exit_code == 2 and "no run has a patch 0042" in missing.output


def test_trajectory_excerpt_without_a_failure_shows_the_last_steps(tmp_path):
    store = make_skill_repo(tmp_path)
    record = start_run(store)
    traj = add_trajectory(record, "t9", "task9", fail_at=None, steps=5, verdict="passed")
    excerpt = trajectory_excerpt(traj, context_steps=2)
    assert excerpt.focus is None and [s.index for s in excerpt.steps] == [3, 4, 5]
    assert "last 3 step(s)" in excerpt.why and excerpt.verdict == "passed"


def test_approve_and_reject_write_notes_and_merge_leaves_rejected_patches_out(tmp_path, scripted_server):
    scripted_server.on(merger_responder, role="merger")
    store, record, patches = build(tmp_path, 4)
    add_rejected_patch(record, 5, "Use pandas for everything.", "edits do not apply")

    ok = cli(store, "approve", "0001", "-m", "general and well-worded")
    assert ok.exit_code == 0, ok.output
    assert "approved patch 0001 of run r1" in ok.output and "Test User <user@example.test>" in ok.output
    no_reason = cli(store, "reject", "0002")
    assert no_reason.exit_code == 2 and "-m" in no_reason.output
    bad = cli(store, "reject", "0002", "-m", "too specific to one workbook", "--json")
    assert bad.exit_code == 0, bad.output
    assert json.loads(bad.output)["note"]["verdict"] == "reject"
    note = ReviewNote.model_validate_json(store.read_note(REVIEW_NOTES, patches[1].commit))
    assert (note.verdict, note.comment, note.reviewer) == (
        "reject",
        "too specific to one workbook",
        "Test User <user@example.test>",
    )
    nothing = cli(store, "reject", "0005", "-m", "no")
    assert nothing.exit_code == 2 and "has no branch" in nothing.output
    with pytest.raises(UsageError, match="needs a reason"):
        record_verdict(store, "0003", "reject", "  ")

    args = ["--base-url", scripted_server.base_url, "--model", "sim-merger"]
    merged = cli(store, "merge", "--run", "r1", "--fan-in", "3", "--json", *args)
    assert merged.exit_code == 0, merged.output
    summary = json.loads(merged.output)
    assert summary["excluded"] == {"0002": "too specific to one workbook"} and summary["inputs"] == 3
    candidate = store.rev_parse("refs/heads/t2s/r1/candidate")
    assert patches[1].commit not in store.parents(candidate)
    assert "- patch 0002: too specific to one workbook" in store.commit_message(candidate)
    again = cli(store, "merge", "--run", "r1", "--fan-in", "3", *args)  # reuses the merge, says what it left out
    assert again.exit_code == 0, again.output
    assert "left out patch 0002: too specific to one workbook" in again.output

    rows = by_number(review_rows(store, "r1"))
    assert rows["0002"].status == "rejected in review: too specific to one workbook"
    assert rows["0001"].status == "merged into L1-01" and rows["0001"].verdict.comment == "general and well-worded"
    # a later rejection of a merged patch is shown, with what to do about it
    late = cli(store, "reject", "0003", "-m", "changed my mind")
    assert (
        late.exit_code == 0 and "merged into L1-01 (rejected in review after the merge: changed my mind)" in late.output
    )
    assert "to merge without it: t2s merge --run r1 --rebuild" in late.output


def test_a_branch_without_a_record_is_listed_from_its_trailers(tmp_path):
    from t2s.patches.context import commit_patch

    store, record, _patches = build(tmp_path, 1)
    s0 = record.manifest().s0
    tree = store.build_tree(s0, {f"{SKILL_DIR}/references/imported.md": "# Imported\n\n- A lesson from elsewhere.\n"})
    trailers = [
        ("T2S-Run", "r1"),
        ("T2S-Patch", "0002"),
        ("T2S-Task", "ext-7"),
        ("T2S-Trajectory", "imp-7"),
        ("T2S-Outcome", "failed"),
        ("T2S-Analyst", "single-call"),
        ("T2S-Validated", "n/a"),
    ]
    commit = commit_patch(
        store, s0=s0, tree=tree, ref="refs/heads/t2s/r1/patch/0002", subject="Imported lesson", trailers=trailers
    )
    row = by_number(review_rows(store, "r1"))["0002"]
    assert (row.task, row.trajectory, row.analyst, row.validated, row.record_status) == (
        "ext-7",
        "imp-7",
        "single-call",
        "n/a",
        "",
    )
    assert row.lessons[0].text == "Imported lesson" and row.lines_added == 3 and row.state == "open"
    assert resolve_patch(store, commit) == ("r1", "0002")
    detail = patch_detail(store, "0002")
    assert "+- A lesson from elsewhere." in detail.diff and "imp-7 is not in the run record" in detail.excerpt_missing


def test_pr_body_for_a_patch_and_for_the_candidate(tmp_path, scripted_server):
    scripted_server.on(merger_responder, role="merger")
    store, record, _patches = build(tmp_path, 3)
    add_rejected_patch(record, 4, "Use pandas for everything.", "edits do not apply")
    record_verdict(store, "0003", "reject", "duplicate of 0002")

    body = pr_body(store, "0001")
    assert body.startswith(f"## t2s patch 0001 (run r1): {LESSONS[1][0]}")
    assert "| task | `task1` |" in body and "| trajectory | `t001` (failed) |" in body
    assert "| validated | yes |" in body and "| status | open |" in body and "| change | +1 -0 lines |" in body
    assert f"- **p0001.1** (support 1: `t001`, topic `verification`): {LESSONS[1][0]}" in body
    assert "```diff\ndiff --git a/skills/xlsx/SKILL.md b/skills/xlsx/SKILL.md" in body
    assert f"+- {LESSONS[1][0]}\n" in body and body.count("```") == 2
    assert "Not evaluated yet" in body

    with pytest.raises(UsageError, match="has a candidate yet"):
        pr_body(store, "candidate")
    merge_run(store, record, scripted_server, fan_in=5)
    view = candidate_view(store, "r1")
    assert [p.patch for p in view.patches] == ["0001", "0002"] and view.support == 2
    body = pr_body(store, "candidate")
    assert body.startswith("## t2s candidate for run r1: 2 lessons from 2 patches")
    assert "| merge tree | 2 patches -> 1 at L1 (parallel) |" in body
    assert "- `0003` (task3): rejected in review: duplicate of 0002" in body
    assert "- `0004` (task4): rejected: edits do not apply" in body
    assert "(support 1: `t002`, in references/" in body or "(support 1: `t002`, in SKILL.md)" in body
    assert "Not evaluated yet" in body and "```diff\n" in body

    gate = write_gate(store, view.commit, record.manifest().s0)
    result = cli(store, "pr-body", "t2s/r1/candidate")
    assert result.exit_code == 0, result.output
    assert "Gate **passed** on suite `sheets` split `test`." in result.output
    assert "| score | 60.0% | 80.0% |" in result.output and "| only candidate (improved) | 3 |" in result.output
    assert "Regressed: `task-r1`" in result.output and gate.delta == pytest.approx(0.2)
    out = tmp_path / "body.md"
    written = cli(store, "pr-body", "0002", "--run", "r1", "-o", str(out))
    assert written.exit_code == 0, written.output
    assert out.read_text().startswith("## t2s patch 0002 (run r1)") and "merged into L1-01" in out.read_text()
