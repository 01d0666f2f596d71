"""Where episodes run: in this process (the default) or as Ray tasks on a cluster.

An executor runs one agent episode (agent loop, sandbox, checker) and hands back the
trajectory and the files to keep with it. The caller, the *driver*, alone writes git
and keeps the ledger: a Ray worker builds its own model client, runs the episode in a
scratch folder of its own machine, and returns the trajectory, the artifacts' bytes
and its ledger rows; the driver adds the rows to its ledger and records the episode.

:class:`RayExecutor` (``--executor ray [--ray-address ADDR]``, ``pip install 't2s[ray]'``):

- each episode is one Ray task declaring its resources (``num_cpus``, default 1);
- a worker lost mid-episode (killed, its node gone) is retried by Ray
  (``max_retries``, default 1); the episode is recorded once, by the driver, when the
  task's result arrives, so a lost attempt leaves nothing behind;
- a task lost beyond its retries, or one that raised, gives an ``errored`` trajectory
  (kind ``harness``, as a local episode that crashed): no verdict, run again next
  time; the stage goes on;
- the driver checks the budget caps before it submits each episode (the workers run
  uncapped), so a cap stops new work as it does locally; progress advances as results
  come back.

Without an address, Ray starts a cluster on this machine; with one, it joins that
cluster (``ray://`` or ``host:port``). Workers need the model endpoint's key variables
in their environment (Ray's ``runtime_env``), as a local run does.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from t2s.agent.bundle import SkillBundle
from t2s.agent.episode import AgentOptions, artifact_files, new_trajectory, record_error, run_agent
from t2s.agent.trajectory import Trajectory, now_iso
from t2s.config import BudgetSection
from t2s.errors import UsageError
from t2s.faults import ErrorCause, cause_of
from t2s.llm.client import LLM
from t2s.llm.errors import BudgetExceeded, CacheMiss

EXECUTORS = ("local", "ray")
#: Ray task retries after a lost worker (an episode is retried once, recorded once).
RAY_MAX_RETRIES = 1


@dataclass
class Episode:
    """One finished episode: its trajectory and the files to keep with it."""

    trajectory: Trajectory
    artifacts: dict[str, bytes] = field(default_factory=dict)


class Executor(Protocol):
    """Runs one agent episode; see the module doc."""

    name: str

    async def episode(
        self,
        llm: LLM,
        suite: Any,
        task: Any,
        skill: SkillBundle,
        workdir: Path,
        *,
        options: AgentOptions,
        traj_id: str,
        split: str,
        seed_index: int,
    ) -> Episode: ...


class LocalExecutor:
    """Episodes in this process, on this event loop (what t2s always did)."""

    name = "local"

    async def episode(self, llm, suite, task, skill, workdir, *, options, traj_id, split, seed_index) -> Episode:
        traj = await run_agent(
            llm, suite, task, skill, workdir, options=options, traj_id=traj_id, split=split, seed_index=seed_index
        )
        return Episode(traj, artifact_files(traj, workdir))


@dataclass
class WorkerModels:
    """What a Ray worker needs to build a model client of its own (all picklable): the
    driver's roles, prices and cache; no budget caps (the driver holds them)."""

    config: Any
    roles: dict[str, Any]
    cache_path: str | None
    cache_mode: str | None
    phase: str

    @classmethod
    def of(cls, llm: LLM, config: Any, phase: str) -> WorkerModels:
        cache = llm.cache
        return cls(
            config=config,
            roles=dict(llm.roles),
            cache_path=str(cache.path) if cache is not None else None,
            cache_mode=cache.mode if cache is not None else "off",
            phase=phase,
        )

    def client(self) -> LLM:
        return LLM(
            self.config,
            roles=self.roles,
            cache_path=self.cache_path,
            cache_mode=self.cache_mode,
            phase=self.phase,
            budget=BudgetSection(),  # the driver holds the caps
        )


def ledger_rows(llm: LLM) -> list[dict[str, Any]]:
    """A worker's spending, for the driver's ledger."""
    return [row.to_dict() for row in llm.ledger.rows.values()]


class RayTasks:
    """Pieces of work as Ray tasks of ``fn(work) -> (result, ledger rows)``: resources
    declared per task, a lost worker retried (``max_retries``), the budget caps checked
    before each task is submitted, the worker's ledger rows added to the driver's."""

    def __init__(self, fn: Any, name: str, address: str | None, *, num_cpus: float, max_retries: int):
        self.max_retries = max_retries
        self._ray = ray_session(address)
        self._remote = self._ray.remote(fn).options(num_cpus=num_cpus, max_retries=max_retries, name=name)

    async def run(self, llm: LLM, work: Any) -> tuple[Any, ErrorCause | None]:
        """``(result, None)``, or ``(None, why)`` when the task was lost beyond its
        retries or raised (a budget stop or a cache miss inside it is raised as itself)."""
        llm.ledger.admit()  # a budget cap stops new work here, before a task is submitted
        llm.ledger.release()
        ref = self._remote.remote(work)
        try:
            result, rows = await asyncio.wrap_future(ref.future())
        except self._ray.exceptions.RayError as err:
            return None, ray_failure(err, self.max_retries)
        llm.ledger.absorb(rows)
        return result, None


@dataclass
class _Work:
    """What a Ray worker needs to run an episode (all picklable)."""

    models: WorkerModels
    suite: Any
    task_id: str
    skill: SkillBundle
    options: AgentOptions
    traj_id: str
    split: str
    seed_index: int


def run_work(work: _Work) -> tuple[tuple[Trajectory, dict[str, bytes]], list[dict[str, Any]]]:
    """One episode on a worker: its own client and scratch folder; returns the
    trajectory and the artifacts, and the ledger rows (the worker writes nothing)."""
    llm = work.models.client()
    try:
        with tempfile.TemporaryDirectory(prefix="t2s-ray-") as tmp:
            workdir = Path(tmp) / work.traj_id
            traj = llm.run(
                run_agent(
                    llm,
                    work.suite,
                    work.suite.task(work.task_id),
                    work.skill,
                    workdir,
                    options=work.options,
                    traj_id=work.traj_id,
                    split=work.split,
                    seed_index=work.seed_index,
                )
            )
            files = artifact_files(traj, workdir)
    finally:
        llm.close()
    return (traj, files), ledger_rows(llm)


class RayExecutor:
    """Episodes as Ray tasks (see the module doc)."""

    name = "ray"

    def __init__(
        self,
        config: Any = None,
        address: str | None = None,
        *,
        num_cpus: float = 1,
        max_retries: int = RAY_MAX_RETRIES,
    ):
        self.config = config
        self._tasks = RayTasks(run_work, "t2s_episode", address, num_cpus=num_cpus, max_retries=max_retries)

    async def episode(self, llm, suite, task, skill, workdir, *, options, traj_id, split, seed_index) -> Episode:
        work = _Work(
            models=WorkerModels.of(llm, self.config, options.phase),
            suite=suite,
            task_id=task.id,
            skill=skill,
            options=options,
            traj_id=traj_id,
            split=split,
            seed_index=seed_index,
        )
        result, failure = await self._tasks.run(llm, work)
        if failure is not None:  # lost beyond its retries, or it raised: an errored episode
            traj = new_trajectory(
                llm, suite, task, skill, options=options, traj_id=traj_id, split=split, seed_index=seed_index
            )
            record_error(traj, failure)
            traj.stop_reason = "error"
            traj.timings.finished_at = now_iso()
            return Episode(traj)
        traj, files = result
        return Episode(traj, files)


def ray_session(address: str | None) -> Any:
    """The ``ray`` module, joined to the cluster at ``address`` (None: a cluster of this
    machine), or a clear error when Ray is not installed."""
    try:
        import ray  # optional and heavy: loaded only when asked for
    except ImportError:
        raise UsageError("--executor ray needs Ray, which is not installed", hint="pip install 't2s[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    return ray


def ray_failure(err: BaseException, retries: int) -> ErrorCause:
    """Why a Ray task gave no result: its worker was lost beyond ``retries`` retries, or
    the task raised. A budget stop or a cache miss inside it is raised again as itself
    (the stage stops; it is not an error of this piece of work)."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, (BudgetExceeded, CacheMiss)):
        raise cause from None
    if isinstance(cause, BaseException):  # the task raised: name the original error, not Ray's wrapper
        return cause_of(cause, prefix="Ray task raised: ")
    first = (str(err).strip().splitlines() or [""])[0]
    return ErrorCause(
        kind="harness",
        message=f"Ray task lost after {retries} retr{'y' if retries == 1 else 'ies'}: {type(err).__name__}: {first}",
    )


def make_executor(name: str | None, address: str | None = None, config: Any = None) -> Executor:
    """The executor called ``name`` (``local``, the default, or ``ray``); ``config``
    (prices, cache settings) goes to the workers."""
    if name in (None, "local"):
        if address:
            raise UsageError("--ray-address goes with --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(config, address or os.environ.get("RAY_ADDRESS") or None)
    raise UsageError(f"unknown executor {name!r}: use {' or '.join(EXECUTORS)}")
