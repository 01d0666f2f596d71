"""Provenance trailers: what a t2s commit is and where it came from.

Every commit t2s writes ends with ``T2S-*`` trailers; :class:`Provenance` is their one
typed model. Writers build one (``Provenance.for_patch(...)``) and pass
``.trailers()`` to the commit; readers call ``Provenance.of(message_or_trailers)``.
The trailer keys and their order per kind of commit are the on-disk format: they
are written exactly as earlier versions wrote them.

| key | field | on |
|---|---|---|
| ``T2S-Run`` | ``run`` | every t2s commit |
| ``T2S-Patch`` | ``patch`` | a patch (its number); a sequential step (the numbers it folded, comma-separated) |
| ``T2S-Task`` / ``T2S-Trajectory`` / ``T2S-Outcome`` | ``task`` / ``trajectory`` / ``outcome`` | a patch |
| ``T2S-Analyst`` / ``T2S-Validated`` | ``analyst`` / ``validated`` (yes, no, n/a) | a patch |
| ``T2S-Model`` | ``model`` | a patch or a merge |
| ``T2S-Merge-Level`` / ``T2S-Merge-Group`` | ``merge_level`` / ``merge_group`` | a merge |
| ``T2S-Support`` | ``support`` (distinct trajectories behind it) | a merge |
| ``T2S-Strategy`` | ``strategy`` (``sequential``) | a sequential step |
| ``T2S-Merge-Fallback`` | ``merge_fallback`` (``git``, ``union``) | a merge git made when the merger failed |
| ``T2S-Release`` / ``T2S-Candidate`` / ``T2S-Baseline`` | ``release`` / ``candidate`` / ``baseline`` | a release merge |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel

from t2s.gitstore.store import parse_trailers

#: field -> trailer key, in the order a patch commit writes them.
KEYS: dict[str, str] = {
    "run": "T2S-Run",
    "patch": "T2S-Patch",
    "task": "T2S-Task",
    "trajectory": "T2S-Trajectory",
    "outcome": "T2S-Outcome",
    "analyst": "T2S-Analyst",
    "validated": "T2S-Validated",
    "model": "T2S-Model",
    "merge_level": "T2S-Merge-Level",
    "merge_group": "T2S-Merge-Group",
    "support": "T2S-Support",
    "strategy": "T2S-Strategy",
    "merge_fallback": "T2S-Merge-Fallback",
    "release": "T2S-Release",
    "candidate": "T2S-Candidate",
    "baseline": "T2S-Baseline",
}
FIELDS = {key: field for field, key in KEYS.items()}

Kind = Literal["patch", "merge", "release", "record", "other"]

#: The order each kind of commit writes its trailers in (part of the format).
_ORDER: dict[str, tuple[str, ...]] = {
    "patch": ("run", "patch", "task", "trajectory", "outcome", "analyst", "validated", "model"),
    "merge": ("run", "merge_level", "merge_group", "support", "strategy", "model", "merge_fallback", "patch"),
    "release": ("run", "release", "candidate", "baseline"),
    "record": ("run",),
    "other": tuple(KEYS),
}


class Provenance(BaseModel):
    """The ``T2S-*`` trailers of one commit (None: the trailer is absent)."""

    run: str | None = None
    patch: str | None = None
    task: str | None = None
    trajectory: str | None = None
    outcome: str | None = None
    analyst: str | None = None
    validated: str | None = None
    model: str | None = None
    merge_level: int | None = None
    merge_group: str | None = None
    support: int | None = None
    strategy: str | None = None
    merge_fallback: str | None = None
    release: str | None = None
    candidate: str | None = None
    baseline: str | None = None

    # ------------------------------------------------------------------ kinds
    @property
    def kind(self) -> Kind:
        """What the commit is, judged by its trailers alone."""
        if self.release is not None:
            return "release"
        if self.merge_level is not None or self.merge_group is not None:
            return "merge"
        if self.patch is not None:
            return "patch"
        if self.run is not None:
            return "record"
        return "other"

    @property
    def patches(self) -> list[str]:
        """The patch numbers named by ``T2S-Patch`` (several on a sequential step)."""
        return [p.strip() for p in (self.patch or "").split(",") if p.strip()]

    # ------------------------------------------------------------------ writing
    def trailers(self) -> list[tuple[str, str]]:
        """``(key, value)`` pairs in this kind's order, absent fields left out."""
        return [
            (KEYS[name], " ".join(str(getattr(self, name)).split()))
            for name in _ORDER[self.kind]
            if getattr(self, name) is not None
        ]

    @classmethod
    def for_record(cls, run: str) -> Provenance:
        return cls(run=run)

    @classmethod
    def for_patch(
        cls,
        *,
        run: str,
        patch: str,
        task: str,
        trajectory: str,
        outcome: str,
        analyst: str,
        validated: str,
        model: str | None = None,
    ) -> Provenance:
        return cls(
            run=run,
            patch=patch,
            task=task or "-",
            trajectory=trajectory,
            outcome=outcome,
            analyst=analyst,
            validated=validated,
            model=model or None,
        )

    @classmethod
    def for_merge(
        cls,
        *,
        run: str,
        level: int,
        group: str,
        support: int,
        model: str | None = None,
        strategy: str | None = None,
        fallback: str | None = None,
        patches: Iterable[str] = (),
    ) -> Provenance:
        numbers = ", ".join(patches)
        return cls(
            run=run,
            merge_level=level,
            merge_group=group,
            support=support,
            strategy=strategy,
            model=model or None,
            merge_fallback=fallback,
            patch=numbers or None,
        )

    @classmethod
    def for_release(cls, *, version: str, candidate: str, baseline: str, run: str | None = None) -> Provenance:
        return cls(run=run, release=version, candidate=candidate, baseline=baseline)

    # ------------------------------------------------------------------ reading
    @classmethod
    def of(cls, source: str | Iterable[tuple[str, str]]) -> Provenance:
        """Parse a commit message, or its ``(key, value)`` trailers. Unknown keys are
        ignored; a number that does not parse is left out rather than guessed."""
        pairs = parse_trailers(source) if isinstance(source, str) else list(source)
        values: dict[str, object] = {}
        for key, value in pairs:
            name = FIELDS.get(key)
            if name is None or name in values:
                continue
            if name in ("merge_level", "support"):
                try:
                    values[name] = int(value)
                except ValueError:
                    continue
            else:
                values[name] = value
        return cls.model_validate(values)
