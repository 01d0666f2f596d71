"""Per-stage estimates (``--dry-run``): they read the repository and render prompts in a
scratch folder, and spend and write nothing (no model call, ref, note or file).

- **rollout / eval / gate** (the agent): the opening prompt of every task (system prompt
  with the skill, task prompt) is rendered exactly as an episode sends it
  (:func:`t2s.agent.episode.opening_messages`) and counted; turns, output tokens and
  the growth of the conversation come from earlier trajectories of the same model
  (:mod:`t2s.estimates.history`). Evaluations already in the eval notes cost nothing.
- **analyze** (the analysts): one analysis per selected trajectory; its opening is the
  analyst's prompt files, the skill's files and the trajectory's messages.
- **merge** (the merger): the merge tree of :mod:`t2s.consolidation.plan` over the
  patches; a merge's opening is the merger prompts, the skill and its patches.
- **evolve**: rollout, then analyze and merge over the *projected* trajectories and
  patches (pass and patch rates from earlier runs, else defaults).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t2s.agent.bundle import SkillBundle
from t2s.agent.episode import opening_messages
from t2s.analysis.analyze import MODE_VERDICTS
from t2s.config import Config
from t2s.consolidation.plan import balanced_groups
from t2s.estimates.history import Basis, agent_basis, runs_with
from t2s.estimates.model import Estimate, RoleEstimate, count_tokens, tokenizer_name, usd
from t2s.evaluation.context import EvalContext
from t2s.evaluation.evaluate import find_cached
from t2s.evaluation.shards import noted_part
from t2s.gitstore.store import GitStore
from t2s.llm.roles import resolve_roles
from t2s.prompts import load as prompt
from t2s.record.runs import RunRecord
from t2s.record.shards import Shard
from t2s.sandbox.leftovers import scratch_dir

#: Tokens of one patch in a merger's prompt when the patches do not exist yet.
DEFAULT_PATCH_TOKENS = 400


def _model(config: Config, role: str, models: Any = None) -> str:
    return resolve_roles(config, overrides=models, roles=(role,))[role].model


def _row(
    config: Config, stage: str, role: str, model: str, items: Sequence[int], basis: Basis, concurrency: int
) -> RoleEstimate:
    """``items``: the opening tokens of each work item (one call each ``basis.calls``)."""
    calls = basis.calls * len(items)
    inputs = sum(basis.calls * opening + basis.extra_input for opening in items)
    outputs = calls * basis.output_per_call
    waves = math.ceil(len(items) / max(1, concurrency))
    return RoleEstimate(
        stage=stage,
        role=role,
        model=model,
        items=len(items),
        calls=round(calls),
        input_tokens=round(inputs),
        output_tokens=round(outputs),
        usd=round(usd(config, model, inputs, outputs), 6),
        wall_s=round(waves * basis.seconds, 1),
        basis=basis.source,
        tokenizer=tokenizer_name(model),
    )


def agent_openings(suite, task_ids: Sequence[str], skill: SkillBundle, protocol: str, model: str) -> list[int]:
    """The tokens of each task's opening prompt, rendered in a scratch folder."""
    counts = []
    with scratch_dir("t2s-estimate-", None) as tmp:
        for n, task_id in enumerate(task_ids):
            task = suite.task(task_id)
            case = task.cases[0].index if task.cases else 1
            _, messages = opening_messages(
                suite, task, skill, Path(tmp) / str(n), "text" if protocol == "text" else "tools", case
            )
            counts.append(sum(count_tokens(m["content"], model) for m in messages))
    return counts


def estimate_agent(
    store: GitStore,
    config: Config,
    *,
    stage: str,
    suite,
    task_ids: Sequence[str],
    seeds: int,
    skill: SkillBundle,
    concurrency: int | None = None,
    models: Any = None,
) -> RoleEstimate:
    """The agent on ``task_ids`` x ``seeds`` with ``skill``."""
    role = resolve_roles(config, overrides=models, roles=("agent",))["agent"]
    openings = agent_openings(suite, task_ids, skill, role.protocol, role.model) * max(1, seeds)
    basis = agent_basis(store, role.model, lambda text: count_tokens(text, role.model))
    return _row(config, stage, "agent", role.model, openings, basis, concurrency or config.rollout.concurrency)


def estimate_rollout(
    store: GitStore,
    config: Config,
    *,
    run: str | None,
    suite,
    task_ids: Sequence[str],
    seeds: int,
    rev: str | None,
    skill_dir: str,
    concurrency: int | None = None,
    models: Any = None,
    shard: Shard | None = None,
) -> Estimate:
    """A rollout of ``task_ids``; what ``run`` already holds is not counted again (for
    a ``shard``, what its own part of the run holds, once it ran)."""
    record = RunRecord(store, run) if run else None
    s0 = rev or (record.manifest().s0 if record and record.exists() else "HEAD")
    skill = SkillBundle.from_git(store, s0, skill_dir)
    if record is not None and shard is not None and (part := record.shard_record("rollout", shard.label)).exists():
        record = part
    done = set()
    if record and record.exists():
        done = {p.rsplit("/", 1)[-1].removesuffix(".json") for p in record.list("trajectories")}
    todo = [t for t in task_ids if t not in done] if seeds <= 1 else list(task_ids)
    out = Estimate()
    if len(todo) < len(task_ids):
        out.notes.append(f"{len(task_ids) - len(todo)} task(s) already in run {run}: not counted")
    out.rows.append(
        estimate_agent(
            store,
            config,
            stage="rollout",
            suite=suite,
            task_ids=todo,
            seeds=seeds,
            skill=skill,
            concurrency=concurrency,
            models=models,
        )
    )
    return out


def estimate_eval(
    ctx: EvalContext, revs: Sequence[str], *, stage: str = "eval", cache: bool = True, shard: Shard | None = None
) -> Estimate:
    """Evaluations of ``revs`` on ``ctx`` (``shard``: that shard's part of each); one
    found in the eval notes (or the shard's own notes) costs nothing."""
    out = Estimate()
    task_ids = shard.select(ctx.task_ids) if shard is not None else ctx.task_ids
    for rev in revs:
        commit = ctx.store.resolve(rev)
        tree = ctx.store.subtree(commit, ctx.skill_dir)
        if cache and tree and find_cached(ctx.store, ctx.key(tree), prefer=commit):
            out.notes.append(f"{rev}: already evaluated (eval note), costs nothing")
            continue
        if cache and tree and shard is not None and noted_part(ctx, commit, tree, shard) is not None:
            out.notes.append(f"{rev}: shard {shard} already evaluated (its eval notes), costs nothing")
            continue
        skill = SkillBundle.from_git(ctx.store, commit, ctx.skill_dir)
        out.rows.append(
            estimate_agent(
                ctx.store,
                ctx.config,
                stage=f"{stage} {rev}",
                suite=ctx.suite,
                task_ids=task_ids,
                seeds=ctx.seeds,
                skill=skill,
            )
        )
    return out


def _analyst_opening(kind: str, skill: SkillBundle, trajectory_tokens: int, model: str) -> int:
    files = {
        "error": ("analyst_error_system.md", "analyst_error_task.md", "analyst_rules.md", "edit_format.md"),
        "single": ("analyst_single_call_system.md", "analyst_single_task.md", "analyst_rules.md", "edit_format.md"),
        "success": ("analyst_success_system.md", "analyst_single_task.md", "analyst_rules.md", "edit_format.md"),
    }[kind]
    text = "".join(prompt(f) for f in files) + "".join(skill.text(p) for p in skill.files)
    return count_tokens(text, model) + trajectory_tokens


def _analyst_kind(verdict: str, analyst: str) -> str:
    return "success" if verdict == "passed" else ("single" if analyst == "single-call" else "error")


def _trajectory_tokens(raw: bytes, model: str) -> int:
    data = json.loads(raw)
    return count_tokens("".join(str(m.get("content") or "") for m in data.get("messages") or []), model)


def _analyst_history(store: GitStore, model: str) -> dict[str, dict[str, float]]:
    """Per analyst kind (error, single, success): sums over earlier analyses of ``model``
    of their calls, prompt and completion tokens, opening tokens and seconds."""
    sums: dict[str, dict[str, float]] = {}
    for record in runs_with(store, "analyst", model):
        manifest = record.manifest()
        skill = SkillBundle.from_git(store, manifest.s0, manifest.skill_dir)
        trajectories = record.read_folder("trajectories")
        for raw in record.read_folder("analyses").values():
            data = json.loads(raw)
            traj = trajectories.get(f"trajectories/{data.get('trajectory')}.json")
            if not data.get("calls") or traj is None:
                continue
            kind = _analyst_kind(str(data.get("outcome")), str(data.get("analyst")))
            tokens = data.get("tokens") or {}
            row = sums.setdefault(kind, dict.fromkeys(("n", "calls", "prompt", "completion", "opening", "wall"), 0.0))
            row["n"] += 1
            row["calls"] += data["calls"]
            row["prompt"] += tokens.get("prompt", 0)
            row["completion"] += tokens.get("completion", 0)
            row["opening"] += _analyst_opening(kind, skill, _trajectory_tokens(traj, model), model)
            row["wall"] += float(data.get("wall_s") or 0.0)
    return sums


def _analysts_row(
    config: Config, model: str, kinds: Sequence[str], openings: Sequence[int], history, concurrency: int
) -> RoleEstimate:
    """The analysts' row: each analysis by its kind's history (calls per analysis, input
    per opening token, output per call, seconds), or by that kind's defaults."""
    calls = inputs = outputs = seconds = 0.0
    used: dict[str, str] = {}
    for kind, opening in zip(kinds, openings, strict=True):
        h = history.get(kind)
        if h and h["calls"] and h["opening"]:
            n = h["calls"] / h["n"]
            calls += n
            inputs += opening * h["prompt"] / h["opening"]
            outputs += n * h["completion"] / h["calls"]
            seconds += h["wall"] / h["n"]
            used[kind] = f"{kind}: history of {int(h['n'])} analyses"
        else:
            basis = Basis.default("analyst" if kind == "error" else "analyst-single")
            calls += basis.calls
            inputs += basis.calls * opening + basis.extra_input
            outputs += basis.calls * basis.output_per_call
            seconds += basis.seconds
            used[kind] = f"{kind}: defaults"
    waves = math.ceil(len(kinds) / max(1, concurrency))
    per_item = seconds / len(kinds) if kinds else 0.0
    source = "history" if any("history" in v for v in used.values()) else "defaults"
    return RoleEstimate(
        stage="analyze",
        role="analyst",
        model=model,
        items=len(kinds),
        calls=round(calls),
        input_tokens=round(inputs),
        output_tokens=round(outputs),
        usd=round(usd(config, model, inputs, outputs), 6),
        wall_s=round(waves * per_item, 1),
        basis=f"{source}: " + "; ".join(used[k] for k in sorted(used)) + f" of {model}",
        tokenizer=tokenizer_name(model),
    )


def estimate_analyze(
    store: GitStore,
    config: Config,
    *,
    run: str | None,
    mode: str,
    analyst: str,
    concurrency: int | None = None,
    models: Any = None,
    projected: Sequence[tuple[str, int]] | None = None,
    skill: SkillBundle | None = None,
    shard: Shard | None = None,
) -> Estimate:
    """The analysts of ``run`` (its selected, not yet analyzed trajectories; ``shard``:
    those of that shard, not yet analyzed in its own part of the run), or of
    ``projected`` ``(verdict, tokens)`` trajectories that a rollout has not made yet."""
    model = _model(config, "analyst", models)
    items: list[tuple[str, int]] = []  # (verdict, tokens of the trajectory the analyst reads)
    if projected is not None:
        items = list(projected)
    elif run:
        record = RunRecord(store, run)
        manifest = record.manifest()
        skill = SkillBundle.from_git(store, manifest.s0, manifest.skill_dir)
        done = record
        if shard is not None and (part := record.shard_record("analyze", shard.label)).exists():
            done = part
        analyzed = {p.rsplit("/", 1)[-1] for p in done.list("analyses")}
        for path, raw in sorted(record.read_folder("trajectories").items()):
            data = json.loads(raw)
            if shard is not None and not shard.owns(str(data.get("id"))):
                continue
            if data.get("verdict") in MODE_VERDICTS[mode] and path.rsplit("/", 1)[-1] not in analyzed:
                items.append((data["verdict"], _trajectory_tokens(raw, model)))
    assert skill is not None
    kinds = [_analyst_kind(v, analyst) for v, _ in items]
    openings = [_analyst_opening(k, skill, tokens, model) for k, (_, tokens) in zip(kinds, items, strict=True)]
    concurrency = concurrency or config.analyze.concurrency
    history = _analyst_history(store, model)
    return Estimate(rows=[_analysts_row(config, model, kinds, openings, history, concurrency)])


def merge_groups(patches: int, fan_in: int) -> list[int]:
    """The size of every merge of the tree over ``patches`` heads (all merges succeeding),
    as :mod:`t2s.consolidation.plan` builds it."""
    sizes, count = [], patches
    while count > 1:
        groups = balanced_groups(list(range(count)), fan_in)
        sizes += [len(g) for g in groups]
        count = len(groups)
    return sizes


def _merge_openings(
    skill: SkillBundle, patch_tokens: Sequence[int], fan_in: int, model: str
) -> tuple[list[int], list[int]]:
    """Each merge's opening tokens (the merger prompts, the skill, its patches) and its size."""
    base = count_tokens(
        prompt("merger_system.md") + prompt("merger_task.md") + "".join(skill.text(p) for p in skill.files), model
    )
    mean_patch = sum(patch_tokens) / len(patch_tokens) if patch_tokens else 0
    groups = merge_groups(len(patch_tokens), fan_in)
    return [base + round(mean_patch * size) for size in groups], groups


def _patches_of(record: RunRecord, model: str) -> tuple[SkillBundle, list[int]]:
    """The run's S0 skill and the tokens of each accepted patch's edits."""
    manifest = record.manifest()
    skill = SkillBundle.from_git(record.store, manifest.s0, manifest.skill_dir)
    sizes = []
    for raw in record.read_folder("patches").values():
        data = json.loads(raw)
        if data.get("status") == "accepted":
            sizes.append(count_tokens(json.dumps(data.get("edits") or data.get("lessons") or []), model))
    return skill, sizes


def estimate_merge(
    store: GitStore,
    config: Config,
    *,
    run: str | None,
    fan_in: int | None = None,
    models: Any = None,
    projected_patches: int | None = None,
    skill: SkillBundle | None = None,
) -> Estimate:
    """The merger over ``run``'s accepted patches (or ``projected_patches`` of them).

    With earlier merges of the same model, the history calibrates: input tokens per
    opening token (retries, the rendered diffs), output tokens per merged patch (the
    merger rewrites what it merges), calls and seconds per merge."""
    model = _model(config, "merger", models)
    fan_in = fan_in or config.merge.fan_in
    sizes: list[int] = []
    if projected_patches is not None:
        sizes = [DEFAULT_PATCH_TOKENS] * projected_patches
    elif run:
        skill, sizes = _patches_of(RunRecord(store, run), model)
    assert skill is not None
    openings, groups = _merge_openings(skill, sizes, fan_in, model)
    used = [0.0] * 7  # prompt, completion, calls, latency, merges, opening tokens, patches merged
    runs = 0
    for record in runs_with(store, "merger", model):
        rows = [r for r in (record.read_json("ledger/merge.json") or {}).get("rows", []) if r.get("role") == "merger"]
        past_skill, past_sizes = _patches_of(record, model)
        past_openings, past_groups = _merge_openings(past_skill, past_sizes, fan_in, model)
        if not rows or not past_groups:
            continue
        runs += 1
        for row in rows:
            used[0] += row.get("prompt_tokens", 0)
            used[1] += row.get("completion_tokens", 0)
            used[2] += row.get("calls", 0) + row.get("cached", 0)
            used[3] += row.get("latency_s", 0.0)
        used[4] += len(past_groups)
        used[5] += sum(past_openings)
        used[6] += sum(past_groups)
    if runs and used[2]:
        per_merge = used[2] / used[4]
        inputs, outputs = used[0] / used[5] * sum(openings), used[1] / used[6] * sum(groups)
        waves = math.ceil(len(groups) / max(1, config.merge.concurrency))
        row = RoleEstimate(
            stage="merge",
            role="merger",
            model=model,
            items=len(groups),
            calls=round(per_merge * len(groups)),
            input_tokens=round(inputs),
            output_tokens=round(outputs),
            usd=round(usd(config, model, inputs, outputs), 6),
            wall_s=round(waves * used[3] / used[4], 1),
            basis=f"history: {int(used[4])} merges of {model} in {runs} run(s)",
            tokenizer=tokenizer_name(model),
        )
    else:
        row = _row(config, "merge", "merger", model, openings, Basis.default("merger"), config.merge.concurrency)
    out = Estimate(rows=[row])
    if projected_patches is None and not sizes:
        out.notes.append("no accepted patches: nothing to merge")
    return out
