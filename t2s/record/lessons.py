"""Lessons and patch records: what analysts propose and what the merger consolidates.

A *lesson* is one generalisable piece of advice with its *support*: the ids of the
distinct trajectories behind it. Support is the inductive signal of the method: the
merger keeps recurring lessons in SKILL.md and routes rare ones to ``references/``.
Support is always computed by t2s from the inputs, never taken from a model.

Patch records live in the run record as ``patches/<nnnn>.json``; every analyzed
trajectory gets one, accepted or not, so nothing disappears silently.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

PATCHES_DIR = "patches"
MERGES_DIR = "merges"
#: The merger's conversation of each merge (request, raw answers, feedback), beside its report.
MERGE_TRANSCRIPTS_DIR = "merge-transcripts"
TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


class Lesson(BaseModel):
    #: Stable id: ``p0007.1`` for an analyst lesson, ``L1-02.3`` for a merged one.
    id: str
    text: str
    #: Ids of the distinct trajectories that support this lesson.
    support: list[str] = Field(default_factory=list)
    #: Short slug naming the topic (used for reference files), e.g. ``formulas``.
    topic: str = ""
    #: For merged lessons: the input lesson ids consolidated into this one.
    sources: list[str] = Field(default_factory=list)
    #: Where the lesson landed: the main guide or a reference file.
    placement: Literal["skill", "reference", ""] = ""


class PatchRecord(BaseModel):
    """One analyzed trajectory and what became of its patch."""

    schema_version: int = 1
    patch: str
    trajectory: str
    task: str
    outcome: str
    analyst: str
    model: str = ""
    validated: bool = False
    status: Literal["accepted", "rejected", "unvalidated"]
    reason: str = ""
    failure_causes: list[str] = Field(default_factory=list)
    lessons: list[Lesson] = Field(default_factory=list)
    edits: list[dict[str, Any]] = Field(default_factory=list)
    diff: str = ""
    branch: str | None = None
    commit: str | None = None
    lines_added: int = 0
    lines_removed: int = 0
    attempts: int = 0
    #: Anchors found by resolution, not verbatim: how, and how similar (one line each).
    anchors_resolved: list[str] = Field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{PATCHES_DIR}/{self.patch}.json"


def support_of(lessons: list[Lesson]) -> list[str]:
    """Distinct trajectory ids across ``lessons``, sorted."""
    return sorted({tid for lesson in lessons for tid in lesson.support})


def slugify(text: str, fallback: str = "notes") -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-")
    return slug or fallback
