"""The gate. :func:`gate` evaluates a candidate and a baseline with the same context and
pairs them per task (a task counts as passed when it passed in more than half of its
seeds): both pass, only baseline (a regression), only candidate, neither. It passes
when ``candidate - baseline >= min_delta`` and regressions ``<= max_regressions``, and
reports an exact two-sided sign test on the discordant pairs. The verdict is written
into the candidate's note as a :class:`~t2s.record.notes.GateRecord`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from t2s.config import Config
from t2s.errors import UsageError
from t2s.evaluation.context import EvalContext
from t2s.evaluation.evaluate import EvalErrored, EvalOutcome, evaluate
from t2s.evaluation.runner import Runner
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.describe import run_s0
from t2s.record.notes import (
    EvalRecord,
    GateRecord,
    update_eval_note,
)
from t2s.record.tags import latest_release_tag

PAIR_KEYS = ("both", "only_baseline", "only_candidate", "neither")


def task_passes(record: EvalRecord) -> dict[str, bool]:
    """Task -> passed in more than half of its seeds."""
    runs: dict[str, list[bool]] = {}
    for v in record.tasks:
        runs.setdefault(v.task, []).append(v.passed)
    return {task: sum(flags) * 2 > len(flags) for task, flags in runs.items()}


def sign_test(b: int, c: int) -> float:
    """Exact two-sided sign test (binomial, p = 1/2) on ``b`` vs ``c`` discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass
class PairRow:
    task: str
    baseline: bool
    candidate: bool

    @property
    def kind(self) -> str:
        if self.baseline and self.candidate:
            return "both"
        if self.baseline:
            return "only_baseline"
        if self.candidate:
            return "only_candidate"
        return "neither"


@dataclass
class GateResult:
    """The gate's verdict on a candidate against a baseline: the recorded
    :class:`GateRecord`, both evaluations, and one row per task (which side passed it)."""

    record: GateRecord
    candidate: EvalOutcome
    baseline: EvalOutcome
    rows: list[PairRow] = field(default_factory=list)
    candidate_rev: str = ""
    baseline_rev: str = ""

    @property
    def passed(self) -> bool:
        """Whether the candidate passed the gate."""
        return self.record.passed

    def to_json(self) -> dict:
        """The result as JSON-ready data (``t2s gate --json`` prints it, with the markdown)."""
        return {
            "passed": self.passed,
            "candidate": {
                "rev": self.candidate_rev,
                "commit": self.candidate.commit,
                "score": self.candidate.record.score,
                "cached": self.candidate.cached,
            },
            "baseline": {
                "rev": self.baseline_rev,
                "commit": self.baseline.commit,
                "score": self.baseline.record.score,
                "cached": self.baseline.cached,
            },
            "gate": self.record.model_dump(),
            "tasks": [
                {"task": r.task, "baseline": r.baseline, "candidate": r.candidate, "kind": r.kind} for r in self.rows
            ],
        }


def pair(baseline: EvalRecord, candidate: EvalRecord, task_ids: Sequence[str]) -> list[PairRow]:
    b, c = task_passes(baseline), task_passes(candidate)
    return [PairRow(t, b.get(t, False), c.get(t, False)) for t in task_ids]


def default_baseline(store: GitStore, candidate: str, config: Config) -> str:
    """The latest release tag; else the run's S0 (``T2S-Run`` trailer -> run record);
    else the merge base of the candidate with the release branch."""

    tag = latest_release_tag(store)
    if tag:
        return tag
    s0 = run_s0(store, candidate)
    if s0:
        return s0
    branch = store.rev_parse(refs.head(config.release.branch)) or store.rev_parse(
        refs.remote_head("origin", config.release.branch)
    )
    if branch:
        base = store.merge_base(candidate, branch)
        if base:
            return base
    raise UsageError(
        f"no baseline for {candidate}: no release tag, no run S0, no merge base with {config.release.branch}",
        hint="pass --baseline REV",
    )


def gate(
    ctx: EvalContext,
    candidate: str,
    baseline: str | None = None,
    *,
    min_delta: float | None = None,
    max_regressions: int | None = None,
    use_cache: bool = True,
    runner: Runner | None = None,
    write_note: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> GateResult:
    """Evaluate ``candidate`` and ``baseline`` in the same context and judge the delta.

    Raises :class:`EvalErrored` (and records nothing) when either evaluation errored."""
    store, config = ctx.store, ctx.config
    min_delta = config.gate.min_delta if min_delta is None else min_delta
    max_regressions = config.gate.max_regressions if max_regressions is None else max_regressions
    baseline = baseline or default_baseline(store, candidate, config)
    base = evaluate(ctx, baseline, use_cache=use_cache, runner=runner, on_wait=on_wait)
    cand = evaluate(ctx, candidate, use_cache=use_cache, runner=runner, on_wait=on_wait)
    for outcome in (base, cand):  # evaluate() returns complete records only; never judge anything else
        if not outcome.record.complete:
            raise EvalErrored(outcome)
    rows = pair(base.record, cand.record, ctx.task_ids)
    counts = {k: 0 for k in PAIR_KEYS}
    for row in rows:
        counts[row.kind] += 1
    delta = round(cand.record.score - base.record.score, 6)
    regressions = counts["only_baseline"]
    passed = delta >= min_delta - 1e-9 and regressions <= max_regressions
    record = GateRecord(
        passed=passed,
        candidate=cand.commit,
        baseline=base.commit,
        split=ctx.split,
        suite_hash=ctx.suite_hash,
        candidate_score=cand.record.score,
        baseline_score=base.record.score,
        delta=delta,
        regressions=regressions,
        min_delta=min_delta,
        max_regressions=max_regressions,
        paired=counts,
        p_value=sign_test(counts["only_baseline"], counts["only_candidate"]),
        suite=ctx.suite_name,
        agent_hash=ctx.agent_hash,
        candidate_tree=cand.record.skill_tree,
        baseline_tree=base.record.skill_tree,
        regressed=[r.task for r in rows if r.kind == "only_baseline"],
        improved=[r.task for r in rows if r.kind == "only_candidate"],
    )
    if write_note:
        update_eval_note(store, cand.commit, lambda note: setattr(note, "gate", record))
    return GateResult(record, cand, base, rows, candidate, baseline)
