"""``t2s select``: the evaluated nodes of a run's merge tree and the candidate among them."""

from __future__ import annotations

import click
from rich.table import Table

from t2s.commands._common import console, json_option, open_repo, print_json, repo_option


@click.command()
@click.option("--run", "run_name", required=True, help="The run whose merge tree to list.")
@json_option
@repo_option
def select(run_name, as_json, repo_dir):
    """List every merge node of a run with its validation score, verdict, support and
    size, and say which node t2s/RUN/candidate points at and why.

    A node that scored below its best input (minus [merge] tolerance) was rejected by
    validation and its best input went up in its place, so the candidate is the best
    node on val that nothing above it beat.

    \b
    Examples:
      t2s select --run r1
      t2s select --run r1 --json | jq .selected
    """
    import t2s

    selection = t2s.select(open_repo(repo_dir), run_name)
    if as_json:
        print_json(selection.model_dump())
        return
    table = Table(title=f"merge tree of {selection.run}" + (f" on {selection.split}" if selection.split else ""))
    for column in ("", "node", "level", "val", "verdict", "best input", "support", "lessons", "diff lines"):
        table.add_column(column)
    for node in selection.nodes:
        table.add_row(
            "*" if node.name == selection.selected else "",
            node.name,
            str(node.level),
            "-" if node.val_score is None else f"{node.val_score:.3f}",
            node.verdict or "-",
            "-" if node.best_input is None else f"{node.best_input:.3f}",
            str(node.support),
            str(node.lessons),
            str(node.diff_lines),
        )
    console.print(table)
    where = f" ({selection.candidate[:12]})" if selection.candidate else ""
    console.print(f"candidate: [bold]{selection.selected or '-'}[/bold]{where}: {selection.reason}")
