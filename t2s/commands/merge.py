"""``t2s merge``: consolidate a run's patch branches into one candidate."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from t2s.commands._common import (
    console,
    err_console,
    json_option,
    number_type,
    open_repo,
    print_json,
    repo_option,
    setting_type,
)
from t2s.commands._estimates import dry_run_option, print_estimate, print_estimate_vs_actual
from t2s.commands._scale import executor_options
from t2s.commands.models import model_options, overrides_from_flags
from t2s.config import Count, MergeSection
from t2s.record import refs


@click.command()
@click.option("--run", "run_name", required=True, help="The run whose patch branches to merge.")
@click.option(
    "--fan-in",
    type=setting_type(MergeSection, "fan_in"),
    default=None,
    help="Patches per octopus merge (default: [merge] fan_in, 5).",
)
@click.option(
    "--strategy",
    type=click.Choice(["parallel", "sequential"]),
    default="parallel",
    show_default=True,
    help="parallel: the merge tree; sequential: the paper's baseline, a linear chain of batch edits.",
)
@click.option(
    "--batch",
    type=number_type(Count),
    default=5,
    show_default=True,
    help="Patches per step with --strategy sequential.",
)
@click.option("--retry-failed", is_flag=True, help="Ask the merger again for merges recorded as failed.")
@click.option(
    "--rebuild",
    is_flag=True,
    help=f"Set the run's merge tree aside (kept under {refs.SUPERSEDED}) and merge again, "
    "e.g. after rejecting a merged patch. Unchanged groups come from the response cache.",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the model response cache.")
@click.option(
    "--validate/--no-validate",
    default=None,
    help="Score every merge node on the validation split and reject one that loses to its best input "
    '(default: [merge] validate, "all" when the suite has the split).',
)
@model_options
@executor_options
@dry_run_option
@json_option
@repo_option
def merge(
    run_name,
    fan_in,
    strategy,
    batch,
    retry_failed,
    rebuild,
    no_cache,
    validate,
    flag_model,
    flag_base_url,
    flag_api_key_env,
    model_sets,
    executor,
    ray_address,
    as_json,
    repo_dir,
    dry_run=False,
):
    """Merge a run's patch branches, level by level, into t2s/RUN/candidate.

    Groups of at most --fan-in branch heads become octopus merge commits whose tree
    the merger resolved (S0 plus one consolidated diff); levels repeat until one
    commit remains. Lessons seen in fewer than [merge] min_support trajectories go
    to references/. A merge that fails is recorded and its inputs carried up.
    Finished merges are reused when the command runs again.

    \b
    Examples:
      t2s merge --run r1
      t2s merge --run r1 --fan-in 3
      t2s merge --run r1 --strategy sequential --batch 5   # baseline, t2s/r1/seq/candidate
      t2s merge --run r1 --rebuild                          # after rejecting a merged patch
      t2s merge --run r1 --no-validate                      # skip the validation split
      t2s merge --run r1 --executor ray                     # validation episodes as Ray tasks
      t2s log --run r1                                      # see the merge tree
      t2s merge --run r1 --dry-run                          # the expected cost, nothing spent
    """
    import t2s

    models = overrides_from_flags(flag_model, flag_base_url, flag_api_key_env, model_sets)
    if dry_run:
        print_estimate(
            t2s.estimate(open_repo(repo_dir), "merge", run_name, fan_in=fan_in, models=models), as_json, "merge"
        )
        return
    repo = open_repo(repo_dir)
    summary = t2s.merge(
        repo,
        run_name,
        fan_in=fan_in,
        strategy=strategy,
        batch=batch,
        retry_failed=retry_failed,
        rebuild=rebuild,
        models=models,
        cache=not no_cache,
        validate=validate,
        executor=executor,
        ray_address=ray_address,
        progress=None if as_json else (lambda message: err_console.print(f"  {message}", markup=False)),
    )
    if as_json:
        print_json(summary.model_dump())
        return
    print_summary(summary)
    print_estimate_vs_actual(repo.store, run_name, "merge")


def print_summary(summary) -> None:
    """The merge tree by level, and where the candidate is."""
    table = Table(title=f"merge {summary.run} ({summary.strategy})")
    for column in ("level", "merges", "names"):
        table.add_column(column)
    for index, names in enumerate(summary.levels, start=1):
        table.add_row(str(index), str(len(names)), escape(", ".join(names)))
    console.print(table)
    console.print(
        f"{summary.inputs} patches -> candidate [bold]{refs.short(summary.candidate_ref)}[/bold] "
        f"({summary.candidate[:12]}); {summary.merged} merged, {summary.failed} failed, {summary.reused} reused"
    )
    if summary.validate_split:
        scores = ", ".join(f"{name} {score:.3f}" for name, score in summary.val_scores.items())
        s0 = f"S0 {summary.s0_val:.3f}; " if summary.s0_val is not None else ""
        console.print(
            f"validation on {summary.validate_split}: {s0}{scores or 'no node scored'} "
            f"({summary.val_episodes} agent episodes run; the rest came from eval notes)",
            markup=False,
        )
        if summary.rejected:
            console.print(
                f"  rejected by validation: {', '.join(summary.rejected)} (best input carried up)", markup=False
            )
        if summary.val_task_patches:
            console.print(f"  {summary.val_task_patches} patch(es) left out: their tasks are in the validation split")
    for number, reason in sorted(summary.excluded.items()):
        console.print(f"  left out patch {number}: {reason}", markup=False)
