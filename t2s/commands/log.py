"""``t2s log``: the history of a skill repository with t2s's refs drawn in."""

from __future__ import annotations

import click

from t2s.commands._common import number_type, open_store, repo_option
from t2s.config import Count


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
    args = ["log", "--graph", "--decorate", "--format=%h%d %s"]
    if max_count:
        args.append(f"-n{max_count}")
    if revs:
        args += list(revs)
    elif run_name:
        args.append(f"--glob=refs/heads/t2s/{run_name}/*")
    else:
        args += ["HEAD", "--branches", "--tags"]
    click.echo(store.run(*args), nl=False)


def _require_run(store, run_name: str) -> None:
    """A run with neither a record nor branches is a typo, not an empty history."""
    from t2s.errors import UsageError
    from t2s.runs import RUNS_PREFIX, check_run_name, list_runs

    check_run_name(run_name)
    if not store.rev_parse(RUNS_PREFIX + run_name) and not store.refs(f"refs/heads/t2s/{run_name}/"):
        known = list_runs(store)
        raise UsageError(f"run {run_name!r} does not exist",
                         hint=f"runs here: {', '.join(known)}" if known else "there are no runs here yet")
