"""``t2s rollout``: run the agent with the skill at S0 on a split, into the run record.

Every finished task is appended to ``refs/t2s/runs/<run>`` at once (the trajectory at
``trajectories/<id>.json``, the output workbook and scripts under ``artifacts/<id>/``),
so an interrupted rollout keeps its finished tasks, and running it again only runs the
rest. ``passed`` and ``failed`` trajectories are final; ``errored`` ones (the model
endpoint failed, t2s crashed: :mod:`t2s.faults`) are recorded with their cause, never
analyzed, tallied per cause in :attr:`RolloutSummary.errors`, and run again (unless
``retry_errored=False``); after ``max(3, concurrency)`` tasks in a row errored because
the model endpoint failed, no new task starts (the rest are "not run", as after a budget
stop). A budget cap (:class:`t2s.llm.client.BudgetExceeded`) stops new work cleanly:
unfinished episodes are simply not recorded.

The skill is read from git at S0 (never from the working tree); a resumed run keeps
the S0, suite, split and seeds its manifest recorded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from t2s.agent.bundle import SkillBundle
from t2s.agent.episode import AgentOptions
from t2s.agent.executor import Executor
from t2s.agent.trajectory import (
    TRAJECTORIES_DIR,
    Trajectory,
    artifacts_prefix,
    load_trajectory,
    trajectory_id,
    trajectory_path,
)
from t2s.errors import T2SError, UsageError
from t2s.faults import Breaker, CauseCount, ErrorCause, WorkErrored, describe, tally
from t2s.llm.client import LLM, default_cache_path
from t2s.llm.errors import BudgetExceeded, CacheMiss
from t2s.record.runs import RunManifest, RunRecord, SpendWriter, StageProgress
from t2s.record.shards import Shard
from t2s.rollouts.harness import episode_executor
from t2s.sandbox.leftovers import scratch_dir
from t2s.skill.repo import require_clean_skill, skill_dir_of
from t2s.tasks import load_suite

STAGE = "rollout"
LEDGER_PATH = "ledger/rollout.json"


@dataclass
class RolloutSummary:
    """What a rollout did: the run, S0, suite and split; how many trajectories the
    split asks for, passed, failed, errored, were already recorded, ran now or were
    left by the budget; tokens, wall time, and the causes of errors."""

    run: str
    s0: str
    skill_dir: str
    suite: str
    split: str
    #: Trajectories the split asks for (tasks x seeds, after ``limit``).
    total: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    #: Already in the record before this invocation (not run again).
    skipped: int = 0
    #: Run by this invocation.
    ran: int = 0
    #: Not run because the budget stopped new work.
    remaining: int = 0
    stopped: str | None = None
    #: Tokens of every trajectory of the split in the record.
    tokens: int = 0
    #: Tokens spent by this invocation.
    new_tokens: int = 0
    wall_s: float = 0.0
    trajectories: list[str] = field(default_factory=list)
    #: The causes of the errored trajectories of the split: one row per cause
    #: (:class:`t2s.faults.CauseCount` as a dict), most frequent first.
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (what ``t2s rollout --json`` prints)."""
        return asdict(self)

    def errored_work(self) -> WorkErrored | None:
        """The error to end the command with when trajectories errored, else None."""
        if not self.errored:
            return None

        causes = [CauseCount.model_validate(row) for row in self.errors]
        return WorkErrored(
            describe(causes, self.errored, self.total, "trajectories"),
            causes=causes,
            hint="errored tasks are not analyzed; fix the cause and run the same command again to run them again",
        )


def _done_trajectories(record: RunRecord) -> dict[str, Trajectory]:
    out: dict[str, Trajectory] = {}
    if not record.exists():
        return out
    for path in record.list(TRAJECTORIES_DIR):
        if not path.endswith(".json"):
            continue
        traj = load_trajectory(record.read(path), where=f"{record.ref}:{path}")
        out[traj.id] = traj
    return out


def _models_snapshot(llm) -> dict[str, dict[str, Any]]:
    """Role settings for the manifest: names of key variables, never keys."""
    return {name: cfg.model_dump(mode="json") for name, cfg in llm.roles.items()}


def prepare_manifest(
    record: RunRecord,
    store,
    *,
    rev: str | None,
    skill_dir: str,
    suite_name: str,
    split: str,
    seeds: int | None,
    llm,
    options: dict[str, Any],
) -> RunManifest:
    """The run's manifest: created on the first rollout, checked on the next ones."""
    if record.exists():
        manifest = record.manifest()
        if rev is not None and store.resolve(rev) != manifest.s0:
            raise UsageError(
                f"run {record.run!r} was started at S0 {manifest.s0[:12]}, but --rev {rev} is "
                f"{store.resolve(rev)[:12]}",
                hint="leave out --rev to resume the run, or choose a new --run name",
            )
        for what, mine, theirs in (("suite", suite_name, manifest.suite), ("split", split, manifest.split)):
            if theirs and mine != theirs:
                raise UsageError(
                    f"run {record.run!r} was started with {what} {theirs!r}, not {mine!r}",
                    hint="choose a new --run name",
                )
        recorded = manifest.options.get("seeds")
        if seeds is not None and recorded is not None and seeds != recorded:
            raise UsageError(f"run {record.run!r} was started with --seeds {recorded}, not {seeds}")
        return manifest
    s0 = store.resolve(rev or "HEAD")
    manifest = RunManifest(
        run=record.run,
        s0=s0,
        skill_dir=skill_dir,
        suite=suite_name,
        split=split,
        models=_models_snapshot(llm),
        options={**options, "seeds": seeds or 1},
    )
    record.create(manifest)
    return manifest


async def rollout_async(
    store,
    config,
    llm,
    suite,
    *,
    run: str,
    split: str | None = None,
    rev: str | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    seeds: int | None = None,
    task_ids: list[str] | None = None,
    options: AgentOptions | None = None,
    retry_errored: bool = True,
    progress: StageProgress | None = None,
    workroot: Path | None = None,
    shard: Shard | None = None,
    executor: Executor | None = None,
) -> RolloutSummary:
    """Run the agent on the split's tasks not yet in run ``run``'s record.

    ``rev`` (default: the run's S0, or ``HEAD`` for a new run) names the skill's commit;
    ``task_ids`` replaces the split's list (still recorded under ``split``). ``shard``
    runs only its tasks, into its own part of the record (:mod:`t2s.record.shards`).
    """
    split, ids = _planned_tasks(config, suite, split, task_ids, limit)  # bad input fails before the lock
    record = RunRecord(store, run)
    if shard is not None:
        ids = shard.select(ids)
        record = record.shard_part(STAGE, shard.label)
    with record.stage_lock(STAGE):
        return await _rollout(
            store,
            config,
            llm,
            suite,
            run=run,
            split=split,
            ids=ids,
            rev=rev,
            concurrency=concurrency,
            seeds=seeds,
            options=options,
            retry_errored=retry_errored,
            progress=progress,
            workroot=workroot,
            record=record,
            executor=executor,
        )


def _planned_tasks(
    config, suite, split: str | None, task_ids: list[str] | None, limit: int | None
) -> tuple[str, list[str]]:
    """The split to roll out and its task ids, checked against the suite."""
    split = split or config.rollout.evolve_split
    splits = suite.splits()
    heldout = config.rollout.heldout_split
    if split in splits and heldout in splits and split != heldout:
        suite.check_disjoint(split, heldout)
    if split == heldout:
        raise UsageError(
            f"refusing to evolve on the held-out split {heldout!r}",
            hint="roll out on the evolve split; the held-out split is for the gate",
        )
    ids = list(task_ids) if task_ids is not None else suite.task_ids(split)
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit must be at least 1 (got {limit})")
        ids = ids[:limit]
    if not ids:
        raise UsageError(f"split {split!r} of suite {suite.name!r} has no tasks")  # (a shard may have none)
    for tid in ids:
        suite.task(tid)  # unknown ids fail here, with the suite's own message, before any work
    return split, ids


async def _rollout(
    store,
    config,
    llm,
    suite,
    *,
    run: str,
    split: str,
    ids: list[str],
    rev: str | None,
    concurrency: int | None,
    seeds: int | None,
    options: AgentOptions | None,
    retry_errored: bool,
    progress: StageProgress | None,
    workroot: Path | None,
    record: RunRecord,
    executor: Executor | None = None,
) -> RolloutSummary:

    started = time.perf_counter()
    commit_for_dir = store.resolve(rev) if rev else (record.manifest().s0 if record.exists() else store.resolve("HEAD"))
    skill_dir = skill_dir_of(store, config, commit_for_dir)
    require_clean_skill(store, config, commit_for_dir, skill_dir)  # before the run record exists
    opts = options or AgentOptions(
        max_turns=config.rollout.max_turns,
        exec_timeout=config.rollout.exec_timeout,
    )
    manifest = prepare_manifest(
        record,
        store,
        rev=rev,
        skill_dir=skill_dir,
        suite_name=suite.name,
        split=split,
        seeds=seeds,
        llm=llm,
        options={
            "max_turns": opts.max_turns,
            "exec_timeout": opts.exec_timeout,
            "protocol": opts.protocol or llm.role(opts.role).protocol,
        },
    )
    seeds = int(manifest.options.get("seeds") or seeds or 1)
    skill = SkillBundle.from_git(store, manifest.s0, manifest.skill_dir)

    planned: list[tuple[str, str, int]] = []  # (trajectory id, task id, seed index)
    for tid in ids:
        for k in range(seeds):
            planned.append((trajectory_id(tid, k, seeds), tid, k))
    done = _done_trajectories(record)
    final = {i for i, t in done.items() if t.verdict != "errored" or not retry_errored}
    pending = [p for p in planned if p[0] not in final]
    summary = RolloutSummary(
        run=run,
        s0=manifest.s0,
        skill_dir=manifest.skill_dir,
        suite=suite.name,
        split=split,
        total=len(planned),
        skipped=len(planned) - len(pending),
    )
    runner = episode_executor(llm, executor, opts.role)  # refuses before the stage is marked running
    record.set_stage(STAGE, "running")
    if progress:
        progress.start(len(planned), summary.skipped)

    concurrency = max(1, concurrency or config.rollout.concurrency)
    sem = asyncio.Semaphore(concurrency)
    stop: dict[str, str] = {}
    finished: dict[str, Trajectory] = {}
    base_seed = opts.seed if opts.seed is not None else llm.role(opts.role).seed
    breaker = Breaker(max(3, concurrency), "tasks")  # the endpoint is down: stop starting tasks
    spend = SpendWriter(record, llm.ledger, LEDGER_PATH)

    async def one(tmp: Path, traj_id: str, task_id: str, k: int) -> None:
        async with sem:
            if stop:
                return
            task = suite.task(task_id)
            if progress:
                progress.begin(traj_id)
            episode_opts = opts
            if seeds > 1:
                episode_opts = AgentOptions(**{**opts.__dict__, "seed": (base_seed or 0) + k})
            workdir = tmp / traj_id
            try:
                episode = await runner.episode(
                    llm, suite, task, skill, workdir, options=episode_opts, traj_id=traj_id, split=split, seed_index=k
                )
            except (BudgetExceeded, CacheMiss) as err:
                stop.setdefault("reason", err.message)
                return
            traj = episode.trajectory
            files: dict[str, Any] = {trajectory_path(traj_id): traj.to_json()}
            prefix = artifacts_prefix(traj_id)
            for rel, data in episode.artifacts.items():
                files[prefix + rel] = data
            if traj_id in done:  # an errored attempt being redone: drop its stale artifacts
                for path in record.list(prefix.rstrip("/")):
                    files.setdefault(path, None)
            await asyncio.to_thread(
                spend.write,
                files,
                f"t2s run {run}: rollout {traj_id} {traj.verdict}",
                f"task {task_id}, {len(traj.steps)} step(s), stop: {traj.stop_reason}",
            )
            finished[traj_id] = traj
            if progress:
                progress.done(traj, traj_id)
            tripped = breaker.record(traj.error_cause if traj.verdict == "errored" else None)
            if tripped:
                stop.setdefault("reason", tripped)

    status = "failed"
    try:
        with scratch_dir("t2s-rollout-", workroot) as tmp:
            try:
                async with asyncio.TaskGroup() as group:
                    for p in pending:
                        group.create_task(one(Path(tmp), *p))
            except* T2SError as errors:  # e.g. the record could not be written: say why, plainly
                raise errors.exceptions[0] from None
        status = "failed" if stop else "done"
    except T2SError as err:
        stop.setdefault("reason", f"error: {err.message}")
        raise
    except BaseException:  # Ctrl-C, cancellation, a bug
        stop.setdefault("reason", "interrupted")
        raise
    finally:
        summary.stopped = stop.get("reason")
        _finish(record, spend, summary, planned, done, finished, started, status)
    return summary


def _finish(record: RunRecord, spend: SpendWriter, summary, planned, done, finished, started, status) -> None:
    """Tally the split, write the ledger and the stage status (also after an interrupt)."""
    current = {**done, **finished}
    summary.ran = len(finished)
    summary.new_tokens = sum(t.usage.total_tokens for t in finished.values())
    summary.trajectories = [p[0] for p in planned if p[0] in current]
    summary.remaining = len(planned) - len(summary.trajectories)
    for traj_id in summary.trajectories:
        traj = current[traj_id]
        summary.tokens += traj.usage.total_tokens
        if traj.verdict in ("passed", "failed", "errored"):
            setattr(summary, traj.verdict, getattr(summary, traj.verdict) + 1)
    errored = [current[i] for i in summary.trajectories if current[i].verdict == "errored"]
    summary.errors = [
        row.model_dump()
        for row in tally(
            t.error_cause or ErrorCause(kind="error", message=t.error or "(no cause recorded)") for t in errored
        )
    ]
    if status == "done" and errored:
        status = "errored"  # finished, but not every task has a verdict
    summary.wall_s = round(time.perf_counter() - started, 3)
    stage_summary = {k: v for k, v in summary.to_dict().items() if k != "trajectories"}
    try:
        spend.write({}, f"t2s run {record.run}: rollout ledger")  # what no recorded task took
        record.set_stage(STAGE, status, stage_summary)
    except Exception:  # pragma: no cover - never hide the original error behind this one
        if status in ("done", "errored"):
            raise


def load_rollout_suite(config, store, suite_ref: str | None):
    """The suite named by ``--suite`` (a configured name or a directory) or ``[rollout] suite``."""

    ref = suite_ref or config.rollout.suite
    if not ref:
        if len(config.suites) == 1:
            ref = next(iter(config.suites))
        else:
            raise UsageError("no suite given", hint="pass --suite NAME|PATH or set [rollout] suite in t2s.toml")
    return load_suite(ref, config, base_dir=store.root)


def rollout(
    store,
    config,
    *,
    run: str,
    split: str | None = None,
    suite: Any = None,
    rev: str | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    seeds: int | None = None,
    task_ids: list[str] | None = None,
    options: AgentOptions | None = None,
    llm=None,
    retry_errored: bool = True,
    progress: StageProgress | None = None,
    cache: bool = True,
    shard: Shard | None = None,
    executor: Executor | None = None,
) -> RolloutSummary:
    """Synchronous :func:`rollout_async`: loads the suite (a name, a path or a
    :class:`~t2s.tasks.Suite`) and builds the model client from ``config`` unless given."""

    if suite is None or isinstance(suite, (str, Path)):
        suite = load_rollout_suite(config, store, str(suite) if suite is not None else None)
    own_llm = llm is None
    if own_llm:
        llm = LLM(config, cache_path=default_cache_path(store.common_dir, config) if cache else None, phase="rollout")

    try:  # LLM.run closes the HTTP clients with the event loop
        return llm.run(
            rollout_async(
                store,
                config,
                llm,
                suite,
                run=run,
                split=split,
                rev=rev,
                limit=limit,
                concurrency=concurrency,
                seeds=seeds,
                task_ids=task_ids,
                options=options,
                retry_errored=retry_errored,
                progress=progress,
                shard=shard,
                executor=executor,
            )
        )
    finally:
        if own_llm:
            llm.close()


def summary_rows(summary: RolloutSummary) -> list[tuple[str, str]]:
    return [
        ("passed", str(summary.passed)),
        ("failed", str(summary.failed)),
        ("errored", str(summary.errored)),
        ("not run", str(summary.remaining)),
        ("tokens", f"{summary.tokens:,}" + (f" ({summary.new_tokens:,} new)" if summary.skipped else "")),
        ("time", f"{summary.wall_s:.1f} s"),
    ]
