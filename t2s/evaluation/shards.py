"""Sharded evaluations: ``t2s eval --shard K/N`` and the collect that joins them.

A shard runs the tasks of the split whose stable hash falls in its bucket
(:class:`t2s.record.shards.Shard`, by task id, so all seeds of a task stay together) and
notes its partial :class:`~t2s.record.notes.EvalRecord` on the commit in a notes
namespace of its own, ``refs/notes/t2s/eval-shard-<K>-of-<N>``, and keeps its trajectories under a ref of its
own (:func:`t2s.record.refs.eval_shard_trajectories`): shards never race on a ref, and
``t2s push`` (or ``git push``/``git fetch`` of ``refs/notes/*`` and
``refs/t2s/eval-trajectories/*``) carries them.

:func:`collect_eval` joins the shards of one evaluation (same commit, skill tree,
suite, split, agent and seeds) into the record one unsharded ``t2s eval`` writes: the
same verdicts in the same order, the same score, in the same note
(``refs/notes/t2s/eval``), naming the same ref of kept trajectories, which holds all
the shards' trajectories. :func:`t2s.evaluation.evaluate.evaluate` collects by itself
when every shard is there, and refuses (:class:`~t2s.record.shards.MissingShards`) when
some are not, so the gate never judges a partial evaluation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from t2s.evaluation.context import EvalContext
from t2s.evaluation.kept import keep_trajectories, key_hash, read_kept
from t2s.evaluation.records import make_record
from t2s.evaluation.runner import Runner, RunRequest, RunResult, evaluate_tasks
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.notes import EVAL_NOTES, EvalNote, EvalRecord, NoteFormatError, parse_eval_note, update_eval_note
from t2s.record.shards import MissingShards, Shard, ShardMismatch, labels_by_n
from t2s.sandbox.leftovers import scratch_dir

#: What the shards of one evaluation must agree on, by the name a message gives it.
_AGREE = {
    "suite hash": "suite_hash",
    "agent settings": "agent_hash",
    "seeds": "seeds",
    "t2s version": "t2s_version",
    "skill folder": "skill_dir",
}


@dataclass
class EvalCollect:
    """What :func:`collect_eval` found and wrote."""

    commit: str
    shards: int = 0
    record: EvalRecord | None = None
    #: True when the note was written now; False when it already held this record.
    written: bool = False

    def to_dict(self) -> dict:
        return {
            "commit": self.commit,
            "shards": self.shards,
            "written": self.written,
            "score": self.record.score if self.record else None,
            "passed": self.record.passed if self.record else None,
            "total": self.record.total if self.record else None,
        }


def shard_notes(store: GitStore) -> dict[str, str]:
    """``<K>-of-<N>`` -> notes ref, for every shard notes namespace in the repository."""
    found = {}
    for ref in store.refs(refs.NOTES):
        label = refs.label_of_eval_shard_notes(ref)
        if label and refs.parse_shard_label(label):
            found[label] = ref
    return found


def _shard_record(store: GitStore, ref: str, commit: str, ctx: EvalContext, tree: str) -> EvalRecord | None:
    """The latest partial record of this commit's skill on ctx's suite and split in one shard's notes."""
    text = store.read_note(ref, commit)
    if not text:
        return None
    try:
        note = parse_eval_note(text, f"{ref} on {commit[:12]}")
    except NoteFormatError:
        return None
    mine = [r for r in note.evals if r.split == ctx.split and r.suite == ctx.suite_name and r.skill_tree == tree]
    return max(mine, key=lambda r: r.created_at) if mine else None


def noted_part(ctx: EvalContext, commit: str, tree: str, shard: Shard) -> EvalRecord | None:
    """Shard ``shard``'s complete partial record of this evaluation, when its notes hold one."""
    found = _shard_record(ctx.store, refs.eval_shard_notes(shard.label), commit, ctx, tree)
    return found if found is not None and found.cache_key() == ctx.key(tree) and found.complete else None


def _lock(store: GitStore, ctx: EvalContext, tree: str, shard: Shard):
    key = hashlib.sha256(json.dumps(ctx.key(tree)).encode()).hexdigest()[:24]
    return store.exclusive(
        f"eval-shard-{shard.label}-{key}",
        f"another `t2s eval --shard {shard}` of this skill is running",
        hint="wait for it to finish; the lock goes away with its process",
    )


def run_shard(
    ctx: EvalContext,
    commit: str,
    tree: str,
    shard: Shard,
    *,
    use_cache: bool = True,
    runner: Runner | None = None,
    workdir: Path | None = None,
) -> tuple[EvalRecord, bool]:
    """Run shard ``shard`` of the evaluation of ``commit`` and note its partial record
    in the shard's namespace; ``(record, cached)`` (cached: this shard's note had it).
    A record in which a task errored is returned, and noted nowhere.
    """
    store = ctx.store
    ref = refs.eval_shard_notes(shard.label)
    part = dataclasses.replace(ctx, task_ids=shard.select(ctx.task_ids))
    with _lock(store, ctx, tree, shard):
        found = noted_part(ctx, commit, tree, shard) if use_cache else None
        if found is not None:
            return found, True
        started = time.monotonic()
        with scratch_dir("t2s-eval-", workdir) as tmp:
            skill_path = store.archive(commit, ctx.skill_dir, Path(tmp) / "skill" / PurePosixPath(ctx.skill_dir).name)
            work = Path(tmp) / "work"
            work.mkdir()
            result = (runner or evaluate_tasks)(
                RunRequest(part, commit, skill_path, work, list(part.task_ids), ctx.seeds)
            )
        record = make_record(part, commit, tree, result, time.monotonic() - started)
        if not record.complete:
            return record, False
        kept_ref = refs.eval_shard_trajectories(commit, key_hash(ctx.key(tree)), shard.label)
        record.trajectories = keep_trajectories(store, kept_ref, result.trajectories, f"{commit[:12]} shard {shard}")
        store.update_note(ref, commit, lambda text: _upsert_text(text, record, ref, commit))
    return record, False


def _upsert_text(text: str | None, record: EvalRecord, ref: str, commit: str) -> str:
    try:
        note = parse_eval_note(text, f"{ref} on {commit[:12]}") if text else EvalNote()
    except NoteFormatError:
        note = EvalNote()
    note.upsert(record)
    return note.model_dump_json(indent=2) + "\n"


def gather(ctx: EvalContext, commit: str, tree: str) -> tuple[int, dict[str, EvalRecord]]:
    """The shard records of this evaluation: ``(N, label -> record)``; ``(0, {})`` when
    there are none. :class:`ShardMismatch` names the odd shard when they disagree (with
    each other, or with ``ctx``)."""
    found = {
        label: record
        for label, ref in shard_notes(ctx.store).items()
        if (record := _shard_record(ctx.store, ref, commit, ctx, tree)) is not None
    }
    if not found:
        return 0, {}
    where = f"evaluation of {commit[:12]} on {ctx.suite_name}/{ctx.split}"
    n, _ = labels_by_n(found, where)
    expected = {
        "suite hash": ctx.suite_hash,
        "agent settings": ctx.agent_hash,
        "seeds": ctx.seeds,
        "skill folder": ctx.skill_dir,
    }
    for what, attr in _AGREE.items():
        values: dict[object, list[str]] = {}
        for label, record in found.items():
            values.setdefault(getattr(record, attr), []).append(label)
        if len(values) > 1:
            common = max(values, key=lambda v: len(values[v]))
            odd = sorted(label for v, labels in values.items() if v != common for label in labels)
            raise ShardMismatch(
                f"{where}: the shards disagree on {what}: shard(s) {', '.join(odd)} differ from the others",
                hint="every shard must run the same suite, split, agent settings, seeds and t2s version; "
                f"delete the odd shards' notes ({refs.eval_shard_notes('K-of-N')}) and run them again",
            )
        value = next(iter(values))
        if what in expected and value != expected[what]:
            raise ShardMismatch(
                f"{where}: the shards were run with other {what} than this evaluation uses",
                hint="collect with the settings the shards ran with, or evaluate with --no-cache",
            )
    return n, found


def _joined_trajectories(ctx: EvalContext, commit: str, records: dict[str, EvalRecord]) -> dict[str, bytes]:
    """Every shard's kept trajectories, as the unsharded evaluation keeps them all.
    :class:`MissingShards` when a shard kept some that this repository lacks (they were
    not fetched): a note naming a partial set would stay so for good."""
    joined: dict[str, bytes] = {}
    absent = []
    for label, record in records.items():
        if record.trajectories is None:  # its runner gave none (as an unsharded one may)
            continue
        kept = read_kept(ctx.store, record.trajectories)
        if kept is None:
            absent.append(label)
        else:
            joined.update(kept)
    if absent:
        raise MissingShards(
            f"evaluation of {commit[:12]} on {ctx.suite_name}/{ctx.split}: the trajectories of shard(s) "
            f"{', '.join(a.replace('-of-', '/') for a in absent)} are not in this repository",
            missing=absent,
            hint=f"fetch them: git fetch origin '{refs.mirror_all(refs.EVAL_TRAJECTORIES)}'",
        )
    return joined


def collect_eval(ctx: EvalContext, commit: str, tree: str) -> EvalCollect:
    """Join every shard's partial record into the one an unsharded evaluation notes on
    ``commit`` (see the module doc). A no-op when the note already holds it;
    :class:`MissingShards` names the missing shards and how to run them."""
    out = EvalCollect(commit=commit)
    n, found = gather(ctx, commit, tree)
    out.shards = n
    if not n:
        return out
    by_k = {refs.parse_shard_label(label): label for label in found}
    missing = [refs.shard_label(k, n) for k in range(1, n + 1) if (k, n) not in by_k]
    if missing:
        shown = ", ".join(m.replace("-of-", "/") for m in missing)
        raise MissingShards(
            f"evaluation of {commit[:12]} on {ctx.suite_name}/{ctx.split}: shard(s) {shown} of {n} are missing",
            missing=missing,
            hint="run just those: "
            + "; ".join(
                f"`t2s eval {commit[:12]} --split {ctx.split} --shard {m.replace('-of-', '/')}`" for m in missing
            )
            + f"; or fetch their notes (git fetch origin '{refs.mirror_all(refs.NOTES)}')",
        )
    records = [found[by_k[(k, n)]] for k in range(1, n + 1)]
    result = RunResult(
        verdicts=[v for r in records for v in r.tasks],
        tokens=sum(r.tokens for r in records),
        cost_usd=sum(r.cost_usd for r in records),
        model_calls=sum(r.model_calls for r in records),
    )
    record = make_record(ctx, commit, tree, result, max(r.duration_s for r in records))
    record.created_at = max(r.created_at for r in records)  # from the shards: collecting again changes nothing
    kept = _joined_trajectories(ctx, commit, {by_k[(k, n)]: found[by_k[(k, n)]] for k in range(1, n + 1)})
    record.trajectories = keep_trajectories(
        ctx.store, refs.eval_trajectories(commit, key_hash(ctx.key(tree))), kept, commit[:12]
    )
    out.record = record
    text = ctx.store.read_note(EVAL_NOTES, commit)
    have = None
    if text:
        try:
            have = parse_eval_note(text).find(ctx.key(tree))
        except NoteFormatError:
            have = None
    if have is not None and have.model_dump() == record.model_dump():
        return out
    update_eval_note(ctx.store, commit, lambda note: note.upsert(record))
    out.written = True
    return out
