"""``t2s evolve``: rollout, analyze and merge in one resumable command."""

from __future__ import annotations

import click

from t2s.commands._common import (
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
@unsafe_sandbox_option
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
    as_json,
    repo_dir,
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
      T2S_BASE_URL=http://127.0.0.1:8765/v1 T2S_MODEL=qwen2.5-coder-1.5b-instruct t2s evolve --run r2
    """
    import t2s
    from t2s.commands import analyze, merge, rollout

    repo = open_repo(repo_dir)
    sandbox_preflight(unsafe_no_sandbox)
    steps = {"rollout": "1/3 rollout", "analyze": "2/3 analyze", "merge": "3/3 merge"}
    bars = {"rollout": rollout.rollout_progress, "analyze": analyze.analyze_progress}
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

    with resumable_stage(None, run_name, "stages"):
        try:
            result = t2s.evolve(
                repo,
                run_name,
                split=split,
                rev=rev,
                suite=suite_ref,
                limit=limit,
                concurrency=concurrency,
                analyst=analyst,
                mode=mode,
                fan_in=fan_in,
                strategy=strategy,
                batch=batch,
                models={"*": {"model": model}} if model else None,
                cache=not no_cache,
                unsafe_no_sandbox=unsafe_no_sandbox,
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
    if result.stopped_at:
        what = "task(s)" if result.stopped_at == "rollout" else "trajectory(ies)"
        end_stage(getattr(result, result.stopped_at), what, as_json)
