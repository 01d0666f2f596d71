"""``t2s reject``: record a rejecting review verdict on a patch; merge leaves it out."""

from __future__ import annotations

import click

from t2s.commands._common import json_option, open_store, repo_option
from t2s.commands.approve import print_verdict


@click.command()
@click.argument("patch")
@click.option("--run", "run_name", default=None, help="The run, when the number alone is ambiguous.")
@click.option("-m", "--message", "reason", required=True, help="Why the patch is rejected (required).")
@json_option
@repo_option
def reject(patch, run_name, reason, as_json, repo_dir):
    """Reject a patch: a verdict note in refs/notes/t2s/review (replaces an earlier one).

    `t2s merge` leaves rejected patches out and lists them in its report. A patch
    already merged stays in that merge: `t2s merge --run RUN --rebuild` merges again
    without it.

    \b
    Examples:
      t2s reject 0007 -m "too specific to one workbook"
      t2s reject t2s/r1/patch/0003 -m "contradicts the formula guidance"
    """
    from t2s.views.review import record_verdict

    view, note = record_verdict(open_store(repo_dir), patch, "reject", reason, run=run_name)
    print_verdict(view, note, as_json)
