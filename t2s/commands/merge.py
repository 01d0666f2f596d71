"""``t2s merge``: consolidate a run's patch branches into one candidate."""

from __future__ import annotations

import click
from rich.table import Table

from t2s.commands._common import console, err_console, json_option, load_repo_config, open_store, print_json, repo_option
from t2s.commands.models import model_options, overrides_from_flags
from t2s.commands._common import number_type, setting_type
from t2s.config import Count, MergeSection
from t2s.record import refs


def run_merge_command(store, config, run: str, *, fan_in, strategy, batch, retry_failed, overrides, no_cache, quiet,
                      rebuild: bool = False):
    """Merge a run (library entry used by ``t2s merge`` and ``t2s evolve``)."""
    from t2s.errors import UsageError
    from t2s.llm.client import LLM, default_cache_path
    from t2s.consolidation.models import MergeSettings
    from t2s.consolidation.scheduler import Merger
    from t2s.consolidation.group import merger_ask
    from t2s.consolidation.persistence import set_aside_merges
    from t2s.patches.context import PatchContext
    from t2s.record.runs import RunRecord
    from t2s.skill.repo import limits_of

    record = RunRecord(store, run)
    manifest = record.manifest()
    settings = MergeSettings(
        fan_in=config.merge.fan_in if fan_in is None else fan_in, min_support=config.merge.min_support,
        retries=config.merge.retries, concurrency=config.merge.concurrency, retry_failed=retry_failed,
    )
    if settings.fan_in < 2:
        raise UsageError(f"--fan-in must be at least 2 (got {settings.fan_in})")
    if batch < 1:
        raise UsageError(f"--batch must be at least 1 (got {batch})")
    if rebuild and strategy == "sequential":
        raise UsageError("--rebuild sets the merge tree aside; the sequential baseline starts over on every run anyway")
    llm = LLM(config, cache_path=None if no_cache else default_cache_path(store.common_dir, config), phase="merge", overrides=overrides)
    context = PatchContext(store, manifest.s0, manifest.skill_dir, strict=config.lint.strict, limits=limits_of(config))
    progress = (lambda message: None) if quiet else (lambda message: err_console.print(f"  {message}"))
    merger = Merger(store, record, context, merger_ask(llm), settings, model=llm.role("merger").model, progress=progress)
    try:
        with record.stage_lock("merge"):
            merger.load_inputs()  # unreadable patch records or verdicts fail before anything is recorded
            if rebuild:
                name = set_aside_merges(store, record)
                if name and not quiet:
                    err_console.print(f"  the earlier merge tree is set aside as superseded/{name} "
                                      f"({refs.superseded(run, name)})", markup=False)
            record.set_stage("merge", "running")
            try:  # LLM.run closes the HTTP clients with the event loop
                summary = llm.run(merger.sequential(batch) if strategy == "sequential" else merger.parallel())
            except Exception:
                record.set_stage("merge", "failed")
                raise
            finally:
                _save_ledger(record, llm)
            record.set_stage("merge", "done", summary.model_dump())
    finally:
        llm.close()
    return summary


def _save_ledger(record, llm) -> None:
    from t2s.llm.ledger import accumulate

    path = "ledger/merge.json"
    record.write({path: accumulate(record.read_json(path), llm.ledger)}, f"t2s merge {record.run}: ledger")


@click.command()
@click.option("--run", "run_name", required=True, help="The run whose patch branches to merge.")
@click.option("--fan-in", type=setting_type(MergeSection, "fan_in"), default=None, help="Patches per octopus merge (default: [merge] fan_in, 5).")
@click.option("--strategy", type=click.Choice(["parallel", "sequential"]), default="parallel", show_default=True,
              help="parallel: the merge tree; sequential: the paper's baseline, a linear chain of batch edits.")
@click.option("--batch", type=number_type(Count), default=5, show_default=True, help="Patches per step with --strategy sequential.")
@click.option("--retry-failed", is_flag=True, help="Ask the merger again for merges recorded as failed.")
@click.option("--rebuild", is_flag=True,
              help=f"Set the run's merge tree aside (kept under {refs.SUPERSEDED}) and merge again, "
                   "e.g. after rejecting a merged patch. Unchanged groups come from the response cache.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the model response cache.")
@model_options
@json_option
@repo_option
def merge(run_name, fan_in, strategy, batch, retry_failed, rebuild, no_cache, flag_model, flag_base_url, flag_api_key_env, model_sets, as_json, repo_dir):
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
    store = open_store(repo_dir)
    config = load_repo_config(store)
    overrides = overrides_from_flags(flag_model, flag_base_url, flag_api_key_env, model_sets)
    summary = run_merge_command(
        store, config, run_name, fan_in=fan_in, strategy=strategy, batch=batch,
        retry_failed=retry_failed, overrides=overrides, no_cache=no_cache, quiet=as_json, rebuild=rebuild,
    )
    if as_json:
        print_json(summary.model_dump())
        return
    table = Table(title=f"merge {run_name} ({summary.strategy})")
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
