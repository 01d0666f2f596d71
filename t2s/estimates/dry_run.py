"""``--dry-run`` of every stage that calls models: :func:`dry_run` picks the stage's
estimator with the stage's own defaults (split, seeds, mode...), and
:func:`evolve_estimate` chains rollout, analyze and merge over projected work."""

from __future__ import annotations

from typing import Any

from t2s.agent.bundle import SkillBundle
from t2s.config import Config
from t2s.estimates.history import rates
from t2s.estimates.model import Estimate
from t2s.estimates.stages import estimate_analyze, estimate_eval, estimate_merge, estimate_rollout
from t2s.evaluation.context import make_context
from t2s.evaluation.gate import default_baseline
from t2s.gitstore.store import GitStore
from t2s.llm.roles import resolve_roles
from t2s.record.runs import RunRecord
from t2s.record.shards import Shard
from t2s.rollouts.rollout import load_rollout_suite
from t2s.skill.repo import skill_dir_of


def _rollout_tasks(store: GitStore, config: Config, *, suite, split, limit, tasks) -> tuple[Any, list[str]]:
    loaded = load_rollout_suite(config, store, suite)
    ids = list(tasks) if tasks else loaded.task_ids(split or config.rollout.evolve_split)
    return loaded, ids[:limit] if limit else ids


def rollout_estimate(
    store: GitStore,
    config: Config,
    *,
    run=None,
    split=None,
    suite=None,
    rev=None,
    limit=None,
    seeds=None,
    tasks=None,
    concurrency=None,
    models=None,
    shard: Shard | None = None,
) -> Estimate:
    """A rollout (``shard``: of that shard's tasks, as ``t2s rollout --shard`` runs them)."""
    loaded, ids = _rollout_tasks(store, config, suite=suite, split=split, limit=limit, tasks=tasks)
    record = RunRecord(store, run) if run else None
    s0 = rev or (record.manifest().s0 if record is not None and record.exists() else "HEAD")
    if shard is not None:
        ids = shard.select(ids)
    return estimate_rollout(
        store,
        config,
        run=run,
        suite=loaded,
        task_ids=ids,
        seeds=seeds or 1,
        rev=s0,
        skill_dir=skill_dir_of(store, config, s0),
        concurrency=concurrency,
        models=models,
        shard=shard,
    )


def analyze_estimate(
    store: GitStore,
    config: Config,
    run: str,
    *,
    mode=None,
    analyst=None,
    concurrency=None,
    models=None,
    shard: Shard | None = None,
) -> Estimate:
    return estimate_analyze(
        store,
        config,
        run=run,
        mode=mode or config.analyze.mode,
        analyst=analyst or config.analyze.analyst,
        concurrency=concurrency,
        models=models,
        shard=shard,
    )


def merge_estimate(store: GitStore, config: Config, run: str, *, fan_in=None, models=None) -> Estimate:
    return estimate_merge(store, config, run=run, fan_in=fan_in, models=models)


def eval_estimate(
    store: GitStore,
    config: Config,
    revs: list[str],
    *,
    stage="eval",
    split=None,
    seeds=None,
    suite=None,
    cache=True,
    shard: Shard | None = None,
) -> Estimate:
    ctx = make_context(store, config, split=split, seeds=seeds, suite=suite, rev_for_skill=revs[0])
    return estimate_eval(ctx, revs, stage=stage, cache=cache, shard=shard)


def gate_estimate(store: GitStore, config: Config, candidate: str, baseline: str | None = None, **options) -> Estimate:
    baseline = baseline or default_baseline(store, store.resolve(candidate), config)
    return eval_estimate(store, config, [baseline, candidate], stage="gate", **options)


def evolve_estimate(
    store: GitStore,
    config: Config,
    *,
    run=None,
    split=None,
    suite=None,
    rev=None,
    limit=None,
    concurrency=None,
    analyst=None,
    mode=None,
    fan_in=None,
    models=None,
    rounds: int = 1,
    gated: bool = False,
) -> Estimate:
    """Rollout, analyze and merge of one round over projected work, times ``rounds``
    (an upper bound: a round whose gate fails ends the evolve)."""
    out = rollout_estimate(
        store, config, run=run, split=split, suite=suite, rev=rev, limit=limit, concurrency=concurrency, models=models
    )
    agent = out.rows[0]
    mode = mode or config.analyze.mode
    analyst = analyst or config.analyze.analyst
    analyst_model = resolve_roles(config, overrides=models, roles=("analyst",))["analyst"].model
    pass_rate, patch_rate, source = rates(store, analyst_model)
    episodes = agent.items
    trajectory_tokens = round(agent.input_tokens / agent.calls) if agent.calls else 0
    passed = round(episodes * pass_rate)
    projected = [("passed", trajectory_tokens)] * passed + [("failed", trajectory_tokens)] * (episodes - passed)
    projected = [
        p for p in projected if p[0] in {"error": ("failed",), "success": ("passed",)}.get(mode, ("failed", "passed"))
    ]
    s0 = rev or "HEAD"
    skill = SkillBundle.from_git(store, s0, skill_dir_of(store, config, s0))
    out.extend(
        estimate_analyze(
            store,
            config,
            run=None,
            mode=mode,
            analyst=analyst,
            concurrency=concurrency,
            models=models,
            projected=projected,
            skill=skill,
        )
    )
    patches = round(len(projected) * patch_rate)
    out.extend(
        estimate_merge(store, config, run=None, fan_in=fan_in, models=models, projected_patches=patches, skill=skill)
    )
    out.notes.append(
        f"projected from {source}: {episodes} trajectories, {100 * pass_rate:.0f}% passing, "
        f"{len(projected)} analyses, {patches} patches"
    )
    baseline = Estimate()
    if gated:  # each round gates its candidate (a new skill, never in the eval notes) against its S0
        ctx = make_context(store, config, rev_for_skill=s0)
        out.extend(estimate_eval(ctx, [s0], stage="gate candidate", cache=False))
        baseline = estimate_eval(ctx, [s0], stage="gate baseline")
        out.notes.append("the gate's candidate is estimated with S0's skill (its size is not known yet)")
    if rounds > 1:
        one = list(out.rows)
        for n in range(2, rounds + 1):
            out.rows += [row.model_copy(update={"stage": f"{row.stage} (round {n})"}) for row in one]
        out.notes.append(f"{rounds} rounds at most: early stopping at a failing gate spends less")
    return out.extend(baseline)  # once: a later round's baseline is the previous candidate, already evaluated
