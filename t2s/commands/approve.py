"""``t2s approve``: record an approving review verdict on a patch."""

from __future__ import annotations

import click

from t2s.commands._common import console, json_option, open_store, print_json, repo_option
from t2s.record.notes import REVIEW_NOTES


def print_verdict(view, note, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "run": view.run,
                "patch": view.patch,
                "commit": view.commit,
                "status": view.status,
                "note": note.model_dump(),
            }
        )
        return
    word = "approved" if note.verdict == "approve" else "rejected"
    console.print(
        f"{word} patch {view.patch} of run {view.run} ({view.commit[:12]}) as {note.reviewer}"
        + (f": {note.comment}" if note.comment else ""),
        markup=False,
        soft_wrap=True,
    )
    console.print(f"recorded in {REVIEW_NOTES}; status: {view.status}", markup=False, soft_wrap=True)
    if note.verdict == "reject" and view.state == "merged":
        console.print(f"to merge without it: t2s merge --run {view.run} --rebuild", markup=False, soft_wrap=True)


@click.command()
@click.argument("patch")
@click.option("--run", "run_name", default=None, help="The run, when the number alone is ambiguous.")
@click.option("-m", "--message", "comment", default="", help="A comment to keep with the verdict.")
@json_option
@repo_option
def approve(patch, run_name, comment, as_json, repo_dir):
    """Approve a patch: a verdict note in refs/notes/t2s/review (replaces an earlier one).

    The reviewer is git's user.name and user.email.

    \b
    Examples:
      t2s approve 0007
      t2s approve t2s/r1/patch/0007 -m "general and well-worded"
    """
    from t2s.views.review import record_verdict

    view, note = record_verdict(open_store(repo_dir), patch, "approve", comment, run=run_name)
    print_verdict(view, note, as_json)
