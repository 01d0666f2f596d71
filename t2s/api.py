"""t2s as a library: the stages as functions with one shape.

Every stage takes the repository first, then what it works on, then keyword options,
and returns a typed summary::

    import t2s

    repo = t2s.open_repo("my-skills")
    t2s.rollout(repo, "r1", split="evolve")            # -> RolloutSummary
    t2s.analyze(repo, "r1")                            # -> AnalyzeSummary
    summary = t2s.merge(repo, "r1")                    # -> MergeSummary
    result = t2s.gate(repo, summary.candidate_ref)     # -> GateResult
    if result.passed:
        t2s.release(repo, summary.candidate_ref)       # -> ReleaseResult

``t2s.evolve(repo, "r1")`` runs rollout, analyze and merge in one call. Each stage
resumes where it stopped when called again with the same run. ``models`` overrides
model settings per role, e.g. ``{"agent": {"model": "qwen2.5-coder"}}`` (``"*"``
applies to every role); ``cache=False`` neither reads nor writes the response cache.
Errors a user can cause are :class:`t2s.T2SError` subclasses; work that errored
because of the model endpoint is reported in the summary (``summary.errored_work()``).

The command line is a thin layer over these functions (``t2s/commands/``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from t2s import sandbox
from t2s.agent.episode import AgentOptions
from t2s.agent.executor import make_executor
from t2s.analysis.analyze import AnalyzeSettings, AnalyzeSummary, analyze_run
from t2s.analysis.executors import make_analysis_executor
from t2s.config import ROLES, Config, load_config
from t2s.consolidation.models import MergeSummary
from t2s.consolidation.selection import Selection, select_candidate
from t2s.consolidation.stage import merge_run
from t2s.errors import UsageError
from t2s.estimates import dry_run
from t2s.estimates.model import Estimate, refuse_over_budget
from t2s.estimates.recorded import record_estimate
from t2s.evaluation.context import make_context
from t2s.evaluation.evaluate import EvalOutcome, evaluate as evaluate_in
from t2s.evaluation.gate import GateResult, gate as gate_in
from t2s.evaluation.noise import NoiseFloor, noise_floor as noise_floor_in
from t2s.evaluation.shards import EvalCollect, collect_eval
from t2s.evaluation.validation import val_scorer
from t2s.gitstore.store import GitStore
from t2s.llm.client import LLM, default_cache_path
from t2s.record import refs
from t2s.record.runs import RunRecord, StageProgress, check_run_name
from t2s.record.shards import CollectResult, Shard, collect_run, parse_shard, stages_with_shards
from t2s.releases.release import ReleaseResult, release as release_in
from t2s.rollouts.importing import ImportSummary, import_trajectories
from t2s.rollouts.rollout import RolloutSummary, load_rollout_suite, rollout as rollout_in

#: Per-role model settings: ``{"agent": {"model": ...}, "*": {"base_url": ...}}``.
Models = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Repo:
    """A skill repository: its git store and its ``t2s.toml``."""

    store: GitStore
    config: Config

    @property
    def root(self) -> Path:
        """The repository's top folder."""
        return self.store.root


def open_repo(path: str | Path = ".") -> Repo:
    """Open the skill repository containing ``path`` (defaults: ``t2s.toml`` where it is
    silent). Raises :class:`t2s.UsageError` when ``path`` is in no git repository."""
    start = Path(path)
    if not start.exists():
        raise UsageError(f"{start}: no such directory")
    store = GitStore.discover(start)
    return Repo(store, load_config(store.root / "t2s.toml"))


def _overrides(models: Models | None) -> dict[str, dict[str, Any]] | None:
    """The model overrides as the client takes them; unknown roles are refused."""
    if not models:
        return None
    unknown = sorted(set(models) - set(ROLES) - {"*"})
    if unknown:
        raise UsageError(f"unknown model role(s) {', '.join(unknown)}: the roles are {', '.join(ROLES)} (or '*')")
    return {role: dict(settings) for role, settings in models.items()}


def _llm(repo: Repo, phase: str, models: Models | None, cache: bool) -> LLM:
    path = default_cache_path(repo.store.common_dir, repo.config) if cache else None
    return LLM(repo.config, cache_path=path, phase=phase, overrides=_overrides(models))


def default_run_name() -> str:
    """A run name from the clock, ``rYYYYMMDD-HHMMSS`` (UTC)."""
    return datetime.now(UTC).strftime("r%Y%m%d-%H%M%S")


#: The stages ``estimate`` knows, and their estimator.
ESTIMATORS: dict[str, Callable[..., Estimate]] = {
    "rollout": dry_run.rollout_estimate,
    "analyze": dry_run.analyze_estimate,
    "merge": dry_run.merge_estimate,
    "eval": dry_run.eval_estimate,
    "gate": dry_run.gate_estimate,
    "evolve": dry_run.evolve_estimate,
}


def estimate(repo: Repo, stage: str, *args: Any, **options: Any) -> Estimate:
    """What ``stage`` would spend with these arguments (the stage function's own, e.g.
    ``estimate(repo, "rollout", run="r1", split="evolve")``), per role: calls, input and
    output tokens, USD and wall time. Calls no model and writes nothing (``--dry-run``).
    ``shard`` (``"K/N"``, ``"auto"``; rollout, analyze, eval) estimates that shard's part."""
    if stage not in ESTIMATORS:
        raise UsageError(f"no estimate for stage {stage!r} (stages: {', '.join(ESTIMATORS)})")
    if (shard := _shard(options.pop("shard", None))) is not None:
        if stage not in ("rollout", "analyze", "eval"):
            raise UsageError(f"the {stage} stage is not sharded", hint="shards: rollout, analyze and eval")
        options["shard"] = shard
    models = options.pop("models", None)
    if stage in ("rollout", "analyze", "merge", "evolve"):
        options["models"] = _overrides(models)
    return ESTIMATORS[stage](repo.store, repo.config, *args, **options)


def _planned(make: Callable[[], Estimate]) -> Estimate | None:
    """A stage's estimate, kept with its ledger; an estimate that cannot be made (the
    stage itself will say why) never stops the stage."""
    try:
        return make()
    except Exception:  # an estimate is advice: it must never stop the work it estimates
        return None


def _keep_estimate(repo: Repo, run: str, phase: str, planned: Estimate | None, shard: Shard | None = None) -> None:
    """Keep a stage's estimate in the run record (a shard's, in its own part of it)."""
    if planned is not None:
        record_estimate(repo.store, run, phase, planned, shard=shard.label if shard else None)


# ---------------------------------------------------------------------- the stages
def rollout(
    repo: Repo,
    run: str | None = None,
    *,
    split: str | None = None,
    suite: str | None = None,
    rev: str | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    seeds: int | None = None,
    tasks: list[str] | None = None,
    max_turns: int | None = None,
    protocol: Literal["auto", "tools", "text"] | None = None,
    models: Models | None = None,
    cache: bool = True,
    retry_errored: bool = True,
    unsafe_no_sandbox: bool | None = None,
    progress: StageProgress | None = None,
    shard: str | Shard | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
) -> RolloutSummary:
    """Run the agent with the skill at S0 (``rev``, default HEAD) on the tasks of a split;
    every finished task goes into the run record ``run`` at once. Called again, it
    runs only what is missing (and what errored, unless ``retry_errored=False``).
    Raises :class:`t2s.sandbox.SandboxUnavailable` when model code cannot be isolated
    here and unsandboxed runs are not allowed (``unsafe_no_sandbox``; None: the
    ``T2S_UNSAFE_NO_SANDBOX`` environment variable). ``shard`` (``"K/N"``, ``"auto"``)
    runs one shard of the tasks into its own part of the record (:func:`collect`);
    ``executor="ray"`` runs each episode as a Ray task (:mod:`t2s.agent.executor`)."""
    run = check_run_name(run or default_run_name())
    part = _shard(shard)
    loaded = load_rollout_suite(repo.config, repo.store, suite)
    sandbox.preflight(unsafe_no_sandbox)
    options = AgentOptions(
        max_turns=max_turns or repo.config.rollout.max_turns,
        exec_timeout=repo.config.rollout.exec_timeout,
        protocol=protocol,
        unsafe_no_sandbox=unsafe_no_sandbox,
    )
    planned = _planned(
        lambda: dry_run.rollout_estimate(
            repo.store,
            repo.config,
            run=run,
            split=split,
            suite=suite,
            rev=rev,
            limit=limit,
            seeds=seeds,
            tasks=tasks or None,
            concurrency=concurrency,
            models=_overrides(models),
            shard=part,
        )
    )
    llm = _llm(repo, "rollout", models, cache)
    try:
        summary = rollout_in(
            repo.store,
            repo.config,
            run=run,
            split=split,
            suite=loaded,
            rev=rev,
            limit=limit,
            concurrency=concurrency,
            seeds=seeds,
            task_ids=tasks or None,
            options=options,
            llm=llm,
            retry_errored=retry_errored,
            progress=progress,
            shard=part,
            executor=make_executor(executor, ray_address, repo.config),
        )
    finally:
        llm.close()
    _keep_estimate(repo, run, "rollout", planned, part)  # a shard's in its own part: collect adds them up
    return summary


def analyze(
    repo: Repo,
    run: str,
    *,
    mode: Literal["error", "success", "combined"] | None = None,
    analyst: Literal["agentic", "single-call"] | None = None,
    concurrency: int | None = None,
    max_turns: int | None = None,
    include_unvalidated: bool | None = None,
    protocol: Literal["auto", "tools", "text"] | None = None,
    models: Models | None = None,
    cache: bool = True,
    retry_errored: bool = True,
    unsafe_no_sandbox: bool | None = None,
    progress: StageProgress | None = None,
    shard: str | Shard | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
) -> AnalyzeSummary:
    """Analyze the trajectories of run ``run``: one analyst per trajectory, each against
    the frozen S0; every accepted patch becomes a branch ``t2s/<run>/patch/<nnnn>``.
    Called again, it analyzes only what is missing (and what errored). ``shard``
    analyzes one shard of the trajectories (a sharded rollout is collected first);
    ``executor="ray"`` runs each analysis as a Ray task (:mod:`t2s.analysis.executors`)."""
    check_run_name(run)
    part = _shard(shard)
    analyses = make_analysis_executor(executor, ray_address, repo.config)
    settings = AnalyzeSettings.from_config(
        repo.config,
        mode=mode,
        analyst=analyst,
        concurrency=concurrency,
        max_turns=max_turns,
        include_unvalidated=include_unvalidated,
        protocol=protocol,
        unsafe_no_sandbox=unsafe_no_sandbox,
    )
    planned = _planned(
        lambda: dry_run.analyze_estimate(
            repo.store,
            repo.config,
            run,
            mode=settings.mode,
            analyst=settings.analyst,
            concurrency=settings.concurrency,
            models=_overrides(models),
            shard=part,
        )
    )
    llm = _llm(repo, "analyze", models, cache)
    try:
        summary = analyze_run(
            repo.store,
            repo.config,
            run=run,
            settings=settings,
            llm=llm,
            progress=progress,
            retry_errored=retry_errored,
            shard=part,
            executor=analyses,
        )
    finally:
        llm.close()
    _keep_estimate(repo, run, "analyze", planned, part)  # a shard's in its own part: collect adds them up
    return summary


def merge(
    repo: Repo,
    run: str,
    *,
    fan_in: int | None = None,
    strategy: Literal["parallel", "sequential"] = "parallel",
    batch: int = 5,
    retry_failed: bool = False,
    rebuild: bool = False,
    models: Models | None = None,
    cache: bool = True,
    progress: Callable[[str], None] | None = None,
    validate: bool | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
) -> MergeSummary:
    """Merge run ``run``'s patch branches level by level into ``t2s/<run>/candidate``
    (octopus merges of at most ``fan_in`` heads, resolved by the merger model).
    ``rebuild`` sets an earlier merge tree aside first (after rejecting a merged patch).
    Each merge node is scored on the validation split (``[merge] validate``; ``validate``
    True/False overrides it) and one that loses to its best input is rejected.
    ``executor="ray"`` runs those validation episodes as Ray tasks."""
    run = check_run_name(run)
    planned = _planned(
        lambda: dry_run.merge_estimate(repo.store, repo.config, run, fan_in=fan_in, models=_overrides(models))
    )
    scorer = None
    if strategy == "parallel":
        skill_dir = RunRecord(repo.store, run).manifest().skill_dir
        scorer = val_scorer(repo.store, repo.config, skill_dir=skill_dir, validate=validate)
    if scorer is not None or executor != "ray":  # Ray is joined only when validation episodes will run
        runner = make_executor(executor, ray_address, repo.config)  # refuses --ray-address without ray
        if scorer is not None:
            scorer.ctx.executor = runner
    summary = merge_run(
        repo.store,
        repo.config,
        run=run,
        fan_in=fan_in,
        strategy=strategy,
        batch=batch,
        retry_failed=retry_failed,
        rebuild=rebuild,
        overrides=_overrides(models),
        cache=cache,
        progress=progress,
        scorer=scorer,
        val_tasks=scorer.tasks if scorer is not None else (),
    )
    if not retry_failed and not rebuild:  # a retry or a rebuild re-merges what the estimate counted as done
        _keep_estimate(repo, run, "merge", planned)
    return summary


def select(repo: Repo, run: str) -> Selection:
    """Every node of run ``run``'s merge tree with its validation score, verdict, support
    and size, and which one ``t2s/<run>/candidate`` points at, and why."""
    return select_candidate(repo.store, check_run_name(run))


def evaluate(
    repo: Repo,
    rev: str = "HEAD",
    *,
    split: str | None = None,
    seeds: int | None = None,
    suite: str | None = None,
    cache: bool = True,
    unsafe_no_sandbox: bool | None = None,
    on_wait: Callable[[str], None] | None = None,
    tasks: list[str] | None = None,
    limit: int | None = None,
    progress: StageProgress | None = None,
    shard: str | Shard | None = None,
    executor: str | None = None,
    ray_address: str | None = None,
) -> EvalOutcome:
    """Evaluate the skill at ``rev`` on a split (default: the held-out one) and note the
    result on ``rev``; an identical skill, suite and agent evaluated before costs
    nothing. Raises :class:`t2s.evaluation.evaluate.EvalErrored` (and notes nothing)
    when a task errored. ``tasks``/``limit`` run only part of the split, a quick look
    that is never cached or noted (``outcome.subset`` says so). ``shard`` (``"K/N"``,
    ``"auto"``) runs one shard of the tasks and notes a partial record of its own; the
    evaluation of all shards is collected by the next ``evaluate``/``gate`` (or
    :func:`collect`), which refuses a partial one. ``executor="ray"`` runs each episode
    as a Ray task (:mod:`t2s.agent.executor`)."""
    part = _shard(shard)
    ctx = make_context(
        repo.store,
        repo.config,
        split=split,
        seeds=seeds,
        suite=suite,
        rev_for_skill=rev,
        unsafe_no_sandbox=unsafe_no_sandbox,
        tasks=tasks,
        limit=limit,
    )
    ctx.executor = make_executor(executor, ray_address, repo.config)
    return evaluate_in(ctx, rev, use_cache=cache, on_wait=on_wait, progress=progress, shard=part)


def noise_floor(
    repo: Repo,
    rev: str = "HEAD",
    *,
    repeat: int = 2,
    split: str | None = None,
    seeds: int | None = None,
    suite: str | None = None,
    unsafe_no_sandbox: bool | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> NoiseFloor:
    """Evaluate the skill at ``rev`` ``repeat`` times (at least 2) with neither the eval
    cache nor the response cache, and say how far the runs agree: the delta the
    agent's own noise makes (``t2s eval REV --repeat 2``)."""
    ctx = make_context(
        repo.store,
        repo.config,
        split=split,
        seeds=seeds,
        suite=suite,
        rev_for_skill=rev,
        unsafe_no_sandbox=unsafe_no_sandbox,
    )
    return noise_floor_in(ctx, rev, repeat, on_wait=on_wait)


def collect(
    repo: Repo,
    run: str | None = None,
    *,
    eval_rev: str | None = None,
    split: str | None = None,
    seeds: int | None = None,
    suite: str | None = None,
) -> CollectSummary:
    """Join shards into what an unsharded stage writes: every sharded stage of run
    ``run`` into its run record, and/or the sharded evaluation of ``eval_rev`` (on
    ``split``) into its eval note. Refuses a mix of settings (naming the odd shard) and
    names missing shards (:class:`t2s.record.shards.MissingShards`). A no-op when done."""
    if run is None and eval_rev is None:
        raise UsageError("collect what? give a run or an evaluated revision", hint="t2s collect --run R, or --eval REV")
    summary = CollectSummary()
    if run is not None:
        check_run_name(run)
        for stage in stages_with_shards(repo.store, run):
            summary.stages.append(collect_run(repo.store, run, stage))
        if not summary.stages:
            raise UsageError(f"run {run!r} has no shards to collect", hint=f"shards write {refs.shard_records(run)}...")
    if eval_rev is not None:
        ctx = make_context(repo.store, repo.config, split=split, seeds=seeds, suite=suite, rev_for_skill=eval_rev)
        commit = repo.store.resolve(eval_rev)
        tree = repo.store.subtree(commit, ctx.skill_dir)
        if not tree:
            raise UsageError(f"{eval_rev} has no skill folder {ctx.skill_dir}")
        joined = collect_eval(ctx, commit, tree)
        if not joined.shards:
            raise UsageError(f"no shards of an evaluation of {eval_rev} on {ctx.suite_name}/{ctx.split}")
        summary.evaluation = joined
    return summary


@dataclass
class CollectSummary:
    """What :func:`collect` joined: one result per sharded stage, and the evaluation."""

    stages: list[CollectResult] = field(default_factory=list)
    evaluation: EvalCollect | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what ``t2s collect --json`` prints)."""
        return {
            "stages": [s.to_dict() for s in self.stages],
            "evaluation": self.evaluation.to_dict() if self.evaluation else None,
        }


def _shard(shard: str | Shard | None) -> Shard | None:
    return shard if isinstance(shard, Shard) or shard is None else parse_shard(shard)


def gate(
    repo: Repo,
    candidate: str,
    baseline: str | None = None,
    *,
    split: str | None = None,
    seeds: int | None = None,
    suite: str | None = None,
    min_delta: float | None = None,
    max_regressions: int | None = None,
    decide: Literal["delta", "significant"] | None = None,
    alpha: float | None = None,
    cache: bool = True,
    unsafe_no_sandbox: bool | None = None,
    on_wait: Callable[[str], None] | None = None,
    tasks: list[str] | None = None,
    limit: int | None = None,
    progress: StageProgress | None = None,
) -> GateResult:
    """Evaluate ``candidate`` and a baseline (default: the latest release, else the run's
    S0) on the same split and agent, pair them per task and judge: the verdict goes
    into the candidate's eval note, where ``release`` looks for it. ``decide`` and
    ``alpha`` override ``[gate] decide`` / ``[gate] alpha`` (the decision rule). With
    ``tasks`` or ``limit`` (part of the split) nothing is cached or noted: ``release``
    never sees it."""
    ctx = make_context(
        repo.store,
        repo.config,
        split=split,
        seeds=seeds,
        suite=suite,
        rev_for_skill=candidate,
        unsafe_no_sandbox=unsafe_no_sandbox,
        tasks=tasks,
        limit=limit,
    )
    return gate_in(
        ctx,
        candidate,
        baseline,
        min_delta=min_delta,
        max_regressions=max_regressions,
        decide=decide,
        alpha=alpha,
        use_cache=cache,
        on_wait=on_wait,
        progress=progress,
    )


def release(
    repo: Repo,
    candidate: str,
    *,
    bump: Literal["major", "minor", "patch"] = "minor",
    branch: str | None = None,
) -> ReleaseResult:
    """Release a gated ``candidate``: a merge on the release branch (first parent: the
    previous release) and an annotated tag ``vX.Y.Z`` with the eval table and the
    changelog. Refuses without a passing gate."""
    return release_in(repo.store, repo.config, candidate, bump=bump, branch=branch)


def import_traces(
    repo: Repo,
    paths: list[str | Path],
    *,
    fmt: str,
    run: str,
    verdict: str | None = None,
    outputs: str | Path | None = None,
    skill: str | None = None,
    suite: str | None = None,
) -> ImportSummary:
    """``t2s import``: other agents' trajectories (any registered format, e.g. ``trace2skill``)
    into run ``run``; ``outputs`` attaches and re-checks their workbooks, ``skill`` sets S0."""
    return import_trajectories(
        repo.store,
        repo.config,
        run=run,
        paths=[Path(p) for p in paths],
        fmt=fmt,
        verdict=verdict,
        outputs=Path(outputs) if outputs is not None else None,
        skill=skill,
        suite=suite,
    )


@dataclass
class EvolveSummary:
    """What ``evolve`` did: each stage's summary, and the stage that stopped it (if any)."""

    run: str
    rollout: RolloutSummary | None = None
    analyze: AnalyzeSummary | None = None
    merge: MergeSummary | None = None
    #: ``rollout`` or ``analyze`` when that stage's work errored (or a budget cap
    #: stopped it) and the later stages were not run.
    stopped_at: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``t2s evolve --json``)."""
        return {
            "run": self.run,
            "stopped_at": self.stopped_at,
            "rollout": self.rollout.to_dict() if self.rollout else None,
            "analyze": self.analyze.to_dict() if self.analyze else None,
            "merge": self.merge.model_dump() if self.merge else None,
        }


def evolve(
    repo: Repo,
    run: str,
    *,
    split: str | None = None,
    rev: str | None = None,
    suite: str | None = None,
    limit: int | None = None,
    concurrency: int | None = None,
    analyst: Literal["agentic", "single-call"] | None = None,
    mode: Literal["error", "success", "combined"] | None = None,
    fan_in: int | None = None,
    strategy: Literal["parallel", "sequential"] = "parallel",
    batch: int = 5,
    models: Models | None = None,
    cache: bool = True,
    unsafe_no_sandbox: bool | None = None,
    on_stage: Callable[[str], None] | None = None,
    progress: Callable[[str], StageProgress | None] | None = None,
    merge_progress: Callable[[str], None] | None = None,
    force: bool = False,
    executor: str | None = None,
    ray_address: str | None = None,
) -> EvolveSummary:
    """Rollout, analyze and merge run ``run`` in one call; resumable at any stage.
    ``executor="ray"`` runs the episodes (the rollout's and the merge's validation) and
    the analyses as Ray tasks.

    A stage whose work errored (or that a budget cap stopped) ends the evolve there:
    ``stopped_at`` names it, and its summary says why. ``on_stage`` is told each
    stage's name as it starts; ``progress(stage)`` may give a progress reporter.

    When ``[budget]`` caps are set, the evolve is estimated first and refused up front
    (:class:`t2s.estimates.model.WouldExceedBudget`, with the estimate) when it would
    exceed one, unless ``force``."""
    check_run_name(run)
    budget = repo.config.budget
    if not force and (budget.max_calls is not None or budget.max_tokens is not None or budget.max_usd is not None):
        planned = dry_run.evolve_estimate(
            repo.store,
            repo.config,
            run=run,
            split=split,
            suite=suite,
            rev=rev,
            limit=limit,
            concurrency=concurrency,
            analyst=analyst,
            mode=mode,
            fan_in=fan_in,
            models=_overrides(models),
        )
        refuse_over_budget(planned, repo.config)
    out = EvolveSummary(run=run)
    tell = on_stage or (lambda name: None)
    reporter = progress or (lambda name: None)
    tell("rollout")
    out.rollout = rollout(
        repo,
        run,
        split=split,
        rev=rev,
        suite=suite,
        limit=limit,
        concurrency=concurrency,
        models=models,
        cache=cache,
        unsafe_no_sandbox=unsafe_no_sandbox,
        progress=reporter("rollout"),
        executor=executor,
        ray_address=ray_address,
    )
    if out.rollout.errored_work() is not None or out.rollout.stopped:
        out.stopped_at = "rollout"
        return out
    tell("analyze")
    out.analyze = analyze(
        repo,
        run,
        mode=mode,
        analyst=analyst,
        concurrency=concurrency,
        models=models,
        cache=cache,
        unsafe_no_sandbox=unsafe_no_sandbox,
        progress=reporter("analyze"),
        executor=executor,
        ray_address=ray_address,
    )
    if out.analyze.errored_work() is not None or out.analyze.stopped:
        out.stopped_at = "analyze"
        return out
    tell("merge")
    out.merge = merge(
        repo,
        run,
        fan_in=fan_in,
        strategy=strategy,
        batch=batch,
        models=models,
        cache=cache,
        progress=merge_progress,
        executor=executor,
        ray_address=ray_address,
    )
    return out
