"""``t2s evolve``: rollout, analyse and merge in one resumable command."""

from __future__ import annotations

import click

from t2s.commands._common import err_console, number_type, repo_option, setting_type, unsafe_sandbox_option
from t2s.config import Count, MergeSection, RolloutSection
from t2s.record import refs


@click.command()
@click.option("--run", "run_name", required=True, help=f"Run name ({refs.run_record('NAME')}); rerun the same command to resume.")
@click.option("--split", default=None, help="The split to learn from (default: [rollout] evolve_split).")
@click.option("--rev", default=None, help="S0, the skill commit to evolve (default: HEAD).")
@click.option("--suite", "suite_ref", default=None, help="A configured suite name or a suite directory.")
@click.option("--limit", type=number_type(Count), default=None, help="Only the first N tasks of the split.")
@click.option("--concurrency", type=setting_type(RolloutSection, "concurrency"), default=None, help="Tasks and analyses in parallel.")
@click.option("--analyst", type=click.Choice(["agentic", "single-call"]), default=None, help="Error analyst (default: [analyze] analyst).")
@click.option("--mode", type=click.Choice(["error", "success", "combined"]), default=None, help="Which trajectories to analyse.")
@click.option("--fan-in", type=setting_type(MergeSection, "fan_in"), default=None, help="Patches per octopus merge (default: [merge] fan_in).")
@click.option("--strategy", type=click.Choice(["parallel", "sequential"]), default="parallel", show_default=True)
@click.option("--batch", type=number_type(Count), default=5, show_default=True, help="Patches per step with --strategy sequential.")
@click.option("--model", default=None, help="Model name for every role (or use T2S_MODEL / T2S_BASE_URL).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the model response cache.")
@unsafe_sandbox_option
@repo_option
@click.pass_context
def evolve(ctx, run_name, split, rev, suite_ref, limit, concurrency, analyst, mode, fan_in, strategy, batch, model, no_cache,
           unsafe_no_sandbox, repo_dir):
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
    from t2s.commands.analyze import analyze
    from t2s.commands.merge import merge
    from t2s.commands.rollout import rollout

    err_console.print(f"[bold]1/3 rollout[/bold] (run {run_name})")
    ctx.invoke(rollout, split=split, rev=rev, run_name=run_name, suite_ref=suite_ref, limit=limit,
               concurrency=concurrency, model=model, no_cache=no_cache, unsafe_no_sandbox=unsafe_no_sandbox,
               repo_dir=repo_dir)
    err_console.print("[bold]2/3 analyze[/bold]")
    ctx.invoke(analyze, run_name=run_name, mode=mode, analyst=analyst, concurrency=concurrency,
               no_cache=no_cache, unsafe_no_sandbox=unsafe_no_sandbox, flag_model=model, repo_dir=repo_dir)
    err_console.print("[bold]3/3 merge[/bold]")
    ctx.invoke(merge, run_name=run_name, fan_in=fan_in, strategy=strategy, batch=batch,
               no_cache=no_cache, flag_model=model, repo_dir=repo_dir)
