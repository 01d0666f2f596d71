"""``t2s release``: merge a gated candidate into main and tag it."""

from __future__ import annotations

import click

from t2s.commands._common import console, json_option, open_repo, print_json, repo_option


@click.command()
@click.argument("candidate")
@click.option(
    "--bump",
    type=click.Choice(["major", "minor", "patch"]),
    default="minor",
    show_default=True,
    help="Which part of the latest vX.Y.Z to increase (first release: from 0.0.0).",
)
@click.option("--branch", default=None, help="The release branch (default: [release] branch, 'main').")
@repo_option
@json_option
def release(candidate, bump, branch, repo_dir, as_json):
    """Release CANDIDATE: a merge on main, an annotated tag vX.Y.Z, the eval note.

    Refuses unless the candidate's eval note holds a passing gate (run `t2s gate`).
    The release commit's first parent is the previous release, its tree is main's
    with the skill folder taken from the candidate; the tag message carries the
    eval table and the changelog. main and the tag move together with
    compare-and-swap. If main is checked out, t2s leaves it (and your files) alone
    and tells you the fast-forward to run.

    \b
    Examples:
      t2s release t2s/r1/candidate
      t2s release t2s/r1/candidate --bump patch --json
      git push origin main v0.2.0 refs/notes/t2s/*   # or: t2s push origin --release-branch
    """
    import t2s

    result = t2s.release(open_repo(repo_dir), candidate, bump=bump, branch=branch)
    if as_json:
        print_json(result.to_json())
        return
    console.print(
        f"released [bold]{result.version}[/] = {result.commit[:12]} (merge of {result.previous[:12]} and {result.candidate[:12]})"
    )
    if result.branch_moved:
        console.print(f"{result.branch}: {result.previous[:12]} -> {result.commit[:12]}")
    else:
        console.print(
            f"[yellow]{result.branch} is checked out in {result.checked_out_in}; t2s did not move it or touch your files.[/]\n"
            f"Fast-forward it there with:  git merge --ff-only {result.version}"
        )
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}")
    console.print(result.message)
