"""``t2s log``: the history of a skill repository with t2s's refs drawn in."""

from __future__ import annotations

import click

from t2s.commands._common import number_type, open_store, repo_option
from t2s.config import Count
from t2s.record import refs


@click.command()
@click.argument("revs", nargs=-1)
@click.option("--run", "run_name", help="Only this run's patch, merge and candidate branches.")
@click.option("-n", "--max-count", type=number_type(Count), default=None, help="Show at most N commits.")
@repo_option
def log(revs, run_name, max_count, repo_dir):
    """Show the commit graph: releases on main, patch branches, octopus merges.

    \b
    Examples:
      t2s log                      # main, all t2s branches and tags
      t2s log --run r1             # one run's merge tree
      t2s log --run r3             # after `t2s evolve --run r3 --rounds N`: the rounds' lineage
      t2s log -C my-skills -n 20
    """
    from t2s.record.lineage import rounds_of

    store = open_store(repo_dir)
    lineage = rounds_of(store, run_name) if run_name and not store.rev_parse(refs.run_record(run_name)) else []
    if lineage:  # a multi-round evolve: its lineage, then every round's branches
        for r in lineage:
            verdict = "not gated" if r.gate is None else ("gate passed" if r.gate.passed else "gate FAILED")
            score = "" if r.gate is None else f" {r.gate.baseline_score:.3f} -> {r.gate.candidate_score:.3f}"
            candidate = (r.candidate or "none")[:12]
            click.echo(f"round {r.number} {r.run}: {r.s0[:12]} -> {candidate} ({verdict}{score})")
        click.echo("")
        glob = refs.rounds_branches_glob(run_name) if not revs else None
        click.echo(store.graph(list(revs), glob=glob, max_count=max_count), nl=False)
        return
    if run_name is not None:
        _require_run(store, run_name)
    glob = refs.run_branches(run_name) + "*" if run_name and not revs else None
    if glob and not store.refs(refs.run_branches(run_name)):  # imported or rolled out, not analysed yet
        revs, glob, max_count = _s0_only(store, run_name), None, max_count or 5
    click.echo(store.graph(list(revs), glob=glob, max_count=max_count), nl=False)
    if run_name is not None:
        _print_val_scores(store, run_name)


def _print_val_scores(store, run_name: str) -> None:
    """The merge nodes' validation scores and verdicts, under the graph."""
    from t2s.consolidation.selection import read_merge_reports
    from t2s.record.runs import RunRecord

    record = RunRecord(store, run_name)
    if not store.rev_parse(record.ref):
        return
    scored = [(r, r.validation) for r in read_merge_reports(record) if r.validation is not None]
    if scored:
        click.echo(f"validation ({scored[0][1].split}):")
    for report, validation in scored:
        click.echo(f"  {report.name} {(report.commit or '')[:12]}  {validation.describe()}")


def _s0_only(store, run_name: str) -> list[str]:
    """A run without branches yet: its S0, and where to see its trajectories."""
    from t2s.record.runs import RunRecord

    record = RunRecord(store, run_name)
    click.echo(
        f"run {run_name} has no patch branches yet (not analysed); its S0 is below. "
        f"Its trajectories: t2s trajectories --run {run_name}",
        err=True,
    )
    return [record.manifest().s0] if record.exists() else []


def _require_run(store, run_name: str) -> None:
    """A run with neither a record nor branches is a typo, not an empty history."""
    from t2s.errors import UsageError
    from t2s.record.runs import check_run_name, list_runs

    check_run_name(run_name)
    if not store.rev_parse(refs.run_record(run_name)) and not store.refs(refs.run_branches(run_name)):
        known = list_runs(store)
        raise UsageError(
            f"run {run_name!r} does not exist",
            hint=f"runs here: {', '.join(known)}" if known else "there are no runs here yet",
        )
