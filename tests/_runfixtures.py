"""Helpers that build real runs for tests: a skill repo, patch branches and their records."""

from __future__ import annotations

from pathlib import Path

from t2s.gitstore.store import GitStore
from t2s.patches.context import PatchContext, commit_patch
from t2s.record.lessons import Lesson, PatchRecord
from t2s.record.refs import patch_branch
from t2s.record.runs import RunManifest, RunRecord
from t2s.skill.repo import init_skill_repo

SKILL_DIR = "skills/xlsx"


def make_skill_repo(tmp_path: Path) -> GitStore:
    result = init_skill_repo(tmp_path / "skills-repo", seed="xlsx", install_git_hooks=False)
    return GitStore.discover(result.repo)


def start_run(store: GitStore, run: str = "r1") -> RunRecord:
    record = RunRecord(store, run)
    record.create(RunManifest(run=run, s0=store.resolve("HEAD"), skill_dir=SKILL_DIR))
    return record


def add_patch(
    store: GitStore, record: RunRecord, number: int, lesson: str, *, topic: str = "general", task: str | None = None
) -> PatchRecord:
    """One accepted analyst patch: a real commit on S0 whose diff adds ``lesson``."""
    s0 = record.manifest().s0
    nnnn = f"{number:04d}"
    trajectory = f"t{number:03d}"
    context = PatchContext(store, s0, SKILL_DIR)
    edit = {"op": "append_to_section", "heading": "## Safe edits", "text": f"- {lesson}"}
    result = context.render([edit])
    assert result.ok, result.failures
    ref = patch_branch(record.run, nnnn)
    trailers = [
        ("T2S-Run", record.run),
        ("T2S-Patch", nnnn),
        ("T2S-Task", task or f"task{number}"),
        ("T2S-Trajectory", trajectory),
        ("T2S-Outcome", "failed"),
        ("T2S-Analyst", "agentic"),
        ("T2S-Validated", "yes"),
    ]
    commit = commit_patch(store, s0=s0, tree=result.tree, ref=ref, subject=lesson, trailers=trailers)
    patch = PatchRecord(
        patch=nnnn,
        trajectory=trajectory,
        task=task or f"task{number}",
        outcome="failed",
        analyst="agentic",
        validated=True,
        status="accepted",
        lessons=[Lesson(id=f"p{nnnn}.1", text=lesson, support=[trajectory], topic=topic)],
        edits=[edit],
        diff=result.diff,
        branch=ref,
        commit=commit,
        lines_added=result.added,
    )
    record.write({patch.path: patch}, f"patch {nnnn}")
    return patch


def add_rejected_patch(
    record: RunRecord,
    number: int,
    lesson: str,
    reason: str,
    *,
    status: str = "rejected",
    task: str | None = None,
    analyst: str = "agentic",
) -> PatchRecord:
    """A patch the analyst stage did not accept: a record in the run, but no branch."""
    nnnn = f"{number:04d}"
    trajectory = f"t{number:03d}"
    patch = PatchRecord(
        patch=nnnn,
        trajectory=trajectory,
        task=task or f"task{number}",
        outcome="failed",
        analyst=analyst,
        validated=False,
        status=status,
        reason=reason,
        lessons=[Lesson(id=f"p{nnnn}.1", text=lesson, support=[trajectory], topic="general")],
    )
    record.write({patch.path: patch}, f"patch {nnnn}: {status}")
    return patch


def add_trajectory(
    record: RunRecord, traj_id: str, task: str, *, fail_at: int | None = 2, steps: int = 4, verdict: str = "failed"
):
    """A trajectory record (``trajectories/<id>.json``) whose step ``fail_at`` exits 1."""
    from t2s.agent.trajectory import Step, Trajectory

    out = []
    for index in range(1, steps + 1):
        failing = index == fail_at
        out.append(
            Step(
                index=index,
                turn=index,
                tool="run_python",
                arguments={"code": f"print('step {index}')" + ("\nwb['Sheet1']['Z9'].value / 0" if failing else "")},
                observation="Traceback: ZeroDivisionError: division by zero" if failing else f"step {index} ok",
                exit_code=1 if failing else 0,
            )
        )
    traj = Trajectory(
        id=traj_id,
        task_id=task,
        instruction=f"Fill column D for {task}.",
        verdict=verdict,
        stop_reason="finished",
        steps=out,
        check={"passed": False, "mismatches": [{"cell": "D2", "expected": 3, "got": None}]},
    )
    record.write({f"trajectories/{traj_id}.json": traj.to_json()}, f"trajectory {traj_id}")
    return traj


def write_gate(
    store: GitStore,
    candidate: str,
    baseline: str,
    *,
    candidate_score: float = 0.8,
    baseline_score: float = 0.6,
    passed: bool = True,
):
    """An eval note with a gate verdict on ``candidate`` (as ``t2s gate`` writes it)."""
    from t2s.record.notes import EvalNote, GateRecord, write_eval_note

    gate = GateRecord(
        passed=passed,
        candidate=store.resolve(candidate),
        baseline=store.resolve(baseline),
        split="test",
        suite_hash="0" * 64,
        candidate_score=candidate_score,
        baseline_score=baseline_score,
        delta=round(candidate_score - baseline_score, 6),
        regressions=1,
        min_delta=0.0,
        max_regressions=2,
        paired={"both": 5, "only_baseline": 1, "only_candidate": 3, "neither": 1},
        p_value=0.625,
        suite="sheets",
        regressed=["task-r1"],
        improved=["task-i1", "task-i2", "task-i3"],
    )
    write_eval_note(store, store.resolve(candidate), EvalNote(gate=gate))
    return gate
