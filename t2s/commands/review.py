"""``t2s review``: a run's patches as a pull-request list."""

from __future__ import annotations

import click

from t2s.commands._common import console, json_option, open_store, print_json, repo_option


@click.command()
@click.option("--run", "run_name", required=True, help="The run whose patches to list.")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["merged", "rejected", "unvalidated", "open", "missing"]),
    help="Only patches in this state (repeatable).",
)
@json_option
@repo_option
def review(run_name, states, as_json, repo_dir):
    """List a run's patches like pull requests: provenance, size and status.

    Every analyzed trajectory is listed, including patches the analyst stage rejected
    (they have no branch). STATUS says where a patch went: merged into which merge,
    rejected and why, unvalidated, or open; VERDICT is the human review note
    (`t2s approve` / `t2s reject`).

    \b
    Examples:
      t2s review --run r1
      t2s review --run r1 --state open --state unvalidated
      t2s review --run r1 --json | jq '.[] | select(.state == "rejected")'
      t2s show 0007 --run r1        # one patch in full
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from t2s.views.review import review_rows

    rows = review_rows(open_store(repo_dir), run_name)
    if states:
        rows = [r for r in rows if r.state in states]
    if as_json:
        print_json([r.model_dump() | {"verdict_text": r.verdict_text} for r in rows])
        return
    colours = {"merged": "green", "rejected": "red", "unvalidated": "yellow", "open": "cyan", "missing": "magenta"}
    if console.width >= 120:
        table = Table(title=f"run {run_name}: {len(rows)} patch(es)", box=box.SIMPLE_HEAD, pad_edge=False)
        for column in ("id", "task", "outcome", "analyst", "valid.", "+/-"):
            table.add_column(column, no_wrap=True)
        table.add_column("lesson", max_width=60)
        table.add_column("status")
        table.add_column("verdict")
        for r in rows:
            table.add_row(
                Text(r.patch),
                Text(r.task or "-"),
                Text(r.outcome or "-"),
                Text(r.analyst or "-"),
                Text(r.validated or "-"),
                Text(f"+{r.lines_added}/-{r.lines_removed}"),
                Text(_lesson(r)),
                Text(r.status, style=colours.get(r.state, "")),
                Text(r.verdict_text or "-"),
            )
        console.print(table)
    else:  # a narrow terminal: two lines per patch read better than a squeezed table
        console.print(f"run {run_name}: {len(rows)} patch(es)", markup=False, style="bold")
        for r in rows:
            head = Text(
                f"{r.patch}  {r.task or '-'}  {r.outcome or '-'}  {r.analyst or '-'}  "
                f"validated {r.validated or '-'}  +{r.lines_added}/-{r.lines_removed}  "
            )
            head.append(r.status, style=colours.get(r.state, ""))
            console.print(head, soft_wrap=True)
            console.print(Text(f"      {_lesson(r)}"), overflow="ellipsis", no_wrap=True)
            if r.verdict_text:
                console.print(Text(f"      review: {r.verdict_text}"), soft_wrap=True)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
    console.print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no patches", markup=False)


def _lesson(row) -> str:
    text = " ".join((row.lessons[0].text if row.lessons else "").split())
    return text + (f" (+{len(row.lessons) - 1} more)" if len(row.lessons) > 1 else "")
