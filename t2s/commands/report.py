"""``t2s report``: one self-contained HTML page about a run."""

from __future__ import annotations

from pathlib import Path

import click

from t2s.commands._common import open_store, repo_option, write_output


@click.command()
@click.option("--run", "run_name", required=True, help="The run to report on.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The HTML file to write (default: t2s-report-RUN.html).",
)
@repo_option
def report(run_name, output, repo_dir):
    """Write a self-contained HTML report of a run (no network, no scripts): the run
    summary, the patch list, the merge tree as a picture, the candidate diff and the
    evaluation against the baseline.

    \b
    Examples:
      t2s report --run r1 -o report.html
      t2s report --run r1 -C my-skills && xdg-open t2s-report-r1.html
    """
    from t2s.views.report import render_report

    html = render_report(open_store(repo_dir), run_name)
    output = output or Path(f"t2s-report-{run_name}.html")
    write_output(output, html, "-o")
    click.echo(f"wrote {output} ({len(html.encode()) // 1024 + 1} KiB)")
