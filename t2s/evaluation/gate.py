"""The gate. :func:`gate` evaluates a candidate and a baseline with the same context and
pairs them per task (a task counts as passed when it passed in more than half of its
seeds): both pass, only baseline (a regression), only candidate, neither. The decision
rule (:func:`judge`): with ``decide = "delta"`` the observed delta must be above
``min_delta`` (or equal to it, with ``require_improvement = false``); with
``decide = "significant"`` the lower bound of the delta's (1 - alpha) confidence
interval (:mod:`t2s.evaluation.significance`) must be above ``min_delta``. Either way
regressions must be ``<= max_regressions``. It also reports an exact two-sided sign
test on the discordant pairs, each task's pass rate over the seeds and the flaky tasks. The verdict is written
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
from t2s.evaluation.significance import CI_METHOD, Interval, delta_interval, flaky_tasks, pass_rates
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.describe import run_s0
from t2s.record.notes import (
    EvalRecord,
    GateRecord,
    update_eval_note,
)
from t2s.record.runs import StageProgress
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


def judge(
    delta: float,
    interval: Interval,
    regressions: int,
    *,
    min_delta: float,
    max_regressions: int,
    decide: str,
    require_improvement: bool,
) -> tuple[bool, str]:
    """The decision rule: ``(passed, one sentence saying why)``."""
    eps = 1e-9
    if regressions > max_regressions:
        return False, f"Failed: {regressions} task(s) regressed and at most {max_regressions} may."
    ci = f"{100 * (1 - interval.alpha):g}% interval [{interval.low:+.3f}, {interval.high:+.3f}]"
    if decide == "significant":
        if interval.low > min_delta + eps:
            return True, f"Passed: the {ci} of the delta lies above {min_delta:+.3f}, so the gain is not noise."
        return False, (
            f"Failed: the delta {delta:+.3f} is not significant: its {ci} reaches {min_delta:+.3f} or below "
            "(more tasks or --seeds narrow it)."
        )
    if require_improvement:
        if delta > min_delta + eps:
            return True, f"Passed: the delta {delta:+.3f} is above {min_delta:+.3f} (a strict improvement is required)."
        return False, (
            f"Failed: the delta {delta:+.3f} is not above {min_delta:+.3f}; "
            "a strict improvement is required ([gate] require_improvement)."
        )
    if delta >= min_delta - eps:
        return True, f"Passed: the delta {delta:+.3f} is at least {min_delta:+.3f}."
    return False, f"Failed: the delta {delta:+.3f} is below the minimum {min_delta:+.3f}."


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
    decide: str | None = None,
    alpha: float | None = None,
    require_improvement: bool | None = None,
    use_cache: bool = True,
    runner: Runner | None = None,
    write_note: bool = True,
    on_wait: Callable[[str], None] | None = None,
    progress: StageProgress | None = None,
) -> GateResult:
    """Evaluate ``candidate`` and ``baseline`` in the same context and judge the delta.

    Raises :class:`EvalErrored` (and records nothing) when either evaluation errored."""
    store, config = ctx.store, ctx.config
    min_delta = config.gate.min_delta if min_delta is None else min_delta
    max_regressions = config.gate.max_regressions if max_regressions is None else max_regressions
    decide = decide or config.gate.decide
    alpha = config.gate.alpha if alpha is None else alpha
    strict = config.gate.require_improvement if require_improvement is None else require_improvement
    baseline = baseline or default_baseline(store, candidate, config)
    base = evaluate(ctx, baseline, use_cache=use_cache, runner=runner, on_wait=on_wait, progress=progress)
    cand = evaluate(ctx, candidate, use_cache=use_cache, runner=runner, on_wait=on_wait, progress=progress)
    for outcome in (base, cand):  # evaluate() returns complete records only; never judge anything else
        if not outcome.record.complete:
            raise EvalErrored(outcome)
    rows = pair(base.record, cand.record, ctx.task_ids)
    counts = {k: 0 for k in PAIR_KEYS}
    for row in rows:
        counts[row.kind] += 1
    delta = round(cand.record.score - base.record.score, 6)
    regressions = counts["only_baseline"]
    interval = delta_interval(base.record, cand.record, ctx.task_ids, alpha=alpha)
    passed, reason = judge(
        delta,
        interval,
        regressions,
        min_delta=min_delta,
        max_regressions=max_regressions,
        decide=decide,
        require_improvement=strict,
    )
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
        require_improvement=strict,
        decide=decide,
        alpha=alpha,
        ci_low=interval.low,
        ci_high=interval.high,
        ci_method=CI_METHOD,
        baseline_pass_rates=pass_rates(base.record),
        candidate_pass_rates=pass_rates(cand.record),
        flaky=flaky_tasks(base.record, cand.record),
        reason=reason,
    )
    if write_note and not ctx.subset:  # a verdict on part of the split must not let `release` pass
        update_eval_note(store, cand.commit, lambda note: setattr(note, "gate", record))
    return GateResult(record, cand, base, rows, candidate, baseline)
