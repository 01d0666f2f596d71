"""``t2s push``: share runs, notes and releases with a remote."""

from __future__ import annotations

import click

from t2s.commands._common import console, json_option, open_store, print_json, repo_option


@click.command()
@click.argument("remote")
@click.option("--run", "run_name", default=None, help="Only this run's branches and record (default: every run).")
@click.option(
    "--release-branch", default=None, metavar="BRANCH", help="Also push this branch (e.g. main after `t2s release`)."
)
@click.option("--dry-run", is_flag=True, help="Show what would be pushed.")
@repo_option
@json_option
def push(remote, run_name, release_branch, dry_run, repo_dir, as_json):
    """Push t2s's refs to REMOTE with explicit refspecs, so reviewers see everything.

    Pushes refs/heads/t2s/<run>/* (patch, merge and candidate branches),
    refs/t2s/runs/<run> (the run record), refs/t2s/shards/<run>/* (shards' parts of
    it), refs/notes/t2s/* (evaluations and reviews), refs/t2s/eval-trajectories/* (the
    trajectories evaluations keep) and the release tags v*. Nothing but the kept
    trajectories is force-pushed: if the remote's notes moved (CI added some), fetch
    and merge them first (see docs/releases.md).

    \b
    Examples:
      t2s push origin --run r1
      t2s push origin --release-branch main
      t2s push origin --dry-run --json
    """
    from t2s.releases.push import push as do_push

    store = open_store(repo_dir)
    result = do_push(store, remote, run=run_name, release_branch=release_branch, dry_run=dry_run)
    if as_json:
        print_json(result.to_json())
        return
    for item in result.updated:
        state = "up to date" if item["up_to_date"] else item["summary"]
        console.print(f"{item['ref']}: {state}", markup=False)
    if dry_run:
        console.print("(dry run: nothing was pushed)")
