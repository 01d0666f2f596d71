"""The JSON formats t2s keeps in git notes, defined in one place.

``refs/notes/t2s/eval`` holds, per commit, an :class:`EvalNote`: the evaluation runs of
that commit's skill and, once gated, the gate verdict. The pre-push hook, ``t2s gate``,
``t2s release`` and CI all read this one format. ``refs/notes/t2s/review`` holds a
:class:`ReviewNote` per patch commit.

An evaluation in which any task *errored* (the model endpoint failed, t2s crashed: see
:mod:`t2s.faults`) is never written. Older t2s versions wrote such tasks as failures
with their ``error`` set; :meth:`EvalNote.find` does not return those records, so
neither the cache nor the gate trusts them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from t2s import __version__
from t2s.errors import T2SError
from t2s.faults import ErrorCause
from t2s.record import refs

#: The notes refs t2s writes (``refs/notes/t2s/eval``, ``refs/notes/t2s/review``).
EVAL_NOTES = refs.notes_ref(refs.EVAL_NOTES)
REVIEW_NOTES = refs.notes_ref(refs.REVIEW_NOTES)
SCHEMA_VERSION = 1


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class TaskVerdict(BaseModel):
    task: str
    seed: int = 0
    passed: bool
    score: float
    #: Set only when the task errored (no verdict): such records are never written now,
    #: and ones older t2s versions wrote are not reused (see the module docstring).
    error: str | None = None
    #: Why the task errored; kept in memory only (``exclude``): the note format is unchanged.
    cause: ErrorCause | None = Field(default=None, exclude=True)
    #: Agent-side facts worth keeping next to the verdict (turns, stop reason, tokens).
    turns: int = 0
    stop_reason: str = ""
    tokens: int = 0

    @property
    def errored(self) -> bool:
        return self.cause is not None or self.error is not None


class EvalRecord(BaseModel):
    """One evaluation of a skill on one split of one suite with one agent configuration."""

    schema_version: int = SCHEMA_VERSION
    suite: str
    split: str
    suite_hash: str
    skill_tree: str
    #: The skill folder evaluated (e.g. ``skills/xlsx``).
    skill_dir: str = ""
    #: The agent settings that change results (model, sampling, harness); see
    #: :func:`t2s.evaluation.evaluate.agent_fingerprint`. ``agent_hash`` is their sha256.
    agent: dict = Field(default_factory=dict)
    agent_hash: str = ""
    seeds: int = 1
    tasks: list[TaskVerdict] = Field(default_factory=list)
    score: float
    passed: int
    total: int
    tokens: int = 0
    cost_usd: float = 0.0
    duration_s: float = 0.0
    #: Model requests actually sent (0 when every answer came from the response cache).
    model_calls: int = 0
    t2s_version: str = __version__
    created_at: str = Field(default_factory=_now)
    #: The commit this result was computed on; a cached copy on another commit keeps
    #: the original's id here.
    commit: str = ""
    #: Set on a copy: the commit whose note this record was copied from.
    cached_from: str | None = None

    def cache_key(self) -> tuple[str, str, str, str, int]:
        """What makes two evaluations interchangeable (see :mod:`t2s.evaluation.evaluate`)."""
        return (self.skill_tree, self.suite_hash, self.split, self.agent_hash, self.seeds)

    @property
    def errored_tasks(self) -> list[TaskVerdict]:
        return [v for v in self.tasks if v.errored]

    @property
    def complete(self) -> bool:
        """Every task has a verdict: the only kind of record that may be reused or gated."""
        return not self.errored_tasks


class GateRecord(BaseModel):
    """The gate's verdict on a candidate against a baseline."""

    schema_version: int = SCHEMA_VERSION
    passed: bool
    candidate: str
    baseline: str
    split: str
    suite_hash: str
    candidate_score: float
    baseline_score: float
    delta: float
    regressions: int
    min_delta: float
    max_regressions: int
    paired: dict[str, int] = Field(default_factory=dict)
    p_value: float | None = None
    created_at: str = Field(default_factory=_now)
    suite: str = ""
    agent_hash: str = ""
    candidate_tree: str = ""
    baseline_tree: str = ""
    #: Task ids that passed on the baseline and fail on the candidate, and the reverse.
    regressed: list[str] = Field(default_factory=list)
    improved: list[str] = Field(default_factory=list)
    t2s_version: str = __version__


class EvalNote(BaseModel):
    evals: list[EvalRecord] = Field(default_factory=list)
    gate: GateRecord | None = None

    def has_passing_gate(self) -> bool:
        return self.gate is not None and self.gate.passed

    def find(self, key: tuple) -> EvalRecord | None:
        """The complete record with this :meth:`EvalRecord.cache_key`, if any."""
        for record in self.evals:
            if record.cache_key() == tuple(key) and record.complete:
                return record
        return None

    def upsert(self, record: EvalRecord) -> None:
        """Add ``record``, replacing one with the same cache key."""
        self.evals = [r for r in self.evals if r.cache_key() != record.cache_key()] + [record]


class ReviewNote(BaseModel):
    verdict: Literal["approve", "reject"]
    comment: str = ""
    reviewer: str = ""
    created_at: str = Field(default_factory=_now)


class NoteFormatError(T2SError):
    """A note exists but is not in the format this t2s understands."""


def parse_eval_note(text: str, where: str = "note") -> EvalNote:
    try:
        return EvalNote.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as err:
        raise NoteFormatError(
            f"{where}: not a t2s evaluation note ({err.__class__.__name__}: {str(err).splitlines()[0]})"
        ) from None


def read_eval_note(store, rev: str) -> EvalNote | None:
    text = store.read_note(EVAL_NOTES, rev)
    return parse_eval_note(text, f"eval note on {rev}") if text else None


def write_eval_note(store, rev: str, note: EvalNote) -> None:
    store.add_note(EVAL_NOTES, rev, _eval_note_text(note))


def update_eval_note(store, rev: str, change: Callable[[EvalNote], None]) -> EvalNote:
    """Change the eval note on ``rev`` in place (an absent or unreadable note starts
    empty), holding the notes lock from read to write: evaluations finishing at the
    same time on one commit keep each other's records."""
    result: list[EvalNote] = []

    def edit(text: str | None) -> str:
        try:
            note = parse_eval_note(text, f"eval note on {rev}") if text else EvalNote()
        except NoteFormatError:
            note = EvalNote()  # an unreadable note is replaced, not merged into
        change(note)
        result.append(note)
        return _eval_note_text(note)

    store.update_note(EVAL_NOTES, rev, edit)
    return result[0]


def _eval_note_text(note: EvalNote) -> str:
    return note.model_dump_json(indent=2) + "\n"
