"""``t2s analyze``: one analyst per trajectory of a run; each accepted patch becomes a branch."""

from __future__ import annotations

import click

from t2s.commands._common import (
    console,
    end_stage,
    json_option,
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
from t2s.commands.models import model_options, overrides_from_flags
from t2s.commands.progress import analyze_bar
from t2s.config import AnalyzeSection
from t2s.record import refs
from t2s.record.provenance import KEYS


@click.command()
@click.option(
    "--run", "run_name", required=True, help=f"The run whose trajectories to analyze ({refs.run_record('NAME')})."
)
@click.option(
    "--mode",
    type=click.Choice(["error", "success", "combined"]),
    default=None,
    help="Failed trajectories, passed ones, or both (default: [analyze] mode).",
)
@click.option(
    "--analyst",
    type=click.Choice(["agentic", "single-call"]),
    default=None,
    help="Error analyst: agentic (works in a workspace and must prove its fix with the checker) "
    "or single-call (reads the trajectory only). Default: [analyze] analyst.",
)
@click.option(
    "--concurrency",
    type=setting_type(AnalyzeSection, "concurrency"),
    default=None,
    help="Analyses in parallel (default: [analyze] concurrency).",
)
@click.option(
    "--max-turns",
    type=setting_type(AnalyzeSection, "max_turns"),
    default=None,
    help="Replies of an agentic analyst (default: [analyze] max_turns).",
)
@click.option(
    "--include-unvalidated",
    is_flag=True,
    default=None,
    help=f"Also make branches ({KEYS['validated']}: no) for agentic reports whose fix never passed.",
)
@click.option(
    "--protocol",
    type=click.Choice(["auto", "tools", "text"]),
    default=None,
    help="Tool protocol of the agentic analyst (default: the analyst model's 'protocol').",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the model response cache.")
@click.option(
    "--retry-errored/--keep-errored",
    "retry_errored",
    default=True,
    show_default=True,
    help="Analyze trajectories whose analysis errored (the analyst's endpoint failed) again, or leave them.",
)
@unsafe_sandbox_option
@model_options
@dry_run_option
@shard_option
@executor_options
@json_option
@repo_option
def analyze(
    run_name,
    mode,
    analyst,
    concurrency,
    max_turns,
    include_unvalidated,
    protocol,
    no_cache,
    retry_errored,
    unsafe_no_sandbox,
    flag_model,
    flag_base_url,
    flag_api_key_env,
    model_sets,
    shard,
    executor,
    ray_address,
    as_json,
    repo_dir,
    dry_run=False,
):
    """Analyze the trajectories of run RUN: one patch branch per accepted analysis.

    Every analyst works against the run's frozen skill S0 and never sees another's
    patch. Failed trajectories get the error analyst, passed ones the success analyst.
    An accepted patch becomes refs/heads/t2s/RUN/patch/NNNN, one commit on S0 with
    provenance trailers; every analysis (accepted, unvalidated or rejected, with the
    reason) is kept in the run record with its transcript. Interrupt it (Ctrl-C or a
    [budget] cap) and run the same command again: finished analyses are kept.

    An analysis that errored (the analyst's endpoint was down or kept failing) is no
    verdict: it gets no patch record, the causes are tabled, the exit status is 3, and
    the next run analyses the trajectory again (--keep-errored leaves it).

    \b
    Examples:
      t2s analyze --run r1
      t2s analyze --run r1 --mode error --analyst single-call --concurrency 8
      t2s analyze --run r1 --mode success --json
      t2s analyze --run r1 --dry-run             # the expected cost, nothing spent
      t2s analyze --run r1 --shard auto          # in a SLURM array or an Indexed Job
      t2s analyze --run r1 --executor ray        # each analysis a Ray task
      t2s analyze --run r1                       # again: errored analyses are retried
      git diff t2s/r1/patch/0007~1 t2s/r1/patch/0007   # the patch (its parent is S0)
    """
    import t2s

    repo = open_repo(repo_dir)
    if dry_run:
        models = overrides_from_flags(flag_model, flag_base_url, flag_api_key_env, model_sets)
        estimate = t2s.estimate(
            repo, "analyze", run_name, mode=mode, analyst=analyst, concurrency=concurrency, models=models, shard=shard
        )
        print_estimate(estimate, as_json, "analyze")
        return
    if (analyst or repo.config.analyze.analyst) == "agentic" and (mode or repo.config.analyze.mode) != "success":
        sandbox_preflight(unsafe_no_sandbox)  # only the agentic error analyst runs code
    progress = None if as_json else analyze_bar()
    with resumable_stage(progress, run_name, "analyses"):
        summary = t2s.analyze(
            repo,
            run_name,
            mode=mode,
            analyst=analyst,
            concurrency=concurrency,
            max_turns=max_turns,
            include_unvalidated=include_unvalidated,
            protocol=protocol,
            models=overrides_from_flags(flag_model, flag_base_url, flag_api_key_env, model_sets),
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
        print_estimate_vs_actual(repo.store, run_name, "analyze")
    end_stage(summary, "trajectory(ies)", as_json)


def print_summary(summary) -> None:
    """The closing table of an analysis, with its notes and where the branches are."""
    from t2s.analysis.analyze import summary_rows

    print_row_table(
        f"analyze {summary.run} ({summary.mode}, {summary.analyst} analyst, S0 {summary.s0[:12]})",
        summary_rows(summary),
    )
    for note in summary.notes:
        console.print(f"note: {note}", markup=False)
    if summary.skipped:
        console.print(f"{summary.skipped} trajectory(ies) were already analyzed and were not analyzed again.")
    if summary.branches:
        console.print(
            f"Patch branches: {refs.run_branches(summary.run)}patch/* "
            f"(see one with `git log -1 {refs.short(refs.patch_branch(summary.run, 'NNNN'))}`)."
        )
