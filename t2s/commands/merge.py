"""``t2s merge``: consolidate a run's patch branches into one candidate."""

from __future__ import annotations

import click
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
@model_options
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
    flag_model,
    flag_base_url,
    flag_api_key_env,
    model_sets,
    as_json,
    repo_dir,
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
      t2s log --run r1                                      # see the merge tree
    """
    import t2s

    models = overrides_from_flags(flag_model, flag_base_url, flag_api_key_env, model_sets)
    summary = t2s.merge(
        open_repo(repo_dir),
        run_name,
        fan_in=fan_in,
        strategy=strategy,
        batch=batch,
        retry_failed=retry_failed,
        rebuild=rebuild,
        models=models,
        cache=not no_cache,
        progress=None if as_json else (lambda message: err_console.print(f"  {message}", markup=False)),
    )
    if as_json:
        print_json(summary.model_dump())
        return
    print_summary(summary)


def print_summary(summary) -> None:
    """The merge tree by level, and where the candidate is."""
    table = Table(title=f"merge {summary.run} ({summary.strategy})")
    for column in ("level", "merges", "names"):
        table.add_column(column)
    for index, names in enumerate(summary.levels, start=1):
        table.add_row(str(index), str(len(names)), ", ".join(names))
    console.print(table)
    console.print(
        f"{summary.inputs} patches -> candidate [bold]{refs.short(summary.candidate_ref)}[/bold] "
        f"({summary.candidate[:12]}); {summary.merged} merged, {summary.failed} failed, {summary.reused} reused"
    )
    for number, reason in sorted(summary.excluded.items()):
        console.print(f"  left out patch {number}: {reason}")
