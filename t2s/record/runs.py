"""The run record: ``refs/t2s/runs/<run>``, an append-only commit chain.

Its tree holds everything a run produced (``manifest.json``, trajectories, analyses,
merge reports, ledgers); each stage appends a commit as its work finishes. Because
the record is plain git, a run is resumable (what is in the tree is done) and
shareable with ``git push``.

Layout of the tree::

    manifest.json                 RunManifest: S0, skill folder, suite, stages
    trajectories/<id>.json        one agent trajectory each (t2s.agent.episode)
    artifacts/<id>/...            output workbooks and scripts of a trajectory
    analyses/<id>.json            analyst transcript and report per trajectory
    patches/<nnnn>.json           patch outcome (accepted -> branch, or rejected + why)
    merges/<level-group>.json     merge reports
    ledger/<phase>.json           token and cost ledger per phase
"""

from __future__ import annotations

import builtins
import contextlib
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, Field, ValidationError

from t2s import __version__
from t2s.errors import RefConflict, T2SError, UsageError
from t2s.gitstore.store import ZERO_SHA, GitStore, RefUpdate
from t2s.llm.ledger import Ledger, accumulate
from t2s.record import refs
from t2s.record.provenance import Provenance

RUN_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MANIFEST = "manifest.json"
_CAS_ATTEMPTS = 20


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StageState(BaseModel):
    status: str = "pending"  # pending | running | done | errored (done, some work errored) | failed
    started_at: str | None = None
    finished_at: str | None = None
    summary: dict[str, Any] = Field(default_factory=dict)


class RunManifest(BaseModel):
    schema_version: int = 1
    run: str
    s0: str
    skill_dir: str
    suite: str = ""
    split: str = ""
    created_at: str = Field(default_factory=_now)
    t2s_version: str = __version__
    #: Model settings per role at the time of the run (never API keys).
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)
    stages: dict[str, StageState] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)


class StageProgress(Protocol):
    """What a long stage reports as it goes (the CLI draws a live bar:
    :mod:`t2s.commands.progress`). ``start`` once per batch of work, then per item
    ``begin(label)`` as it starts and ``done(item, label)`` as it ends (``item`` is
    the stage's result for it: a Trajectory, a PatchRecord...). Calls may come from
    several threads."""

    def start(self, total: int, already_done: int) -> None: ...

    def begin(self, label: str) -> None: ...

    def done(self, item: Any, label: str = "") -> None: ...


class SpendWriter:
    """Writes a stage's results together with what they cost: each :meth:`write` adds
    the model spending since the previous one (:meth:`t2s.llm.ledger.Ledger.take_new`)
    to the stage's ledger file in the same commit. So a run killed mid-stage (kill -9)
    and resumed has a ledger that adds up with its recorded results."""

    def __init__(self, record: RunRecord, ledger: Ledger, path: str):
        self.record = record
        self.ledger = ledger
        self.path = path
        # read-add-write of the ledger file must not interleave between this stage's writers
        self._lock = threading.Lock()

    def write(self, files: dict[str, Any], subject: str, body: str = "") -> str:
        """``record.write(files, subject, body)`` with the ledger file brought up to date."""
        with self._lock:
            files = {**files, self.path: accumulate(self.record.read_json(self.path), self.ledger.take_new())}
            return self.record.write(files, subject, body)


def check_run_name(name: str) -> str:
    if not RUN_NAME_RE.match(name or ""):
        raise UsageError(f"run name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


class RunRecord:
    """Read and append to one run's record. Thread-safe within a process; CAS across processes."""

    def __init__(self, store: GitStore, run: str, *, shard: str | None = None):
        self.store = store
        self.run = check_run_name(run)
        #: ``<K>-of-<N>`` when this is one shard's part of the run (``t2s.record.shards``).
        self.shard = shard
        self.ref = refs.run_record(run)
        self._lock = threading.Lock()

    def shard_part(self, stage: str, shard: str) -> RunRecord:
        """Shard ``shard``'s part of this run for ``stage``: a record of its own
        (``refs/t2s/shards/<run>/<stage>/<K>-of-<N>``), forked from the run record where
        one exists, so the shard reads what the run holds and writes only its own ref."""
        part = self.shard_record(stage, shard)
        main = self.head()
        if main and part.head() is None:
            with contextlib.suppress(RefConflict):  # another process of this shard forked it first
                self.store.update_refs([RefUpdate(part.ref, main, ZERO_SHA)])
        return part

    def shard_record(self, stage: str, shard: str) -> RunRecord:
        """Shard ``shard``'s part of this run for ``stage`` as it stands, without forking
        it (it does not exist until the shard ran): for reading, and for what a shard
        adds to its own part after its stage (its estimate)."""
        part = RunRecord(self.store, self.run, shard=shard)
        part.ref = refs.shard_record(self.run, stage, shard)
        return part

    # ------------------------------------------------------------- reading
    def exists(self) -> bool:
        return self.store.rev_parse(self.ref) is not None

    def head(self) -> str | None:
        return self.store.rev_parse(self.ref)

    def read(self, path: str) -> bytes | None:
        head = self.head()
        return self.store.read_blob(head, path) if head else None

    def read_json(self, path: str) -> Any:
        raw = self.read(path)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError) as err:  # UnicodeDecodeError is a ValueError
            raise T2SError(
                f"{self.ref}:{path} is not valid JSON ({err})",
                hint="the run record was changed outside t2s; start a new run",
            ) from None

    def read_model(self, path: str, model: type[M]) -> M | None:
        """The record's file ``path`` as a ``model`` (None when absent); a clear error
        when it is not valid JSON or not that model."""
        raw = self.read(path)
        return None if raw is None else parse_record(model, raw, f"{self.ref}:{path}")

    def read_folder(self, folder: str) -> dict[str, bytes]:
        """Every file under ``folder`` (keyed by path from the record root), all read at
        one commit of the record and in one exchange with git."""
        head = self.head()
        if not head or not self.store.subtree(head, folder):
            return {}
        return {f"{folder}/{rel}": data for rel, data in self.store.read_files(head, folder).items()}

    def list(self, folder: str) -> list[str]:
        """Paths (relative to the record root) of files under ``folder``, sorted."""
        head = self.head()
        if not head or not self.store.subtree(head, folder):
            return []
        return sorted(e.path for e in self.store.list_tree(head, folder))

    def manifest(self) -> RunManifest:
        data = self.read_json(MANIFEST)
        if data is None:
            raise UsageError(f"run {self.run!r} does not exist", hint="start it with `t2s rollout --run NAME`")
        try:
            return RunManifest.model_validate(data)
        except ValidationError as err:
            problem = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in err.errors()[:3]
            )
            raise T2SError(
                f"{self.ref}:{MANIFEST} is not a t2s run manifest ({problem})",
                hint="the run record was changed outside t2s; start a new run",
            ) from None

    def stage_lock(self, stage: str):
        """One process at a time per stage of a run (a context manager): a second
        ``t2s <stage>`` on the same run fails at once, where it would otherwise number
        patches alike or race for the same branches."""
        return self.store.exclusive(
            f"run-{self.run}-{stage}" + (f"-{self.shard}" if self.shard else ""),
            f"another `t2s {stage}` is working on run {self.run!r}",
            hint="wait for it to finish; the lock goes away with its process",
        )

    # ------------------------------------------------------------- writing
    def create(self, manifest: RunManifest) -> str:
        """Start the record; refuses if the run already exists."""
        if self.exists():
            raise UsageError(f"run {self.run!r} already exists")
        return self.write({MANIFEST: _dump(manifest)}, f"t2s run {self.run}: start")

    def write(
        self,
        files: Mapping[str, bytes | str | BaseModel | dict | builtins.list | None],  # `list` is a method here
        subject: str,
        body: str = "",
        *,
        refs: Sequence[RefUpdate] = (),
    ) -> str:
        """Append one commit setting (or removing, with None) ``files``.

        ``refs`` move in the same all-or-nothing transaction as the record (so a merge
        branch never exists without its report). Writers touching disjoint paths never
        lose each other's work: a concurrent append makes the compare-and-swap fail,
        and the write is redone on top.
        """
        encoded = {path: (None if value is None else _encode(value)) for path, value in files.items()}
        with self._lock:
            for _ in range(_CAS_ATTEMPTS):
                old = self.store.rev_parse(self.ref)
                tree = self.store.build_tree(old, encoded)
                commit = self.store.commit(
                    tree, [old] if old else [], subject, body, Provenance.for_record(self.run).trailers()
                )
                try:
                    self.store.update_refs([RefUpdate(self.ref, commit, old or ZERO_SHA), *refs])
                    return commit
                except RefConflict:
                    if self.store.rev_parse(self.ref) == old:
                        raise  # one of `refs` conflicted, not the record: a real conflict
        raise RefConflict(f"run record {self.ref} kept changing under us; try again")

    def update_manifest(self, change: Callable[[RunManifest], None], subject: str) -> RunManifest:
        """Read-modify-write the manifest; redone on top if another writer got there first."""
        with self._lock:
            for _ in range(_CAS_ATTEMPTS):
                manifest = self.manifest()
                change(manifest)
                try:
                    self.store.append_commit(
                        self.ref, {MANIFEST: _dump(manifest)}, subject, "", Provenance.for_record(self.run).trailers()
                    )
                    return manifest
                except RefConflict:
                    continue
        raise RefConflict(f"run record {self.ref} kept changing under us; try again")

    def set_stage(self, stage: str, status: str, summary: dict[str, Any] | None = None) -> RunManifest:
        def change(manifest: RunManifest) -> None:
            state = manifest.stages.setdefault(stage, StageState())
            state.status = status
            if status == "running" and not state.started_at:
                state.started_at = _now()
            if status in ("done", "failed"):
                state.finished_at = _now()
            if summary is not None:
                state.summary = summary

        return self.update_manifest(change, f"t2s run {self.run}: {stage} {status}")


M = TypeVar("M", bound=BaseModel)


def parse_record(model: type[M], raw: bytes | str, where: str) -> M:
    """``raw`` JSON as a ``model``: a :class:`T2SError` naming ``where`` when it is not."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top level)'}: {e['msg']}" for e in err.errors()[:3])
        raise T2SError(
            f"{where} is not a valid {model.__name__} ({problem})", hint="the run record was changed outside t2s"
        ) from None


def list_runs(store: GitStore) -> list[str]:
    return [ref[len(refs.RUNS) :] for ref in store.refs(refs.RUNS)]


def _dump(model: BaseModel) -> bytes:
    return (model.model_dump_json(indent=2) + "\n").encode()


def _encode(value: bytes | str | BaseModel | dict | list) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, BaseModel):
        return _dump(value)
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()
