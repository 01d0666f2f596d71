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
      t2s log -C my-skills -n 20
    """
    store = open_store(repo_dir)
    if run_name is not None:
        _require_run(store, run_name)
    glob = refs.run_branches(run_name) + "*" if run_name and not revs else None
    click.echo(store.graph(list(revs), glob=glob, max_count=max_count), nl=False)


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
