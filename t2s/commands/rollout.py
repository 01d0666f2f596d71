"""``t2s rollout``: run the agent with the skill on a split; trajectories go into the run record."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from t2s.commands._common import CountingProgress, console, end_stage, print_row_table, resumable_stage, err_console, json_option, load_repo_config, open_store, print_json, repo_option, sandbox_preflight, unsafe_sandbox_option
from t2s.commands._common import number_type, setting_type
from t2s.config import Count, RolloutSection
from t2s.record import refs


@click.command()
@click.option("--split", default=None, help="The split to run (default: [rollout] evolve_split, usually 'evolve').")
@click.option("--rev", default=None, help="The skill's commit (default: HEAD for a new run; a resumed run keeps its S0).")
@click.option("--run", "run_name", default=None, help=f"Run name: the record is {refs.run_record('NAME')} (default: a timestamp).")
@click.option("--suite", "suite_ref", default=None, help="A configured suite name or a suite directory (default: [rollout] suite).")
@click.option("--limit", type=number_type(Count), default=None, help="Only the first N tasks of the split.")
@click.option("--concurrency", type=setting_type(RolloutSection, "concurrency"), default=None, help="Tasks in parallel (default: [rollout] concurrency).")
@click.option("--seeds", type=number_type(Count), default=None, help="Run every task N times with different seeds (default 1).")
@click.option("--task", "task_ids", multiple=True, help="Only this task id (repeatable); recorded under --split.")
@click.option("--max-turns", type=setting_type(RolloutSection, "max_turns"), default=None, help="Model replies per task (default: [rollout] max_turns).")
@click.option("--protocol", type=click.Choice(["auto", "tools", "text"]), default=None,
              help="Tool protocol (default: the agent model's 'protocol' setting).")
@click.option("--model", default=None, help="Override the agent model name.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the model response cache.")
@click.option("--retry-errored/--keep-errored", "retry_errored", default=True, show_default=True,
              help="Run errored tasks (the model endpoint failed, t2s crashed) again when resuming, or leave them.")
@unsafe_sandbox_option
@json_option
@repo_option
def rollout(split, rev, run_name, suite_ref, limit, concurrency, seeds, task_ids, max_turns, protocol, model,
            no_cache, retry_errored, unsafe_no_sandbox, as_json, repo_dir):
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
    """
    from t2s.agent.episode import AgentOptions
    from t2s.llm.client import LLM, default_cache_path
    from t2s.rollouts.rollout import load_rollout_suite, rollout as run_rollout, summary_rows
    from t2s.record.runs import check_run_name

    store = open_store(repo_dir)
    config = load_repo_config(store)
    run_name = check_run_name(run_name or datetime.now(timezone.utc).strftime("r%Y%m%d-%H%M%S"))
    suite = load_rollout_suite(config, store, suite_ref)
    sandbox_preflight(unsafe_no_sandbox)
    overrides = {"agent": {"model": model}} if model else None
    llm = LLM(config, cache_path=None if no_cache else default_cache_path(store.common_dir, config),
              phase="rollout", overrides=overrides)
    options = AgentOptions(
        max_turns=max_turns or config.rollout.max_turns,
        exec_timeout=config.rollout.exec_timeout,
        protocol=protocol,
        unsafe_no_sandbox=unsafe_no_sandbox,
    )
    progress = None if as_json else CountingProgress("rollout", {"passed": "green", "failed": "red", "errored": "yellow"}, lambda item: item.verdict)
    if not as_json:
        err_console.print(f"run [bold]{run_name}[/bold]: suite {suite.name}, split {split or config.rollout.evolve_split}")
    with resumable_stage(progress, run_name, "tasks", llm):
        summary = run_rollout(
            store, config, run=run_name, split=split, suite=suite, rev=rev, limit=limit,
            concurrency=concurrency, seeds=seeds, task_ids=list(task_ids) or None, options=options,
            llm=llm, retry_errored=retry_errored, progress=progress,
        )
    if as_json:
        print_json(summary.to_dict())
    else:
        print_row_table(f"rollout {run_name} ({summary.suite}/{summary.split}, S0 {summary.s0[:12]})", summary_rows(summary))
        if summary.skipped:
            console.print(f"{summary.skipped} task(s) were already in the record and were not run again.")
    end_stage(summary, "task(s)", as_json)
