"""Consolidation: merge levels as octopus merges resolved by an LLM merger.

The accepted patch branches of a run are grouped into balanced groups of at most
``fan_in``; each group becomes one octopus merge commit whose parents are the group's
heads (in order) and whose tree is S0 plus the merger's consolidated diff. Levels
repeat until one commit remains: the candidate.

Support (the number of distinct trajectories behind a lesson) is computed here from
the inputs, never taken from the model. Every input lesson must be accounted for
(kept, folded into another, or dropped with a reason); a merger answer that loses
one is sent back. A merge that still fails is recorded and its inputs are carried up
to the next level unmerged, never lost.
"""

from t2s.consolidation.accounting import check_every_patch_accounted
from t2s.consolidation.group import merger_ask, render_report
from t2s.consolidation.models import (
    MergeFailed,
    MergeInput,
    MergerAnswer,
    MergeReport,
    MergeSettings,
    MergeSummary,
    PatchesLost,
)
from t2s.consolidation.persistence import set_aside_merges
from t2s.consolidation.plan import balanced_groups
from t2s.consolidation.scheduler import Merger

__all__ = [
    "MergeFailed",
    "MergeInput",
    "MergeReport",
    "MergeSettings",
    "MergeSummary",
    "Merger",
    "MergerAnswer",
    "PatchesLost",
    "balanced_groups",
    "check_every_patch_accounted",
    "merger_ask",
    "render_report",
    "set_aside_merges",
]
