"""The runner of an evaluation: the agent with the materialised skill on every task.

A runner takes a :class:`RunRequest` and returns a :class:`RunResult` (one verdict per
task and seed, tokens, cost). :func:`evaluate_tasks` is the default: t2s's own agent
(:mod:`t2s.agent.episode`); tests and benchmarks may pass their own.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from t2s import sandbox
from t2s.agent.bundle import SkillBundle
from t2s.agent.episode import AgentOptions
from t2s.agent.trajectory import Trajectory, trajectory_id
from t2s.errors import T2SError
from t2s.evaluation.context import EvalContext
from t2s.faults import ErrorCause
from t2s.llm.client import LLM, default_cache_path
from t2s.record.notes import TaskVerdict
from t2s.record.runs import StageProgress
from t2s.rollouts.harness import episode_executor


@dataclass
class RunRequest:
    """What a runner gets: the materialised skill and the tasks to run it on."""

    ctx: EvalContext
    commit: str
    skill_path: Path
    workdir: Path
    task_ids: list[str]
    seeds: int
    #: Told as each task run starts and ends (the CLI's live bar).
    progress: StageProgress | None = None


@dataclass
class RunResult:
    verdicts: list[TaskVerdict]
    tokens: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    #: Each task run's trajectory as JSON, by trajectory id (kept with a noted result).
    trajectories: dict[str, str] = field(default_factory=dict)


Runner = Callable[[RunRequest], RunResult]


def _task_verdict(task_id: str, k: int, traj: Trajectory | None, doomed: list[str]):
    """A task's line of an evaluation: its verdict, or why it has none (errored, not run)."""
    if traj is None:
        reason = f"not run: {doomed[0]}"
        return TaskVerdict(
            task=task_id,
            seed=k,
            passed=False,
            score=0.0,
            error=reason,
            cause=ErrorCause(kind="not-run", message=reason),
            stop_reason="not run",
        )
    cause = None
    if traj.verdict == "errored":
        cause = traj.error_cause or ErrorCause(kind="error", message=traj.error or "")
    return TaskVerdict(
        task=task_id,
        seed=k,
        passed=traj.passed,
        score=float(traj.score or 0.0),
        error=traj.error if cause else None,
        cause=cause,
        turns=traj.turns,
        stop_reason=traj.stop_reason,
        tokens=traj.usage.total_tokens,
    )


def evaluate_tasks(request: RunRequest) -> RunResult:
    """The runner :func:`t2s.evaluation.evaluate.evaluate` uses: the agent with the materialised
    skill (``request.skill_path``) on every task and seed of ``request``.

    Returns a :class:`t2s.evaluation.evaluate.RunResult`. A budget cap or a replay-cache miss stops
    the evaluation with its :class:`~t2s.errors.T2SError` (no partial record is noted).
    Once a task errors, no result can be recorded, so no further task starts (tasks
    already running finish); the ones left out are errored as ``not-run``.
    """
    ctx = request.ctx
    config = ctx.config
    store = ctx.store
    warning = sandbox.preflight(ctx.unsafe_no_sandbox)  # refuses here, not for a cached result
    if warning:
        print(warning, file=sys.stderr)
    skill = SkillBundle.from_dir(Path(request.skill_path))
    skill.skill_dir = ctx.skill_dir
    skill.tree = store.subtree(request.commit, ctx.skill_dir)
    skill.s0 = request.commit
    cache_path = default_cache_path(store.common_dir, config) if ctx.response_cache else None
    llm = LLM(config, cache_path=cache_path, phase="eval")
    role = llm.role("agent")
    seeds = max(1, int(request.seeds or 1))

    doomed: list[str] = []  # why the evaluation can no longer give a result
    executor = episode_executor(llm, ctx.executor)

    async def main() -> list[tuple[str, int, Trajectory | None]]:
        sem = asyncio.Semaphore(max(1, config.rollout.concurrency))

        async def one(task_id: str, k: int) -> tuple[str, int, Trajectory | None]:
            async with sem:
                if doomed:  # one task errored, so nothing will be recorded: start no more
                    return task_id, k, None
                opts = AgentOptions(
                    max_turns=config.rollout.max_turns,
                    exec_timeout=config.rollout.exec_timeout,
                    phase="eval",
                    seed=((role.seed or 0) + ctx.seed_offset + k) if seeds > 1 or ctx.seed_offset else None,
                    unsafe_no_sandbox=ctx.unsafe_no_sandbox,
                )
                task = ctx.suite.task(task_id)
                label = trajectory_id(task_id, k, seeds)
                if request.progress:
                    request.progress.begin(label)
                workdir = Path(request.workdir) / label
                episode = await executor.episode(
                    llm,
                    ctx.suite,
                    task,
                    skill,
                    workdir,
                    options=opts,
                    traj_id=trajectory_id(task_id, k, seeds),
                    split=ctx.split,
                    seed_index=k,
                )
                traj = episode.trajectory
                if request.progress:
                    request.progress.done(traj, label)
                if traj.verdict == "errored":
                    doomed.append(
                        f"task {task_id} errored first ({traj.error_cause.kind if traj.error_cause else 'error'})"
                    )
                return task_id, k, traj

        if request.progress:
            request.progress.start(len(request.task_ids) * seeds, 0)
        try:
            async with asyncio.TaskGroup() as group:
                jobs = [group.create_task(one(t, k)) for t in request.task_ids for k in range(seeds)]
            return [job.result() for job in jobs]
        except* T2SError as group_err:  # BudgetExceeded / CacheMiss: report the first one
            raise group_err.exceptions[0] from None
        finally:
            await llm.aclose()

    try:
        results = asyncio.run(main())
    finally:
        llm.close()
    verdicts = [_task_verdict(task_id, k, traj, doomed) for task_id, k, traj in results]
    totals = llm.ledger.totals
    return RunResult(
        verdicts=verdicts,
        tokens=totals.total_tokens,
        cost_usd=totals.cost_usd,
        model_calls=totals.calls,
        trajectories={traj.id: traj.to_json() for _, _, traj in results if traj is not None},
    )
