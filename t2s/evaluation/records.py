"""The :class:`~t2s.record.notes.EvalRecord` of a run of the agent on a context's tasks
(shared by :mod:`t2s.evaluation.evaluate` and the shards of :mod:`t2s.evaluation.shards`)."""

from __future__ import annotations

from t2s.evaluation.context import EvalContext
from t2s.evaluation.runner import RunResult
from t2s.faults import ErrorCause
from t2s.record.notes import EvalRecord, TaskVerdict


def make_record(ctx: EvalContext, commit: str, tree: str, result: RunResult, duration: float) -> EvalRecord:
    verdicts = sorted(
        result.verdicts,
        key=lambda v: (ctx.task_ids.index(v.task) if v.task in ctx.task_ids else 1 << 30, v.task, v.seed),
    )
    expected = {(t, s) for t in ctx.task_ids for s in range(ctx.seeds)}
    got = {(v.task, v.seed) for v in verdicts}
    for task, seed in sorted(expected - got, key=lambda p: (ctx.task_ids.index(p[0]), p[1])):
        verdicts.append(
            TaskVerdict(
                task=task,
                seed=seed,
                passed=False,
                score=0.0,
                error="no result from the runner",
                cause=ErrorCause(kind="harness", message="no result from the runner"),
            )
        )
    total = len(verdicts)
    return EvalRecord(
        suite=ctx.suite_name,
        split=ctx.split,
        suite_hash=ctx.suite_hash,
        skill_tree=tree,
        skill_dir=ctx.skill_dir,
        agent=ctx.agent,
        agent_hash=ctx.agent_hash,
        seeds=ctx.seeds,
        tasks=verdicts,
        score=round(sum(v.score for v in verdicts) / total, 6) if total else 0.0,
        passed=sum(1 for v in verdicts if v.passed),
        total=total,
        tokens=result.tokens,
        cost_usd=round(result.cost_usd, 6),
        duration_s=round(duration, 3),
        model_calls=result.model_calls,
        commit=commit,
    )
