"""The merge stage's records and the merger's answer: inputs, reports (what each merge
kept, folded and dropped, its support), the stage summary, settings and errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from t2s.consolidation.validation import NodeValidation
from t2s.errors import T2SError
from t2s.patches.edits import Edit
from t2s.record.lessons import Lesson, support_of


class MergedLessonOut(BaseModel):
    text: str = Field(description="The consolidated lesson, general and procedural.")
    sources: list[str] = Field(description="Ids of the input lessons this lesson covers.")
    placement: Literal["skill", "reference"] = Field(
        "skill", description="SKILL.md, or a reference file for rare lessons."
    )
    topic: str = Field("", description="Short slug (a-z, 0-9, hyphens); names references/<topic>.md for rare lessons.")


class ConflictOut(BaseModel):
    lessons: list[str]
    resolution: str


class DroppedOut(BaseModel):
    lesson: str
    reason: str


class MergerAnswer(BaseModel):
    """What the merger model returns for one group."""

    lessons: list[MergedLessonOut]
    conflicts: list[ConflictOut] = Field(default_factory=list)
    dropped: list[DroppedOut] = Field(default_factory=list)
    edits: list[Edit]


class MergeInput(BaseModel):
    """One head going into a merge: a patch branch or a lower-level merge."""

    ref: str
    commit: str
    label: str
    lessons: list[Lesson]
    diff: str = ""
    #: The task a patch's trajectory ran (patch inputs only; never shown to the merger).
    task: str = ""


class MergeReport(BaseModel):
    """The record of one merge, stored as ``merges/L<l>-<nn>.json`` and in the commit message."""

    schema_version: int = 1
    run: str
    name: str
    level: int
    group: int
    strategy: Literal["parallel", "sequential"] = "parallel"
    status: Literal["merged", "failed"]
    inputs: list[dict[str, str]]
    lessons: list[Lesson] = Field(default_factory=list)
    folded: dict[str, str] = Field(default_factory=dict)
    conflicts: list[ConflictOut] = Field(default_factory=list)
    dropped: list[DroppedOut] = Field(default_factory=list)
    reason: str = ""
    attempts: int = 0
    model: str = ""
    commit: str | None = None
    branch: str | None = None
    diff: str = ""
    #: The merger's conversation: the request, each raw answer, each feedback. Stored
    #: beside the report (``merge-transcripts/<name>.json``), not inside it.
    transcript: list[dict[str, Any]] = Field(default_factory=list, exclude=True)
    #: The node's score on the validation split and its verdict (None: not validated).
    validation: NodeValidation | None = None
    #: Anchors of the merger's edits found by resolution, not verbatim (one line each).
    anchors_resolved: list[str] = Field(default_factory=list)
    #: Which sample of this merge the answers were (1 first; ``--retry-failed`` asks sample n+1).
    sample: int = 1
    #: ``"git"`` when the merger failed and git merged the inputs' diffs (no consolidation).
    fallback: str | None = None
    #: True when the merger call failed for another reason than its answers (the endpoint,
    #: a replay cache miss): no git fallback then.
    endpoint_error: bool = False

    @property
    def support(self) -> int:
        """How many distinct trajectories stand behind this merge's lessons."""
        return len(support_of(self.lessons))


class MergeSummary(BaseModel):
    """What ``t2s merge`` did: the merges of each level by name, the candidate commit
    and branch, how many merges were made, failed or reused from an earlier
    invocation, the patches review left out (with why), and how many patches went in."""

    run: str
    strategy: str
    levels: list[list[str]] = Field(default_factory=list)
    candidate: str | None = None
    candidate_ref: str | None = None
    merged: int = 0
    #: Merges git made after the merger failed (counted in ``merged`` too).
    fallbacks: int = 0
    failed: int = 0
    reused: int = 0
    excluded: dict[str, str] = Field(default_factory=dict)
    inputs: int = 0
    #: The validation split nodes were scored on ("" when validation was off).
    validate_split: str = ""
    #: S0's score on the validation split, and each validated node's (by merge name).
    s0_val: float | None = None
    val_scores: dict[str, float] = Field(default_factory=dict)
    #: Merges rejected by validation (their best input went up in their place).
    rejected: list[str] = Field(default_factory=list)
    #: Patches left out because their task is in the validation split.
    val_task_patches: int = 0
    #: Agent episodes validation ran (node evaluations found in notes cost none).
    val_episodes: int = 0


class MergeFailed(T2SError):
    """The merge tree could not be reduced to one candidate."""


@dataclass
class MergeSettings:
    """How a run is merged: ``fan_in`` patches per octopus merge; lessons seen in fewer
    than ``min_support`` trajectories go to references/; ``retries`` merger answers
    sent back per merge; ``concurrency`` merges at once; ``retry_failed`` asks the
    merger again for merges recorded as failed. Defaults match ``[merge]`` of t2s.toml."""

    fan_in: int = 5
    min_support: int = 2
    retries: int = 2
    concurrency: int = 4
    retry_failed: bool = False
    #: Which levels are validated ("all", "top:K", "off"; only with a scorer) and the
    #: score a node may lose against its best input.
    validate: str = "off"
    tolerance: float = 0.0
    #: Merge a group the merger failed on by git when its diffs allow (``[merge] fallback``).
    fallback: bool = True


class PatchesLost(MergeFailed):
    """A merge would have produced a candidate that does not hold every patch."""
