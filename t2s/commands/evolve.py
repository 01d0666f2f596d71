"""``t2s evolve``: rollout, analyze and merge in one resumable command."""

from __future__ import annotations

import click

from t2s.commands._common import (
    console,
    end_stage,
    err_console,
    json_option,
    number_type,
    open_repo,
    print_json,
    repo_option,
    resumable_stage,
    sandbox_preflight,
    setting_type,
    unsafe_sandbox_option,
)
from t2s.commands._estimates import dry_run_option, print_estimate, print_estimate_vs_actual
from t2s.commands._scale import executor_options
from t2s.config import Count, MergeSection, RolloutSection
from t2s.record import refs


@click.command()
@click.option(
    "--run", "run_name", required=True, help=f"Run name ({refs.run_record('NAME')}); rerun the same command to resume."
)
@click.option("--split", default=None, help="The split to learn from (default: [rollout] evolve_split).")
@click.option("--rev", default=None, help="S0, the skill commit to evolve (default: HEAD).")
@click.option("--suite", "suite_ref", default=None, help="A configured suite name or a suite directory.")
@click.option("--limit", type=number_type(Count), default=None, help="Only the first N tasks of the split.")
@click.option(
    "--concurrency",
    type=setting_type(RolloutSection, "concurrency"),
    default=None,
    help="Tasks and analyses in parallel.",
)
@click.option(
    "--analyst",
    type=click.Choice(["agentic", "single-call"]),
    default=None,
    help="Error analyst (default: [analyze] analyst).",
)
@click.option(
    "--mode", type=click.Choice(["error", "success", "combined"]), default=None, help="Which trajectories to analyze."
)
@click.option(
    "--fan-in",
    type=setting_type(MergeSection, "fan_in"),
    default=None,
    help="Patches per octopus merge (default: [merge] fan_in).",
)
@click.option("--strategy", type=click.Choice(["parallel", "sequential"]), default="parallel", show_default=True)
@click.option(
    "--batch",
    type=number_type(Count),
    default=5,
    show_default=True,
    help="Patches per step with --strategy sequential.",
)
@click.option("--model", default=None, help="Model name for every role (or use T2S_MODEL / T2S_BASE_URL).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the model response cache.")
@click.option(
    "--rounds",
    type=number_type(Count),
    default=None,
    help="Evolve N rounds (runs RUN-r1, RUN-r2...): each starts from the last candidate that passed its gate; "
    "stops at the first failing gate or a budget cap.",
)
@click.option(
    "--force", is_flag=True, help="Start even if the estimate is over a [budget] cap (the caps still stop the run)."
)
@unsafe_sandbox_option
@executor_options
@dry_run_option
@json_option
@repo_option
def evolve(
    run_name,
    split,
    rev,
    suite_ref,
    limit,
    concurrency,
    analyst,
    mode,
    fan_in,
    strategy,
    batch,
    model,
    no_cache,
    unsafe_no_sandbox,
    executor,
    ray_address,
    as_json,
    repo_dir,
    force=False,
    dry_run=False,
    rounds=None,
):
    """Evolve the skill end to end: rollout -> analyze -> merge.

    Each stage keeps its finished work in the run record, so running the same
    command again after an interruption (Ctrl-C, a budget cap, a crash) continues
    where it stopped. The result is the branch t2s/RUN/candidate; evaluate it with
    `t2s gate`. A stage whose work errored (the model endpoint failed) stops it with
    exit status 3 and the cause, e.g. "12 of 12 trajectories errored: the agent model
    at http://... was unreachable (...)"; run the same command again once it works.

    \b
    Examples:
      t2s evolve --run r1
      t2s evolve --run r1 --limit 20 --analyst single-call
      t2s evolve --run r2 --dry-run        # per role: calls, tokens, USD, time; spends nothing
      t2s evolve --run r3 --rounds 3       # r3-r1, r3-r2, r3-r3, each gated; t2s log --run r3
      t2s evolve --run r4 --executor ray   # episodes and analyses as Ray tasks (pip install 't2s[ray]')
      T2S_BASE_URL=http://127.0.0.1:8765/v1 T2S_MODEL=qwen2.5-coder-1.5b-instruct t2s evolve --run r2
    """
    import t2s
    from t2s.commands import analyze, merge, rollout
    from t2s.commands.progress import analyze_bar, rollout_bar

    repo = open_repo(repo_dir)
    models = {"*": {"model": model}} if model else None
    if dry_run:
        estimate = t2s.estimate(
            repo,
            "evolve",
            run=run_name,
            split=split,
            suite=suite_ref,
            rev=rev,
            limit=limit,
            concurrency=concurrency,
            analyst=analyst,
            mode=mode,
            fan_in=fan_in,
            models=models,
            rounds=rounds or 1,
            gated=rounds is not None,
        )
        print_estimate(estimate, as_json, "evolve")
        return
    sandbox_preflight(unsafe_no_sandbox)
    steps = {"rollout": "1/3 rollout", "analyze": "2/3 analyze", "merge": "3/3 merge"}
    bars = {"rollout": rollout_bar, "analyze": analyze_bar}
    started: list = []

    def progress(stage: str):
        if stage in bars and not as_json:
            started.append(bars[stage]())
            return started[-1]
        return None

    def on_stage(stage: str) -> None:
        for bar in started:
            bar.stop()
        if not as_json:
            err_console.print(f"[bold]{steps[stage]}[/bold]" + (f" (run {run_name})" if stage == "rollout" else ""))

    options = dict(  # the evolve's settings, the same for one run or for rounds
        split=split,
        suite=suite_ref,
        limit=limit,
        concurrency=concurrency,
        analyst=analyst,
        mode=mode,
        fan_in=fan_in,
        strategy=strategy,
        batch=batch,
        models=models,
        cache=not no_cache,
        unsafe_no_sandbox=unsafe_no_sandbox,
        force=force,
        executor=executor,
        ray_address=ray_address,
    )
    if rounds is not None:
        _rounds(repo, run_name, rounds, rev, options, as_json)
        return
    with resumable_stage(None, run_name, "stages"):
        try:
            result = t2s.evolve(
                repo,
                run_name,
                rev=rev,
                **options,
                on_stage=on_stage,
                progress=progress,
                merge_progress=None if as_json else (lambda message: err_console.print(f"  {message}", markup=False)),
            )
        finally:
            for bar in started:
                bar.stop()
    if as_json:
        print_json(result.to_dict())
    else:
        for stage, printer in (
            ("rollout", rollout.print_summary),
            ("analyze", analyze.print_summary),
            ("merge", merge.print_summary),
        ):
            summary = getattr(result, stage)
            if summary is not None:
                printer(summary)
                print_estimate_vs_actual(repo.store, run_name, stage)
    if result.stopped_at:
        what = "task(s)" if result.stopped_at == "rollout" else "trajectory(ies)"
        end_stage(getattr(result, result.stopped_at), what, as_json)


def _rounds(repo, run_name: str, rounds: int, rev, options: dict, as_json: bool) -> None:
    """``--rounds``: the rounds, then the lineage table and one sentence."""
    import t2s

    def on_round(number: int, name: str, s0: str) -> None:
        if not as_json:
            err_console.print(f"[bold]round {number}/{rounds}[/bold]: run {name} from {s0[:12]}")

    with resumable_stage(None, run_name, "rounds"):
        result = t2s.evolve_rounds(repo, run_name, rounds, rev=rev, on_round=on_round, **options)
    if as_json:
        print_json(result.to_dict())
    else:
        print_lineage(result.lineage)
        console.print(result.sentence(), markup=False)
    last = result.evolves[-1] if result.evolves else None
    if last is not None and last.stopped_at:
        what = "task(s)" if last.stopped_at == "rollout" else "trajectory(ies)"
        end_stage(getattr(last, last.stopped_at), what, as_json)


def print_lineage(lineage) -> None:
    """One row per round: run, S0 -> candidate, held-out scores, the gate's verdict."""
    from rich.table import Table

    table = Table(title="t2s evolve: rounds")
    for col in ("round", "run", "S0", "candidate", "validation", "held-out", "gate"):
        table.add_column(col)
    for r in lineage:
        held = "-" if r.gate is None else f"{r.gate.baseline_score:.3f} -> {r.gate.candidate_score:.3f}"
        verdict = "-" if r.gate is None else ("passed" if r.gate.passed else "failed")
        table.add_row(
            str(r.number),
            r.run,
            r.s0[:12],
            (r.candidate or "-")[:12],
            "-" if r.validation is None else f"{r.validation:.3f}",
            held,
            verdict,
        )
    console.print(table)
