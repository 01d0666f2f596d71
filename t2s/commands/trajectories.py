"""``t2s trajectories``: a run's trajectories before analysis (rolled out or imported)."""

from __future__ import annotations

import click

from t2s.commands._common import console, json_option, open_store, print_json, repo_option


@click.command()
@click.option("--run", "run_name", required=True, help="The run whose trajectories to list.")
@click.option(
    "--verdict",
    type=click.Choice(["passed", "failed", "errored", "unlabelled"]),
    default=None,
    help="Only trajectories with this verdict.",
)
@json_option
@repo_option
def trajectories(run_name, verdict, as_json, repo_dir):
    """List a run's trajectories: task, verdict, turns, tokens and source.

    Open one with `t2s show ID --run RUN`.

    \b
    Examples:
      t2s trajectories --run r1
      t2s trajectories --run t2s-official --verdict failed
      t2s trajectories --run r1 --json
    """
    from rich.table import Table

    from t2s.views.trajectories import list_trajectories

    listing = list_trajectories(open_store(repo_dir), run_name)
    if verdict is not None:
        listing.trajectories = [r for r in listing.trajectories if r.verdict == verdict]
    if as_json:
        print_json(listing.model_dump())
        return
    counts = listing.counts
    table = Table(
        title=f"run {run_name}: {counts['total']} trajectories, {counts['passed']} passed, "
        f"{counts['failed']} failed, {counts['errored']} errored, {counts['unlabelled']} unlabelled"
    )
    for name in ("id", "task", "case", "verdict", "t2s check", "turns", "tokens", "output", "source"):
        table.add_column(name, justify="right" if name in ("case", "turns", "tokens") else "left", overflow="fold")
    for r in listing.trajectories:
        table.add_row(
            r.id,
            r.task,
            str(r.case),
            r.verdict,
            r.t2s_check or "-",
            str(r.turns),
            str(r.tokens),
            ", ".join(r.outputs) or "-",
            r.source,
        )
    console.print(table)
