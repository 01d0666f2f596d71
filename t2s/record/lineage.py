"""The lineage of a multi-round evolve (``t2s evolve --rounds N``): round ``n`` is the
run ``<run>-r<n>``; its S0 is the previous round's candidate. Read from the run records,
the candidate branches and the eval notes alone, so ``t2s log``, ``t2s report`` and a
resumed evolve all see the same rounds.

The validation score of a round is read from its root merge record when the merge
stage recorded one (``validation.score`` or ``validation_score``: the "every merged
commit is evaluated" feature); otherwise a round has a held-out score only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from t2s.errors import T2SError
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.lessons import MERGES_DIR
from t2s.record.notes import GateRecord, NoteFormatError, read_eval_note
from t2s.record.runs import RunRecord


@dataclass
class Round:
    """One round: its run, S0, candidate, the gate's verdict and what it added."""

    number: int
    run: str
    s0: str
    candidate: str | None = None
    gate: GateRecord | None = None
    validation: float | None = None
    added: list[str] = field(default_factory=list)

    @property
    def heldout(self) -> float | None:
        return self.gate.candidate_score if self.gate else None

    @property
    def passed(self) -> bool | None:
        return self.gate.passed if self.gate else None

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "run": self.run,
            "s0": self.s0,
            "candidate": self.candidate,
            "gate": None if self.gate is None else {"passed": self.gate.passed, "reason": self.gate.reason},
            "baseline_score": self.gate.baseline_score if self.gate else None,
            "heldout_score": self.heldout,
            "validation_score": self.validation,
            "added": self.added,
        }


def _root_merge(record: RunRecord) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for raw in record.read_folder(MERGES_DIR).values():
        try:
            data = json.loads(raw)
        except ValueError:
            continue
        if data.get("status") == "merged" and (best is None or data.get("level", 0) > best.get("level", 0)):
            best = data
    return best


def _validation(merge: dict[str, Any] | None) -> float | None:
    if not merge:
        return None
    value = merge.get("validation_score")
    if value is None and isinstance(merge.get("validation"), dict):
        value = merge["validation"].get("score")
    return float(value) if isinstance(value, int | float) else None


def rounds_of(store: GitStore, run: str) -> list[Round]:
    """The rounds of ``run`` that exist, in order (an empty list: not a multi-round run)."""
    out: list[Round] = []
    number = 1
    while True:
        name = refs.round_run(run, number)
        record = RunRecord(store, name)
        if not record.exists():
            return out
        try:
            manifest = record.manifest()
        except T2SError:
            return out
        this = Round(number, name, manifest.s0)
        this.candidate = store.rev_parse(refs.candidate_branch(name))
        if this.candidate:
            try:
                note = read_eval_note(store, this.candidate)
            except NoteFormatError:
                note = None
            if note is not None and note.gate is not None and note.gate.baseline == manifest.s0:
                this.gate = note.gate
        merge = _root_merge(record)
        this.validation = _validation(merge)
        this.added = [str(lesson.get("text", ""))[:120] for lesson in (merge or {}).get("lessons", [])]
        out.append(this)
        number += 1
