"""Held-out evaluation, its cache in git notes, and the gate.

``evaluate(ctx, REV)`` materialises the skill folder at REV (``git archive``, nothing
is checked out), runs the agent on the split with it, scores every task, and writes an
:class:`~t2s.record.notes.EvalRecord` into the note on REV in ``refs/notes/t2s/eval``.

**Cache.** Two evaluations are interchangeable when they share the *cache key*:
(skill subtree hash, suite content hash of the split, split name, agent fingerprint
hash, seeds). Before running anything, ``evaluate`` looks for a record with the same
key in REV's own note, then in every other note of ``refs/notes/t2s/eval`` (one
``git cat-file --batch`` read); a hit is copied onto REV's note (``cached_from`` names
the source) and no model is called. So a commit that does not change the skill (a
release merge, a README edit, a re-run of bisect) costs nothing.

**Errors are not results.** When any task *errors* (the model endpoint failed, a
crash: :mod:`t2s.faults`), :func:`evaluate` writes nothing and raises
:class:`EvalErrored` (exit 3) with the per-task outcomes and their causes; records of
older t2s versions that hold errored tasks are never reused (:meth:`EvalNote.find`).
So an endpoint outage cannot poison the cache, and the gate never judges one.

**One evaluation at a time per cache key.** The run holds an inter-process lock named
after the key; a second ``evaluate`` of the same skill, suite, split, agent and seeds
waits for it, then reuses the note it wrote (or runs itself if the first one errored).

The evaluation context (suite, split, agent fingerprint) is :mod:`t2s.evaluation.context`;
the runner is :mod:`t2s.evaluation.runner`; the gate is :mod:`t2s.evaluation.gate`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from t2s.errors import UsageError
from t2s.evaluation.context import EvalContext
from t2s.evaluation.kept import keep_trajectories as keep, key_hash
from t2s.evaluation.records import make_record as make_record  # where it always was
from t2s.evaluation.runner import Runner, RunRequest, evaluate_tasks
from t2s.evaluation.shards import collect_eval, run_shard
from t2s.faults import ErrorCause, WorkErrored, describe, tally
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.notes import (
    EVAL_NOTES,
    EvalRecord,
    NoteFormatError,
    parse_eval_note,
    read_eval_note,
    update_eval_note,
)
from t2s.record.runs import StageProgress
from t2s.record.shards import Shard
from t2s.sandbox.leftovers import scratch_dir
from t2s.skill.repo import BrokenSkill, require_clean_skill


class Unevaluable(UsageError):
    """The skill at this revision cannot be evaluated (missing, or it does not lint).

    ``t2s eval --exit-code-below`` maps this to exit status 125, which makes
    ``git bisect run`` skip the commit.
    """


# ---------------------------------------------------------------------- context


# ---------------------------------------------------------------------- runner


# ---------------------------------------------------------------------- cache
@dataclass
class EvalOutcome:
    """One evaluation of a commit: its :class:`EvalRecord` (score, per-task results),
    and whether the record was run now or found cached in an eval note."""

    commit: str
    record: EvalRecord
    #: True when no agent ran: the record came from a note.
    cached: bool = False
    #: Where a cached record came from (the commit whose note held it).
    source: str | None = None
    #: "3 of 20 tasks" when only part of the split ran (``--limit``/``--task``): not noted.
    subset: str = ""

    @property
    def ran(self) -> bool:
        """True when the agent ran now (the record is not from a note)."""
        return not self.cached


def find_cached(store: GitStore, key: tuple, *, prefer: str | None = None) -> tuple[str, EvalRecord] | None:
    """A record with cache key ``key`` in any eval note: ``(commit, record)`` or None.

    ``prefer``'s own note is looked at first. Notes that do not parse are ignored here
    (they are reported when read directly).
    """
    if prefer:
        try:
            note = read_eval_note(store, prefer)
        except NoteFormatError:
            note = None
        if note is not None and (hit := note.find(key)) is not None:
            return prefer, hit
    listing = store.list_notes(EVAL_NOTES)
    if not listing:
        return None
    blobs = store.read_objects(listing.values())
    best: tuple[str, EvalRecord] | None = None
    for commit, blob in sorted(listing.items()):
        raw = blobs.get(blob)
        if raw is None:
            continue
        try:
            note = parse_eval_note(raw.decode("utf-8", errors="replace"))
        except NoteFormatError:
            continue
        hit = note.find(key)
        if hit is not None and (best is None or (best[1].cached_from and not hit.cached_from)):
            best = (commit, hit)
    return best


def _record_on(store: GitStore, commit: str, record: EvalRecord) -> None:
    update_eval_note(store, commit, lambda note: note.upsert(record))


class EvalErrored(WorkErrored):
    """Some tasks of an evaluation errored: nothing was written (see the module doc).
    ``outcome`` holds the per-task results of the attempt, for display only."""

    def __init__(self, outcome: EvalOutcome):
        record = outcome.record
        errored = record.errored_tasks
        causes = tally(v.cause or ErrorCause(kind="error", message=v.error or "") for v in errored)
        super().__init__(
            describe(causes, len(errored), record.total, "task runs"),
            causes=causes,
            hint="no result was recorded; fix the cause and run the same command again",
        )
        self.outcome = outcome


def _reuse(store: GitStore, commit: str, key: tuple) -> EvalOutcome | None:
    """The cached result for ``key`` as ``commit``'s outcome (copied onto its note)."""
    hit = find_cached(store, key, prefer=commit)
    if hit is None:
        return None
    source, record = hit
    if source != commit:
        copy = record.model_copy(update={"cached_from": source})
        _record_on(store, commit, copy)
        record = copy
    return EvalOutcome(commit, record, cached=True, source=source)


def eval_lock(store: GitStore, ctx: EvalContext, tree: str, on_wait: Callable[[str], None] | None = None):
    """The inter-process lock of one cache key (a context manager): a second
    evaluation of the same skill, suite, split, agent and seeds waits for the first."""
    key = ctx.key(tree)
    name = "eval-" + hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
    busy = (
        f"waiting for another `t2s eval` of this skill (tree {tree[:12]}) on "
        f"{ctx.suite_name}/{ctx.split} with the same agent to finish"
    )
    return store.exclusive(name, busy, wait=on_wait or (lambda _message: None))


def check_evaluable(ctx: EvalContext, commit: str) -> str:
    """The skill's subtree hash at ``commit``; :class:`Unevaluable` if it cannot run."""

    try:
        return require_clean_skill(ctx.store, ctx.config, commit, ctx.skill_dir)
    except BrokenSkill as err:
        raise Unevaluable(err.message, hint=err.hint) from None


def evaluate(
    ctx: EvalContext,
    rev: str,
    *,
    use_cache: bool = True,
    runner: Runner | None = None,
    workdir: Path | None = None,
    on_wait: Callable[[str], None] | None = None,
    progress: StageProgress | None = None,
    shard: Shard | None = None,
) -> EvalOutcome:
    """Evaluate the skill at ``rev`` (or reuse a cached result) and note it on ``rev``.

    Raises :class:`EvalErrored` (and writes nothing) when any task errored. A context
    narrowed to part of the split (``ctx.subset``) always runs and notes nothing.
    ``progress`` is told as each task run starts and ends. ``shard`` runs only its
    tasks and notes the partial record in its own namespace; without it, an evaluation
    run in shards is collected here, and a partial one is refused
    (:class:`t2s.record.shards.MissingShards`): see :mod:`t2s.evaluation.shards`.
    ``on_wait(message)`` is called when another evaluation of the same cache key holds
    the lock (this one then waits for it, and reuses its result unless ``use_cache``
    is False).
    """
    store = ctx.store
    commit = store.resolve(rev)
    tree = store.subtree(commit, ctx.skill_dir)
    if not tree:
        raise Unevaluable(f"{rev} ({commit[:12]}) has no skill folder {ctx.skill_dir}")
    key = ctx.key(tree)
    use_cache = use_cache and not ctx.subset  # a part of the split is no result for the whole
    if use_cache and (hit := _reuse(store, commit, key)) is not None:
        return hit
    check_evaluable(ctx, commit)
    if shard is not None:
        record, cached = run_shard(ctx, commit, tree, shard, use_cache=use_cache, runner=runner, workdir=workdir)
        if not record.complete:
            raise EvalErrored(EvalOutcome(commit, record, cached=False))
        return EvalOutcome(commit, record, cached=cached, source=commit if cached else None)
    if use_cache and (joined := collect_eval(ctx, commit, tree)).record is not None:
        return EvalOutcome(commit, joined.record, cached=True, source=commit)
    with eval_lock(store, ctx, tree, on_wait):
        if use_cache and (hit := _reuse(store, commit, key)) is not None:
            return hit  # the evaluation we waited for wrote it
        runner = runner or evaluate_tasks
        started = time.monotonic()
        with scratch_dir("t2s-eval-", workdir) as tmp:
            skill_name = PurePosixPath(ctx.skill_dir).name
            skill_path = store.archive(commit, ctx.skill_dir, Path(tmp) / "skill" / skill_name)
            work = Path(tmp) / "work"
            work.mkdir()
            result = runner(RunRequest(ctx, commit, skill_path, work, list(ctx.task_ids), ctx.seeds, progress))
        duration = time.monotonic() - started
        record = make_record(ctx, commit, tree, result, duration)
        if not record.complete:
            raise EvalErrored(EvalOutcome(commit, record, cached=False))
        if not ctx.subset:
            record.trajectories = keep_trajectories(store, commit, key, result.trajectories)
            _record_on(store, commit, record)
    return EvalOutcome(commit, record, cached=False, subset=ctx.subset)


def keep_trajectories(store: GitStore, commit: str, key: tuple, trajectories: dict[str, str]) -> str | None:
    """Keep an evaluation's trajectories under their own ref (:mod:`t2s.evaluation.kept`)
    and return the ref, which the eval note names; None when the runner gave none."""
    return keep(store, refs.eval_trajectories(commit, key_hash(key)), trajectories, commit[:12])


# ---------------------------------------------------------------------- gate


# ---------------------------------------------------------------------- reports
