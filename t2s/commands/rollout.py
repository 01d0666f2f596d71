"""``t2s rollout``: run the agent with the skill on a split; trajectories go into the run record."""

from __future__ import annotations

import click
from rich.markup import escape

from t2s.commands._common import (
    console,
    end_stage,
    err_console,
    json_option,
    number_type,
    open_repo,
    print_json,
    print_row_table,
    repo_option,
    resumable_stage,
    sandbox_preflight,
    setting_type,
    unsafe_sandbox_option,
)
from t2s.commands._estimates import dry_run_option, print_estimate, print_estimate_vs_actual
from t2s.commands._scale import executor_options, shard_option
from t2s.commands.progress import rollout_bar
from t2s.config import Count, RolloutSection
from t2s.record import refs


@click.command()
@click.option("--split", default=None, help="The split to run (default: [rollout] evolve_split, usually 'evolve').")
@click.option(
    "--rev", default=None, help="The skill's commit (default: HEAD for a new run; a resumed run keeps its S0)."
)
@click.option(
    "--run", "run_name", default=None, help=f"Run name: the record is {refs.run_record('NAME')} (default: a timestamp)."
)
@click.option(
    "--suite",
    "suite_ref",
    default=None,
    help="A configured suite name or a suite directory (default: [rollout] suite).",
)
@click.option("--limit", type=number_type(Count), default=None, help="Only the first N tasks of the split.")
@click.option(
    "--concurrency",
    type=setting_type(RolloutSection, "concurrency"),
    default=None,
    help="Tasks in parallel (default: [rollout] concurrency).",
)
@click.option(
    "--seeds", type=number_type(Count), default=None, help="Run every task N times with different seeds (default 1)."
)
@click.option("--task", "task_ids", multiple=True, help="Only this task id (repeatable); recorded under --split.")
@click.option(
    "--max-turns",
    type=setting_type(RolloutSection, "max_turns"),
    default=None,
    help="Model replies per task (default: [rollout] max_turns).",
)
@click.option(
    "--protocol",
    type=click.Choice(["auto", "tools", "text"]),
    default=None,
    help="Tool protocol (default: the agent model's 'protocol' setting).",
)
@click.option("--model", default=None, help="Override the agent model name.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the model response cache.")
@click.option(
    "--retry-errored/--keep-errored",
    "retry_errored",
    default=True,
    show_default=True,
    help="Run errored tasks (the model endpoint failed, t2s crashed) again when resuming, or leave them.",
)
@unsafe_sandbox_option
@dry_run_option
@shard_option
@executor_options
@json_option
@repo_option
def rollout(
    split,
    rev,
    run_name,
    suite_ref,
    limit,
    concurrency,
    seeds,
    task_ids,
    max_turns,
    protocol,
    model,
    no_cache,
    retry_errored,
    unsafe_no_sandbox,
    shard,
    executor,
    ray_address,
    as_json,
    repo_dir,
    dry_run=False,
):
    """Run the agent with the skill at S0 on the tasks of a split.

    The skill is read from git at S0 (never from the working tree). Each finished task
    is appended to the run record refs/t2s/runs/RUN at once: the trajectory, the output
    workbook and the scripts the agent ran. Interrupt it (Ctrl-C, or a [budget] cap) and
    run the same command again: finished tasks are not run again. Ends with a table of
    passed, failed and errored tasks, tokens and time.

    A task whose episode ended because of the infrastructure (the model endpoint was
    down or kept failing, t2s crashed) is errored, not failed: it is recorded with its
    cause, the causes are tabled, the exit status is 3, and running the same command
    again runs it again (--keep-errored leaves it).

    \b
    Examples:
      t2s rollout --split evolve --run r1
      t2s rollout --run r1 --limit 20 --concurrency 8
      t2s rollout --run r1                       # resume; errored tasks run again
      t2s rollout --run smoke --task 45300 --protocol text --json
      t2s rollout --run r2 --dry-run              # calls, tokens, USD, time; spends nothing
      t2s rollout --run r1 --shard 2/4           # one of 4 machines; then t2s collect --run r1
      t2s rollout --run r1 --executor ray --ray-address head:6379
    """
    import t2s
    from t2s.api import default_run_name

    repo = open_repo(repo_dir)
    if dry_run:
        models = {"agent": {"model": model}} if model else None
        estimate = t2s.estimate(
            repo,
            "rollout",
            run=run_name,
            split=split,
            suite=suite_ref,
            rev=rev,
            limit=limit,
            seeds=seeds,
            tasks=list(task_ids) or None,
            concurrency=concurrency,
            models=models,
            shard=shard,
        )
        print_estimate(estimate, as_json, "rollout")
        return
    run_name = run_name or default_run_name()
    sandbox_preflight(unsafe_no_sandbox)  # loudly, before the progress bar
    progress = None if as_json else rollout_bar()
    if not as_json:
        err_console.print(f"run [bold]{run_name}[/bold]: split {escape(split or repo.config.rollout.evolve_split)}")
    with resumable_stage(progress, run_name, "tasks"):
        summary = t2s.rollout(
            repo,
            run_name,
            split=split,
            suite=suite_ref,
            rev=rev,
            limit=limit,
            concurrency=concurrency,
            seeds=seeds,
            tasks=list(task_ids) or None,
            max_turns=max_turns,
            protocol=protocol,
            models={"agent": {"model": model}} if model else None,
            cache=not no_cache,
            retry_errored=retry_errored,
            unsafe_no_sandbox=unsafe_no_sandbox,
            progress=progress,
            shard=shard,
            executor=executor,
            ray_address=ray_address,
        )
    if as_json:
        print_json(summary.to_dict())
    else:
        print_summary(summary)
        print_estimate_vs_actual(repo.store, run_name, "rollout")
    end_stage(summary, "task(s)", as_json)


def print_summary(summary) -> None:
    """The closing table of a rollout."""
    from t2s.rollouts.rollout import summary_rows

    print_row_table(
        f"rollout {summary.run} ({summary.suite}/{summary.split}, S0 {summary.s0[:12]})", summary_rows(summary)
    )
    if summary.skipped:
        console.print(f"{summary.skipped} task(s) were already in the record and were not run again.")
