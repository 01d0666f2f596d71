"""Is a gain real? Per-task pass rates over seeds, the flaky tasks, and a confidence
interval for the paired score delta (pure functions; the gate uses them).

**The interval: a paired, two-level (hierarchical) percentile bootstrap.** A score is
the mean of per-run scores, and runs come in tasks x seeds. The bootstrap draws the
tasks with replacement (each draw keeps the task's baseline and candidate side
together: the comparison stays *paired*), then, within each drawn task, draws that
task's seeds with replacement on each side (so a flaky agent's run-to-run noise widens
the interval). The (1 - alpha) interval is the alpha/2 and 1 - alpha/2 quantiles of
the resampled deltas.

Why a bootstrap and not an exact test: with several seeds, or a suite with partial
credit, a task's result is a fraction, not a pass/fail; the exact sign test (still
reported) only sees tasks that flipped, and ignores by how much. The bootstrap assumes
no distribution and uses every run. It is seeded, so the same records always give the
same interval and the same verdict. Caveat: with very few tasks a percentile bootstrap
is too narrow; the gate summary shows how many tasks and runs the interval rests on.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from t2s.record.notes import EvalRecord

#: Bootstrap draws: the quantiles move by well under 0.01 between seeds of the RNG at this size.
DRAWS = 2000
#: The bootstrap's RNG seed: the interval is a function of the records alone.
RNG_SEED = 20260101
CI_METHOD = "paired hierarchical bootstrap (tasks, then seeds), percentile"


def task_runs(record: EvalRecord) -> dict[str, list[float]]:
    """Task -> the scores of its runs (one per seed), in seed order."""
    runs: dict[str, list[tuple[int, float]]] = {}
    for v in record.tasks:
        runs.setdefault(v.task, []).append((v.seed, float(v.score)))
    return {task: [s for _, s in sorted(pairs)] for task, pairs in runs.items()}


def pass_rates(record: EvalRecord) -> dict[str, float]:
    """Task -> the fraction of its seeds that passed."""
    runs: dict[str, list[bool]] = {}
    for v in record.tasks:
        runs.setdefault(v.task, []).append(v.passed)
    return {task: sum(flags) / len(flags) for task, flags in runs.items()}


def flaky_tasks(*records: EvalRecord) -> list[str]:
    """Tasks that passed in some seeds and failed in others, in any of ``records``."""
    flaky: set[str] = set()
    for record in records:
        flaky.update(t for t, rate in pass_rates(record).items() if 0 < rate < 1)
    order = [v.task for r in records for v in r.tasks]
    return sorted(flaky, key=order.index)


@dataclass(frozen=True)
class Interval:
    """A (1 - alpha) confidence interval for the score delta."""

    low: float
    high: float
    alpha: float
    method: str = CI_METHOD

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def _quantile(sorted_xs: Sequence[float], q: float) -> float:
    """The ``q`` quantile by linear interpolation (numpy's default)."""
    pos = q * (len(sorted_xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def delta_interval(
    baseline: EvalRecord, candidate: EvalRecord, task_ids: Sequence[str], *, alpha: float, draws: int = DRAWS
) -> Interval:
    """The paired bootstrap interval of ``candidate.score - baseline.score`` (module doc)."""
    base, cand = task_runs(baseline), task_runs(candidate)
    pairs = [(base.get(t) or [0.0], cand.get(t) or [0.0]) for t in task_ids]
    if not pairs:
        return Interval(0.0, 0.0, alpha)
    rng = random.Random(RNG_SEED)
    n = len(pairs)
    deltas = []
    for _ in range(draws):
        total = 0.0
        for _ in range(n):
            b, c = pairs[rng.randrange(n)]
            total += _mean([c[rng.randrange(len(c))] for _ in c]) - _mean([b[rng.randrange(len(b))] for _ in b])
        deltas.append(total / n)
    deltas.sort()
    return Interval(round(_quantile(deltas, alpha / 2), 6), round(_quantile(deltas, 1 - alpha / 2), 6), alpha)
