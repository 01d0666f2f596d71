"""What is this commit? One answer, from its trailers, branches and run record.

Blame, review, bisect and release's changelog all ask it; they call
:func:`describe_commit` instead of reading ``T2S-*`` trailers themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from t2s.errors import T2SError
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.lessons import MERGES_DIR, PATCHES_DIR
from t2s.record.provenance import Provenance
from t2s.record.runs import RunRecord

Kind = Literal["patch", "merge", "release", "record", "commit"]
_TRAILER_LINE = re.compile(r"^[A-Za-z0-9-]+: ")


@dataclass
class CommitDescription:
    """A commit as t2s understands it. ``kind`` is judged from the trailers first, then
    from the t2s branches that point at it (a commit made by another tool on a patch
    branch is still that patch), then from its parents (any other merge is a merge)."""

    store: GitStore = field(repr=False)
    commit: str
    kind: Kind
    message: str
    provenance: Provenance
    #: t2s branches at this commit, short names (``t2s/r1/patch/0007``).
    branches: list[str]
    run: str | None
    #: The patch number, for a patch commit.
    patch: str | None = None
    #: The merge's name (``L1-02``), for a merge commit.
    merge: str | None = None

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""

    @property
    def body_lines(self) -> list[str]:
        """The message body's non-empty lines, trailers left out."""
        body = self.message.split("\n\n", 1)[1] if "\n\n" in self.message else ""
        return [line for line in body.splitlines() if line.strip() and not _TRAILER_LINE.match(line)]

    @cached_property
    def patch_record(self) -> dict[str, Any] | None:
        """The patch's record (``patches/<nnnn>.json`` of the run), if it can be read."""
        return self.run_json(f"{PATCHES_DIR}/{self.patch}.json") if self.patch else None

    @cached_property
    def merge_report(self) -> dict[str, Any] | None:
        """The merge's report (``merges/<name>.json`` of the run), if it can be read."""
        return self.run_json(f"{MERGES_DIR}/{self.merge}.json") if self.merge else None

    def trajectory_path(self, trajectory: str) -> str | None:
        """Where a trajectory of this commit's run is, as git names it."""
        return refs.record_path(self.run, f"trajectories/{trajectory}.json") if self.run else None

    def run_json(self, path: str) -> Any:
        if not self.run:
            return None
        try:
            record = RunRecord(self.store, self.run)
            data = record.read_json(path) if record.exists() else None
        except (T2SError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def branches_at(store: GitStore, commit: str) -> list[str]:
    """t2s branch names (``t2s/<run>/...``) that point at ``commit``."""
    return [refs.short(ref) for ref, sha in store.refs(refs.BRANCHES).items() if sha == commit]


def run_of(store: GitStore, rev: str) -> str | None:
    """The run a commit belongs to (its ``T2S-Run`` trailer), if any."""
    return Provenance.of(store.commit_message(rev)).run


def run_s0(store: GitStore, rev: str) -> str | None:
    """S0 of the run a commit belongs to, if the run record can be read."""
    run = run_of(store, rev)
    if not run:
        return None
    try:
        record = RunRecord(store, run)
        return record.manifest().s0 if record.exists() else None
    except T2SError:
        return None


def describe_commit(store: GitStore, commit: str) -> CommitDescription:
    """Describe ``commit`` (a full id): see :class:`CommitDescription`."""
    message = store.commit_message(commit)
    prov = Provenance.of(message)
    branches = branches_at(store, commit)
    by_branch = {branch_kind: ref for ref in branches if (branch_kind := refs.branch_kind(ref))}
    run = prov.run
    kind: Kind = "commit"
    patch = merge = None
    if prov.kind == "release":
        kind = "release"
    elif prov.kind == "patch" or "patch" in by_branch:
        kind = "patch"
        parsed = refs.parse_patch_branch(by_branch["patch"]) if "patch" in by_branch else None
        patch = prov.patch or (parsed.number if parsed else None)
        run = run or (parsed.run if parsed else None)
    elif prov.kind == "merge" or "merge" in by_branch or len(store.parents(commit)) > 1:
        kind = "merge"
        parsed_merge = refs.parse_merge_branch(by_branch["merge"]) if "merge" in by_branch else None
        merge = prov.merge_group or (parsed_merge[1] if parsed_merge else None)
        run = run or (parsed_merge[0] if parsed_merge else None)
    elif prov.kind == "record":
        kind = "record"
    return CommitDescription(
        store=store,
        commit=commit,
        kind=kind,
        message=message,
        provenance=prov,
        branches=branches,
        run=run,
        patch=patch,
        merge=merge,
    )
