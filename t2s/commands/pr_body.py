"""``t2s pr-body``: a Markdown pull-request description for a patch or a candidate."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from t2s.commands._common import open_store, repo_option, write_output


@click.command("pr-body")
@click.argument("target")
@click.option("--run", "run_name", default=None, help="The run (needed when the target is ambiguous).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
@repo_option
def pr_body(target, run_name, output, repo_dir):
    """Print a pull-request description: provenance, diff, lessons with support, and
    the evaluation delta (from refs/notes/t2s/eval) when there is one.

    TARGET is a patch (0007, t2s/r1/patch/0007, a commit) or `candidate`
    (or t2s/r1/candidate).

    \b
    Examples:
      t2s pr-body 0007 --run r1
      t2s pr-body candidate --run r1 > body.md
      gh pr create --head t2s/r1/candidate --title "t2s r1" --body-file <(t2s pr-body candidate --run r1)
    """
    from t2s.views.review import pr_body as make_body

    text = make_body(open_store(repo_dir), target, run_name)
    if output:
        write_output(output, text, "-o")
        click.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.write(text)
