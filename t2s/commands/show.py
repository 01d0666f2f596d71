"""``t2s show``: one patch with its provenance, diff, lessons and trajectory excerpt."""

from __future__ import annotations

import click

from t2s.commands._common import console, json_option, number_type, open_store, print_json, repo_option
from t2s.config import NonNegative


@click.command()
@click.argument("patch")
@click.option("--run", "run_name", default=None, help="The run, when the number alone is ambiguous.")
@click.option("--no-diff", is_flag=True, help="Leave the diff out.")
@click.option(
    "--steps",
    type=number_type(NonNegative),
    default=2,
    show_default=True,
    help="Trajectory steps to show before the failing one.",
)
@json_option
@repo_option
def show(patch, run_name, no_diff, steps, as_json, repo_dir):
    """Show a patch: provenance, the diff against S0, its lessons, and the trajectory
    around the failure.

    PATCH is a number (0007), a branch (t2s/r1/patch/0007), a full ref or a commit.

    \b
    Examples:
      t2s show 0007
      t2s show t2s/r1/patch/0007
      t2s show 7 --run r1 --no-diff
      t2s show 0007 --json
    """
    from t2s.views.review import patch_detail

    detail = patch_detail(open_store(repo_dir), patch, run_name, context_steps=max(0, steps))
    if as_json:
        print_json(detail.model_dump())
        return
    v = detail.view

    def out(text, **style):
        console.print(text, markup=False, soft_wrap=True, **style)

    out(f"patch {v.patch} of run {v.run}: {v.status}", style="bold")
    rows = [
        ("branch", f"{v.short_branch} ({v.commit[:12]})" if v.commit else "(none)"),
        ("S0", detail.s0[:12]),
        ("task", v.task or "-"),
        ("trajectory", f"{v.trajectory or '-'} ({v.outcome or '?'})"),
        ("analyst", (v.analyst or "-") + (f", model {v.model}" if v.model else "")),
        ("validated", v.validated or "-"),
        ("change", f"+{v.lines_added} -{v.lines_removed}"),
        ("review", v.verdict_text or "no verdict"),
    ]
    if v.reason:
        rows.append(("reason", v.reason))
    for key, value in rows:
        out(f"  {key:<11} {value}")
    if v.trailers:
        out("trailers:")
        for key, value in v.trailers.items():
            out(f"  {key}: {value}")
    out("lessons:", style="bold")
    for lesson in v.lessons or []:
        out(
            f"  {lesson.id} [support {len(lesson.support)}: {', '.join(lesson.support)}] {' '.join(lesson.text.split())}"
        )
    if not v.lessons:
        out("  (none recorded)")
    if v.failure_causes:
        out("failure causes:", style="bold")
        for cause in v.failure_causes:
            out(f"  - {' '.join(cause.split())}")
    if not no_diff:
        out("diff:", style="bold")
        for line in (detail.diff or "(no diff recorded)\n").splitlines():
            style = (
                "green"
                if line.startswith("+") and not line.startswith("+++")
                else "red"
                if line.startswith("-") and not line.startswith("---")
                else ""
            )
            out(line, style=style)
    out("trajectory:", style="bold")
    if detail.excerpt is not None:
        out(detail.excerpt.render())
    else:
        out(f"  {detail.excerpt_missing}")
