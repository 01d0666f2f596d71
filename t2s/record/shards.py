"""Shards: one stage of a run (or one evaluation) split over N machines, joined in git.

``--shard K/N`` (1 <= K <= N) takes the items whose stable hash falls in bucket K: the
first 8 bytes of the sha256 of the item's id, modulo N. It is the same on every machine
and every Python (``hash()`` is salted per process, so it is never used). Rollouts and
evaluations shard by task id (all seeds of a task stay together, so the gate's per-task
majority is computed in one place); analyses by trajectory id.

Each shard writes only refs of its own, so shards never race on a ref:

- its part of the run record, ``refs/t2s/shards/<run>/<stage>/<K>-of-<N>``: a record
  forked from the run record (when there is one), so it reads what the run holds;
- its patch branches: numbers are given by the trajectory's place among all the run's
  trajectories to analyze, as one unsharded analysis numbers them, so shards never
  pick the same number;
- its partial evaluations, in the notes namespace ``refs/notes/t2s/eval-shard-<K>-of-<N>``.

:func:`collect_run` joins a stage's shards into the run record (see its doc). ``--shard
auto`` reads K and N from the engine that started the process (:func:`shard_from_env`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from t2s.errors import RefConflict, T2SError, UsageError
from t2s.gitstore.store import ZERO_SHA, GitStore, RefUpdate
from t2s.llm.ledger import Ledger, LedgerRow
from t2s.record import refs
from t2s.record.provenance import Provenance
from t2s.record.runs import MANIFEST, RunManifest, StageState, parse_record

#: The agent settings that change results, as the manifest's model snapshot holds them
#: (the same fields as ``t2s.evaluation.context.AGENT_RESULT_FIELDS``, a layer above).
AGENT_FIELDS = ("model", "temperature", "max_tokens", "seed", "extra_body", "protocol")
#: Environment variables ``--shard auto`` reads, in order (see docs/scale.md).
ENV_SHARD = "T2S_SHARD"  # "K/N": set it from a GitHub Actions matrix
ENV_K8S_INDEX = "JOB_COMPLETION_INDEX"  # Kubernetes Indexed Job, 0-based
ENV_K8S_COUNT = "T2S_SHARD_COUNT"  # the Job's `completions`, passed by the manifest
ENV_SLURM_ID = "SLURM_ARRAY_TASK_ID"
ENV_SLURM_COUNT = "SLURM_ARRAY_TASK_COUNT"
ENV_SLURM_MIN = "SLURM_ARRAY_TASK_MIN"
ENV_SLURM_STEP = "SLURM_ARRAY_TASK_STEP"

T = TypeVar("T")


class ShardMismatch(T2SError):
    """Shards of one run or evaluation disagree (S0, suite, split, agent, t2s version, N)."""


class MissingShards(T2SError):
    """Some shards of a run or an evaluation are not there (or not finished)."""

    def __init__(self, message: str, *, missing: Sequence[str], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.missing = list(missing)


@dataclass(frozen=True)
class Shard:
    """Shard ``k`` of ``n`` (1-based)."""

    k: int
    n: int

    @property
    def label(self) -> str:
        """``<K>-of-<N>``, as refs name it."""
        return refs.shard_label(self.k, self.n)

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"

    def owns(self, key: str) -> bool:
        """Whether the item with id ``key`` belongs to this shard."""
        return bucket(key, self.n) == self.k - 1

    def select(self, items: Iterable[T], key=lambda item: item) -> list[T]:
        """The items of this shard, in their order."""
        return [item for item in items if self.owns(key(item))]


def bucket(key: str, n: int) -> int:
    """``key``'s bucket in ``range(n)``: the first 8 bytes of its sha256, modulo ``n``."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % n


def parse_shard(text: str | None, env: Mapping[str, str] | None = None) -> Shard | None:
    """``K/N`` as a :class:`Shard`; ``auto`` reads the environment (:func:`shard_from_env`);
    None or empty is no sharding."""
    if not text:
        return None
    if text.strip() == "auto":
        return shard_from_env(os.environ if env is None else env)
    k_text, slash, n_text = text.strip().partition("/")
    if not slash or not k_text.isdigit() or not n_text.isdigit():
        raise UsageError(f"--shard {text!r}: expected K/N (e.g. 2/4) or auto")
    return _checked(int(k_text), int(n_text), f"--shard {text}")


def _checked(k: int, n: int, where: str) -> Shard:
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"{where}: the shard K/N needs 1 <= K <= N (got {k}/{n})")
    return Shard(k, n)


def shard_from_env(env: Mapping[str, str]) -> Shard:
    """The shard the engine that started this process gives it:

    - ``T2S_SHARD=K/N`` (a GitHub Actions matrix has no index variable: the workflow sets it);
    - a Kubernetes Indexed Job: ``JOB_COMPLETION_INDEX`` (0-based) and ``T2S_SHARD_COUNT``
      (the Job's ``completions``, which Kubernetes does not put in the environment);
    - a SLURM array: ``SLURM_ARRAY_TASK_ID``, ``SLURM_ARRAY_TASK_COUNT``, counted from
      ``SLURM_ARRAY_TASK_MIN`` in steps of ``SLURM_ARRAY_TASK_STEP`` (``--array=1-8``,
      ``--array=0-14:2`` and ``--array=5-7`` all work).
    """
    try:
        if env.get(ENV_SHARD):
            return parse_shard(env[ENV_SHARD]) or _checked(0, 0, ENV_SHARD)
        if env.get(ENV_K8S_INDEX) is not None and env.get(ENV_K8S_INDEX) != "":
            if not env.get(ENV_K8S_COUNT):
                raise UsageError(
                    f"--shard auto: {ENV_K8S_INDEX} is set but {ENV_K8S_COUNT} is not",
                    hint=f"set {ENV_K8S_COUNT} to the Indexed Job's completions in its manifest (docs/scale.md)",
                )
            return _checked(int(env[ENV_K8S_INDEX]) + 1, int(env[ENV_K8S_COUNT]), ENV_K8S_INDEX)
        if env.get(ENV_SLURM_ID):
            count = int(env.get(ENV_SLURM_COUNT) or 0)
            first = int(env.get(ENV_SLURM_MIN) or 0)
            step = int(env.get(ENV_SLURM_STEP) or 1) or 1
            offset = int(env[ENV_SLURM_ID]) - first
            if offset % step:
                raise UsageError(f"--shard auto: {ENV_SLURM_ID} is not on the array's step {step}")
            return _checked(offset // step + 1, count, ENV_SLURM_ID)
    except ValueError:
        raise UsageError("--shard auto: a shard variable of the environment is not a whole number") from None
    raise UsageError(
        "--shard auto: no shard in the environment",
        hint=f"set {ENV_SHARD}=K/N, or run in a Kubernetes Indexed Job ({ENV_K8S_INDEX} with "
        f"{ENV_K8S_COUNT}) or a SLURM array ({ENV_SLURM_ID}, {ENV_SLURM_COUNT})",
    )


def labels_by_n(labels: Iterable[str], what: str) -> tuple[int, dict[int, str]]:
    """The shard count all ``labels`` agree on and K -> label; :class:`ShardMismatch`
    naming the odd one when they were cut into different counts."""
    found: dict[int, dict[int, str]] = {}
    for label in labels:
        parsed = refs.parse_shard_label(label)
        if parsed:
            found.setdefault(parsed[1], {})[parsed[0]] = label
    if len(found) > 1:
        counts = sorted(found)
        common = max(counts, key=lambda n: len(found[n]))
        odd = sorted(label for n, ks in found.items() if n != common for label in ks.values())
        raise ShardMismatch(
            f"{what}: shards were cut into different counts ({', '.join(map(str, counts))}); "
            f"odd shard(s): {', '.join(odd)}",
            hint="run every shard with the same N; delete the odd shards' refs (git update-ref -d)",
        )
    if not found:
        return 0, {}
    n = next(iter(found))
    return n, found[n]


# ---------------------------------------------------------------------- runs
@dataclass
class CollectResult:
    """What :func:`collect_run` did for one stage."""

    run: str
    stage: str
    shards: int = 0
    #: Files the run record gained, changed or lost (0 when it already held them: a no-op).
    files: int = 0
    commit: str | None = None
    collected: bool = False
    #: Why nothing was written.
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "stage": self.stage,
            "shards": self.shards,
            "files": self.files,
            "commit": self.commit,
            "collected": self.collected,
            "note": self.note,
        }


def run_shards(store: GitStore, run: str, stage: str) -> dict[str, str]:
    """``<K>-of-<N>`` -> head of each shard record of ``stage`` of ``run``."""
    prefix = refs.shard_records(run, stage)
    return {ref[len(prefix) :]: sha for ref, sha in store.refs(prefix).items()}


def stages_with_shards(store: GitStore, run: str) -> list[str]:
    prefix = refs.shard_records(run)
    return sorted({ref[len(prefix) :].split("/", 1)[0] for ref in store.refs(prefix)})


def _agent_of(manifest: RunManifest) -> str:
    agent = manifest.models.get("agent", {})
    data = {
        "agent": {k: agent.get(k) for k in AGENT_FIELDS},
        "options": manifest.options,
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _identity(manifest: RunManifest, stage: str) -> dict[str, str]:
    """What every shard of a stage must agree on."""
    ident = {
        "S0": manifest.s0,
        "suite": manifest.suite,
        "split": manifest.split,
        "skill folder": manifest.skill_dir,
        "agent settings": _agent_of(manifest),
        "t2s version": manifest.t2s_version,
    }
    if stage != "rollout":  # the analysts' settings are the analyze stage's own
        analyst = manifest.models.get("analyst", {})
        ident["analyst settings"] = json.dumps({k: analyst.get(k) for k in AGENT_FIELDS}, sort_keys=True, default=str)
    return ident


def _check_agree(manifests: dict[str, RunManifest], stage: str, where: str) -> None:
    idents = {label: _identity(m, stage) for label, m in manifests.items()}
    first = min(idents, key=lambda label: refs.parse_shard_label(label) or (0, 0))
    for what in idents[first]:
        values: dict[str, list[str]] = {}
        for label, ident in idents.items():
            values.setdefault(ident[what], []).append(label)
        if len(values) > 1:
            common = max(values, key=lambda v: len(values[v]))
            odd = sorted(label for v, labels in values.items() if v != common for label in labels)
            raise ShardMismatch(
                f"{where}: the shards disagree on {what}: shard(s) {', '.join(odd)} differ from the others",
                hint="every shard must run the same S0, suite, split, settings and t2s version; "
                "delete the odd shards' refs and run them again",
            )


def _run_again(run: str, stage: str, labels: Sequence[str]) -> str:
    shards = " ".join(f"--shard {label.replace('-of-', '/')}" for label in labels)
    return f"run just those: `t2s {stage} --run {run} {shards}` (one command per shard)"


def collect_run(store: GitStore, run: str, stage: str) -> CollectResult:
    """Join the shards of ``stage`` of ``run`` into the run record ``refs/t2s/runs/<run>``.

    Checks that all N shards are there, finished, and agree (S0, suite, split, skill
    folder, agent settings, t2s version); then writes one commit whose tree is what an
    unsharded run writes: every file a shard wrote or removed since it forked from the
    run record, the ledger and the estimate of the stage added up over the shards, and the
    manifest with the stage's state joined (counts summed, the longest shard's wall
    time). The result depends on the shards only, so collecting again is
    a no-op (nothing is written when the tree would not change).
    """
    heads = run_shards(store, run, stage)
    result = CollectResult(run=run, stage=stage)
    if not heads:
        result.note = f"no shards of {stage}"
        return result
    where = f"run {run!r} {stage}"
    n, by_k = labels_by_n(heads, where)
    result.shards = n
    missing = [refs.shard_label(k, n) for k in range(1, n + 1) if k not in by_k]
    if missing:
        raise MissingShards(
            f"{where}: shard(s) {', '.join(m.replace('-of-', '/') for m in missing)} of {n} are missing",
            missing=missing,
            hint=_run_again(run, stage, missing) + "; or fetch them from the remote they were pushed to",
        )
    manifests: dict[str, RunManifest] = {}
    for label, head in heads.items():
        raw = store.read_blob(head, MANIFEST)
        if raw is None:
            raise T2SError(f"{refs.shard_record(run, stage, label)} has no {MANIFEST}")
        manifests[label] = parse_record(RunManifest, raw, refs.shard_record(run, stage, label))
    unfinished = sorted(
        label for label, m in manifests.items() if m.stages.get(stage, StageState()).status not in ("done", "errored")
    )
    if unfinished:
        raise MissingShards(
            f"{where}: shard(s) {', '.join(u.replace('-of-', '/') for u in unfinished)} have not finished "
            f"(status: {', '.join(manifests[u].stages.get(stage, StageState()).status for u in unfinished)})",
            missing=unfinished,
            hint=_run_again(run, stage, unfinished),
        )
    _check_agree(manifests, stage, where)
    return _write_collected(store, run, stage, heads, manifests, result)


def _write_collected(
    store: GitStore,
    run: str,
    stage: str,
    heads: dict[str, str],
    manifests: dict[str, RunManifest],
    result: CollectResult,
) -> CollectResult:
    ref = refs.run_record(run)
    ordered = sorted(heads, key=lambda label: refs.parse_shard_label(label) or (0, 0))
    ledger_path, estimate_path = f"ledger/{stage}.json", f"estimates/{stage}.json"
    for _ in range(20):
        old = store.rev_parse(ref)
        # Where each shard forked from the run record (None: the shards started the run).
        forks = {label: store.merge_base(heads[label], old) if old else None for label in ordered}
        changes = _shards_changes(store, run, stage, heads, forks, ordered, skip={MANIFEST, ledger_path, estimate_path})
        ledgers = {label: store.read_blob(heads[label], ledger_path) for label in ordered}
        if any(raw is not None for raw in ledgers.values()):
            changes[ledger_path] = _join_ledgers(store, ledger_path, ledgers, forks)
        estimates = {label: store.read_blob(heads[label], estimate_path) for label in ordered}
        if any(raw is not None for raw in estimates.values()):
            changes[estimate_path] = _join_estimates(store, estimate_path, estimates, forks)
        base = RunManifest.model_validate_json(store.read_blob(old, MANIFEST) or b"{}") if old else None
        manifest = _joined_manifest(base, [manifests[label] for label in ordered], stage)
        changes[MANIFEST] = (manifest.model_dump_json(indent=2) + "\n").encode()
        tree = store.build_tree(old, changes)
        if old and tree == store.tree_of(old):
            result.note = "already collected"
            result.commit = old
            return result
        result.files = sum(1 for path in changes if path != MANIFEST)
        parents = [old] if old else []
        commit = store.commit(
            tree,
            parents,
            f"t2s run {run}: collect {stage} from {len(ordered)} shard(s)",
            "\n".join(f"{label} {heads[label]}" for label in ordered),
            Provenance.for_record(run).trailers(),
        )
        try:
            store.update_refs([RefUpdate(ref, commit, old or ZERO_SHA)])
        except RefConflict:
            continue  # another collect (or stage) moved the record: recompute on top
        result.commit, result.collected = commit, True
        return result
    raise RefConflict(f"run record {ref} kept changing under us; try again")


def _shards_changes(
    store: GitStore,
    run: str,
    stage: str,
    heads: dict[str, str],
    forks: dict[str, str | None],
    ordered: list[str],
    skip: set[str],
) -> dict[str, bytes | None]:
    """What the shards changed in their parts since they forked from the run record:
    the files each wrote (its whole part when it started the run) and the files each
    removed (e.g. an older "rejected" record of an analysis that errored again), as one
    unsharded stage would have changed the record. Two shards that changed one file
    differently are refused: they overlap."""
    wrote: dict[str, tuple[str | None, str]] = {}  # path -> (blob, or None: removed; the shard)
    for label in ordered:
        fork = forks[label]
        before = {e.path: e.sha for e in store.list_tree(fork)} if fork else {}
        after = {e.path: e.sha for e in store.list_tree(heads[label])}
        changed: dict[str, str | None] = {p: sha for p, sha in after.items() if before.get(p) != sha}
        changed.update({p: None for p in before if p not in after})
        for path, sha in changed.items():
            if path in skip:
                continue
            if path in wrote and wrote[path][0] != sha:
                raise ShardMismatch(
                    f"run {run!r} {stage}: shards {wrote[path][1]} and {label} both "
                    f"{'wrote' if sha else 'removed'} {path}, differently",
                    hint="the shards overlap: were they cut with different t2s versions?",
                )
            wrote[path] = (sha, label)
    written = [path for path, (sha, _) in wrote.items() if sha is not None]
    blobs = store.read_blobs([sha for path in written if (sha := wrote[path][0])]) if written else []
    changes: dict[str, bytes | None] = dict(zip(written, blobs, strict=True))
    changes.update({path: None for path, (sha, _) in wrote.items() if sha is None})
    return changes


#: The numbers of an estimate's row that the shards' parts add up to (``wall_s`` is the
#: longest shard's: shards run side by side); as ``t2s.estimates.model.RoleEstimate``.
_ESTIMATE_SUMMED = ("items", "calls", "input_tokens", "output_tokens", "usd")


def _join_estimates(store: GitStore, path: str, parts: dict[str, bytes | None], forks: dict[str, str | None]) -> bytes:
    """The run's estimate of the stage: what it held where the shards forked, plus
    what each shard's invocations estimated for its part (the sum over the shards; the
    wall time the longest shard's), written as ``t2s.estimates.recorded`` writes it."""
    bases = {
        label: json.loads(raw) if fork and (raw := store.read_blob(fork, path)) else {} for label, fork in forks.items()
    }
    first = next(iter(bases.values()))
    rows = {r["role"]: dict(r) for r in first.get("rows", [])}
    longest: dict[str, float] = {}
    notes = list(first.get("notes", []))
    for label, raw in parts.items():
        if raw is None:
            continue
        part, base = json.loads(raw), {r["role"]: r for r in bases[label].get("rows", [])}
        for row in part.get("rows", []):
            role, had = row["role"], base.get(row["role"], {})
            joined = rows.setdefault(role, {**row, **{k: had.get(k, 0) for k in (*_ESTIMATE_SUMMED, "wall_s")}})
            for key in _ESTIMATE_SUMMED:
                joined[key] += row.get(key, 0) - had.get(key, 0)
            longest[role] = max(longest.get(role, 0.0), row.get("wall_s", 0.0) - had.get("wall_s", 0.0))
        notes += [note for note in part.get("notes", []) if note not in notes]
    for role, row in rows.items():
        row["usd"] = round(row["usd"], 6)
        row["wall_s"] = round(row["wall_s"] + longest.get(role, 0.0), 1)
    out = list(rows.values())
    totals = {
        "calls": sum(r["calls"] for r in out),
        "tokens": sum(r["input_tokens"] + r["output_tokens"] for r in out),
        "usd": round(sum(r["usd"] for r in out), 6),
        "wall_s": round(sum(r["wall_s"] for r in out), 1),
    }
    data = {"rows": out, "notes": notes, "totals": totals}
    return (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode()


def _join_ledgers(store: GitStore, path: str, parts: dict[str, bytes | None], forks: dict[str, str | None]) -> bytes:
    """The run's ledger of the stage: what it held where the shards forked, plus what
    each shard spent since (row by row, as one unsharded stage's ledger adds up its
    invocations, :func:`t2s.llm.ledger.accumulate`)."""
    bases = {
        label: Ledger.from_dict(json.loads(raw)) if fork and (raw := store.read_blob(fork, path)) else Ledger()
        for label, fork in forks.items()
    }
    total = Ledger.from_dict(next(iter(bases.values())).to_dict())
    counted = [f.name for f in dataclasses.fields(LedgerRow) if f.name not in ("role", "phase")]
    for label, raw in parts.items():
        if raw is None:
            continue
        part, base = Ledger.from_dict(json.loads(raw)), bases[label].rows
        for key, row in part.rows.items():
            had = base.get(key, LedgerRow(*key))
            spent = LedgerRow(*key, **{name: getattr(row, name) - getattr(had, name) for name in counted})
            total.rows.setdefault(key, LedgerRow(*key)).add(spent)
        total.max_calls, total.max_tokens, total.max_usd = part.max_calls, part.max_tokens, part.max_usd
        total.stopped = total.stopped or part.stopped
        total.unpriced_models |= part.unpriced_models
    return total.to_json().encode()


def _joined_manifest(base: RunManifest | None, shards: list[RunManifest], stage: str) -> RunManifest:
    """The run's manifest after the stage: the run's (or the first shard's) with the
    stage's state joined over the shards."""
    manifest = (base or shards[0]).model_copy(deep=True)
    if base is None:  # the shards created the run: take its start from them, deterministically
        manifest.created_at = min(m.created_at for m in shards)
    states = [m.stages[stage] for m in shards]
    joined = StageState(
        status="errored" if any(s.status == "errored" for s in states) else "done",
        started_at=min((s.started_at for s in states if s.started_at), default=None),
        finished_at=max((s.finished_at for s in states if s.finished_at), default=None),
        summary=_join_summaries([s.summary for s in states]),
    )
    manifest.stages[stage] = joined
    return manifest


def _join_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts summed, wall time the longest shard's, errors' rows merged by cause."""
    out: dict[str, Any] = {}
    for summary in summaries:
        for key, value in summary.items():
            have = out.get(key)
            if key == "wall_s":
                out[key] = max(have or 0.0, value or 0.0)
            elif isinstance(value, bool) or value is None or isinstance(value, str):
                out[key] = value if have is None else have
            elif isinstance(value, (int, float)):
                out[key] = (have or 0) + value
            elif isinstance(value, dict):
                merged = dict(have or {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v if isinstance(v, (int, float)) else v
                out[key] = merged
            elif isinstance(value, list):
                out[key] = _merge_rows((have or []) + value)
    return out


def _merge_rows(rows: list[Any]) -> list[Any]:
    """Cause rows (``{"kind", "message", "count", ...}``) of several shards, one per cause."""
    if not all(isinstance(r, dict) and "count" in r for r in rows):
        return rows
    merged: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = json.dumps({k: v for k, v in row.items() if k != "count"}, sort_keys=True)
        if key in merged:
            merged[key]["count"] += row["count"]
        else:
            merged[key] = dict(row)
    return sorted(merged.values(), key=lambda r: -r["count"])
