"""``t2s blame``: which lessons, merges, patches and trajectories put a line there."""

from __future__ import annotations

import click

from t2s.commands._common import console, json_option, number_type, open_store, print_json, repo_option
from t2s.config import Count


@click.command()
@click.argument("line", type=number_type(Count), required=False)
@click.option("--run", "run_name", required=True, help="The run whose candidate to blame.")
@click.option("--text", help="Blame the first line containing TEXT (case-insensitive) instead of a number.")
@json_option
@repo_option
def blame(line, run_name, text, as_json, repo_dir):
    """Trace a line of the candidate's SKILL.md back to its evidence.

    \b
    Examples:
      t2s blame --run r1 42
      t2s blame --run r1 --text "recalculate"
      t2s blame --run r1 --text "data_only" --json
    """
    from t2s.views.blame import blame as run_blame, render_tree

    result = run_blame(open_store(repo_dir), run_name, line=line, text=text)
    if as_json:
        print_json(result.model_dump())
        return
    console.print(f"line {result.line}: {result.text}", markup=False)
    if result.introduced_by == "S0":
        console.print("already in S0: not written by this run")
        return
    console.print(f"explained by {result.introduced_by} (git blame: {result.commit[:12]})", markup=False)
    for row in render_tree(result):
        console.print(f"  {row}", markup=False)
    console.print(
        f"{len(result.trajectories)} trajectories, {len(result.patches)} patches, tasks: {', '.join(result.tasks) or '-'}",
        markup=False,
    )
