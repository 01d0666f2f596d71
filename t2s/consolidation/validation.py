"""The validation gate inside the merge tree: the rule, and the seam to the evaluator.

Every merge node is scored on the validation split as soon as it is built (S0 once).
A node passes when its score is at least the best of its inputs' scores minus the
tolerance (a patch input counts as S0 unless it has been evaluated). A node that
fails keeps its commit, branch and report (marked "rejected by validation", with both
scores), and the level above merges its best input in its place, so the candidate is
never worse on val than the best node below it.

This layer does not evaluate anything itself: the scoring is a :class:`NodeScorer`
given by the caller (:mod:`t2s.evaluation.validation` wraps ``evaluate`` and its
eval-note cache). The merger never sees anything of the validation tasks: only scores
flow back into the scheduler, never task contents.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel


class NodeScorer(Protocol):
    """Scores commits on the validation split (through the eval notes and their cache)."""

    @property
    def split(self) -> str:
        """The suite split the scores are on (for the reports)."""
        ...

    @property
    def episodes_run(self) -> int:
        """Agent episodes this scorer has run so far (evaluations from notes cost none)."""
        ...

    @property
    def episodes_per_evaluation(self) -> int:
        """Agent episodes one evaluation runs (for the estimate before spending)."""
        ...

    def score(self, commit: str) -> float:
        """The val score of the skill at ``commit`` (evaluated now, or from a note)."""
        ...

    def known(self, commit: str) -> float | None:
        """The val score of ``commit`` if it has been evaluated before (no agent runs)."""
        ...


class NodeValidation(BaseModel):
    """A merge node's verdict on the validation split, stored in its merge report."""

    split: str
    score: float
    #: The best score among the node's inputs (a patch without an evaluation counts as S0).
    best_input: float
    #: The input that score belongs to (its label, e.g. "merge L1-02" or "patch 0007").
    best_input_label: str
    tolerance: float
    verdict: Literal["passed", "rejected"]

    @property
    def rejected(self) -> bool:
        """True when the node lost on val and its best input was carried up instead."""
        return self.verdict == "rejected"

    def describe(self) -> str:
        """One line: the verdict and both scores."""
        if self.rejected:
            return (
                f"rejected by validation: {self.split} {self.score:.3f} < "
                f"{self.best_input:.3f} ({self.best_input_label}) - tolerance {self.tolerance:g}"
            )
        return f"passed validation: {self.split} {self.score:.3f} >= {self.best_input:.3f} - {self.tolerance:g}"


def judge(score: float, inputs: list[tuple[str, float]], tolerance: float, split: str) -> tuple[NodeValidation, int]:
    """The verdict on a node scoring ``score`` whose inputs are ``(label, score)``;
    returns it and the index of the best input (the first of equals, so the choice
    is stable across runs)."""
    best = max(range(len(inputs)), key=lambda i: (inputs[i][1], -i))
    label, best_score = inputs[best]
    passed = score >= best_score - tolerance - 1e-9
    verdict = NodeValidation(
        split=split,
        score=score,
        best_input=best_score,
        best_input_label=label,
        tolerance=tolerance,
        verdict="passed" if passed else "rejected",
    )
    return verdict, best


def validated_levels(setting: str, levels: int) -> set[int]:
    """The levels (1 = the patches' merges) that ``[merge] validate`` covers in a tree
    of ``levels`` levels: "all", "off", or "top:K" (the K levels nearest the root)."""
    if setting == "off" or levels <= 0:
        return set()
    if setting == "all":
        return set(range(1, levels + 1))
    top = int(setting.split(":", 1)[1])
    return set(range(max(1, levels - top + 1), levels + 1))
