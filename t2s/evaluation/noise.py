"""The noise floor: the same skill evaluated several times, with no cache at all, and
how far the runs agree. A gate delta smaller than the run-to-run spread measured here
is the agent's own noise, not the skill's doing.

Each repetition bypasses the eval cache (the note) *and* the response cache (a cached
answer would replay the first run exactly), and repetition ``r`` offsets the sampling
seed by ``r * seeds`` (a seeded endpoint would otherwise sample the same answers). The
last run's record is what the note keeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from t2s.evaluation.context import EvalContext
from t2s.evaluation.evaluate import EvalOutcome, evaluate
from t2s.evaluation.runner import Runner


@dataclass
class NoiseFloor:
    """Several uncached evaluations of one skill and how far they agree."""

    outcomes: list[EvalOutcome]

    @property
    def scores(self) -> list[float]:
        return [o.record.score for o in self.outcomes]

    @property
    def spread(self) -> float:
        """The largest score difference between two runs: the delta noise alone makes."""
        return round(max(self.scores) - min(self.scores), 6)

    def _verdicts(self, outcome: EvalOutcome) -> dict[tuple[str, int], bool]:
        return {(v.task, v.seed): v.passed for v in outcome.record.tasks}

    @property
    def agreement(self) -> float:
        """The fraction of task runs with the same verdict in every pair of runs."""
        same = total = 0
        for a, b in combinations([self._verdicts(o) for o in self.outcomes], 2):
            for key, verdict in a.items():
                total += 1
                same += b.get(key) == verdict
        return round(same / total, 6) if total else 1.0

    @property
    def unstable(self) -> list[str]:
        """Tasks whose verdict differed between runs (for some seed)."""
        seen: dict[tuple[str, int], set[bool]] = {}
        for outcome in self.outcomes:
            for key, verdict in self._verdicts(outcome).items():
                seen.setdefault(key, set()).add(verdict)
        return list(dict.fromkeys(task for (task, _), verdicts in seen.items() if len(verdicts) > 1))

    def sentence(self) -> str:
        """One line for people."""
        scores = ", ".join(f"{s:.3f}" for s in self.scores)
        return (
            f"{len(self.outcomes)} uncached runs scored {scores}: {100 * self.agreement:.1f}% of task runs agree, "
            f"{len(self.unstable)} task(s) changed verdict; a delta within ±{self.spread:.3f} is the agent's own noise."
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.outcomes[0].commit if self.outcomes else None,
            "scores": self.scores,
            "spread": self.spread,
            "agreement": self.agreement,
            "unstable": self.unstable,
            "summary": self.sentence(),
        }


def noise_floor(
    ctx: EvalContext,
    rev: str,
    repeat: int,
    *,
    runner: Runner | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> NoiseFloor:
    """Evaluate ``rev`` ``repeat`` times without any cache (see the module doc)."""
    outcomes = []
    for r in range(max(2, repeat)):
        uncached = dataclasses.replace(ctx, response_cache=False, seed_offset=r * ctx.seeds)
        outcomes.append(evaluate(uncached, rev, use_cache=False, runner=runner, on_wait=on_wait))
    return NoiseFloor(outcomes)
