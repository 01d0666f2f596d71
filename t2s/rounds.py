"""``t2s evolve --rounds N``: evolve, gate, and evolve again from the accepted candidate.

Round ``n`` is the run ``<run>-r<n>`` (:func:`t2s.record.refs.round_run`): rollout on
the evolve split, analyze, merge (:func:`t2s.api.evolve`), then the gate of its
candidate against the round's S0 on the held-out split. Round 1 starts at ``rev``
(default HEAD); round ``n + 1`` starts at round ``n``'s candidate, and only once that
candidate has passed its gate: the held-out split judges a round, it never picks a
skill among several. The rounds stop at the first failing gate (early stopping), after
``rounds``, or when a stage stops (a budget cap, errored work, nothing to merge).

Everything lives in git (run records, branches, eval notes), so the same command
resumes: finished rounds cost nothing again (each stage skips its done work, the gate
reuses the eval notes) and the lineage is the same (:mod:`t2s.record.lineage`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from t2s import api
from t2s.errors import UsageError
from t2s.estimates.dry_run import evolve_estimate
from t2s.estimates.model import refuse_over_budget
from t2s.evaluation.gate import GateResult
from t2s.record import refs
from t2s.record.lineage import Round, rounds_of
from t2s.record.runs import check_run_name


@dataclass
class RoundsSummary:
    """What ``evolve --rounds`` did: each round's evolve and gate, and why it stopped."""

    run: str
    rounds: int
    evolves: list[api.EvolveSummary] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    lineage: list[Round] = field(default_factory=list)
    #: Why the rounds ended: "rounds" (all N ran), "gate" (a gate failed), or a stage name.
    stopped_by: str = ""
    #: The last candidate that passed its gate (None: no round was accepted).
    accepted: str | None = None

    def sentence(self) -> str:
        done = len(self.evolves)
        why = {
            "rounds": f"all {self.rounds} round(s) ran",
            "gate": f"round {done}'s gate failed (early stopping)",
        }.get(self.stopped_by, f"round {done} stopped at {self.stopped_by}")
        last = f"the accepted skill is {self.accepted[:12]}" if self.accepted else "no round was accepted"
        return f"{why}; {last}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "rounds": self.rounds,
            "stopped_by": self.stopped_by,
            "accepted": self.accepted,
            "summary": self.sentence(),
            "lineage": [r.to_json() for r in self.lineage],
            "evolves": [e.to_dict() for e in self.evolves],
        }


def evolve_rounds(
    repo: api.Repo,
    run: str,
    rounds: int,
    *,
    rev: str | None = None,
    on_round: Callable[[int, str, str], None] | None = None,
    gate_options: dict[str, Any] | None = None,
    **evolve_options: Any,
) -> RoundsSummary:
    """Up to ``rounds`` rounds of evolve + gate (see the module doc). ``evolve_options``
    go to :func:`t2s.api.evolve` for every round, ``gate_options`` to :func:`t2s.api.gate`;
    ``on_round(n, run, s0)`` is told when a round starts."""
    check_run_name(run)
    if rounds < 1:
        raise UsageError("--rounds must be at least 1")
    check_run_name(refs.round_run(run, rounds))  # the longest name must be a valid run name too
    out = RoundsSummary(run=run, rounds=rounds)
    s0 = repo.store.resolve(rev or "HEAD")
    earlier = rounds_of(repo.store, run)
    if earlier and earlier[0].s0 != s0 and rev is not None:
        raise UsageError(
            f"run {run!r} started its rounds at {earlier[0].s0[:12]}, not at {rev}",
            hint="leave out --rev to resume it, or choose a new --run name",
        )
    if earlier:
        s0 = earlier[0].s0  # resuming: the lineage starts where it started
    budget = repo.config.budget
    if not evolve_options.pop("force", False) and any(
        cap is not None for cap in (budget.max_calls, budget.max_tokens, budget.max_usd)
    ):
        keys = ("split", "suite", "limit", "concurrency", "analyst", "mode", "fan_in")
        planned = evolve_estimate(
            repo.store, repo.config, rev=s0, rounds=rounds, gated=True, **{k: evolve_options.get(k) for k in keys}
        )
        refuse_over_budget(planned, repo.config)
    for number in range(1, rounds + 1):
        name = refs.round_run(run, number)
        if on_round:
            on_round(number, name, s0)
        summary = api.evolve(repo, name, rev=s0, force=True, **evolve_options)  # the caps were checked for all rounds
        out.evolves.append(summary)
        if summary.stopped_at:
            out.stopped_by = summary.stopped_at
            break
        candidate = summary.merge.candidate if summary.merge else None
        if not candidate:
            out.stopped_by = "merge"
            break
        result = api.gate(repo, candidate, s0, **(gate_options or {}))
        out.gates.append(result)
        if not result.passed:
            out.stopped_by = "gate"
            break
        out.accepted = s0 = result.candidate.commit
    else:
        out.stopped_by = "rounds"
    out.lineage = rounds_of(repo.store, run)
    return out
