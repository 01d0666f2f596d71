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
@click.option(
    "--eval",
    "eval_rev",
    default=None,
    metavar="REV",
    help="PATCH is a task: show its trajectory from the noted evaluation of REV (held-out runs are kept).",
)
@json_option
@repo_option
def show(patch, run_name, no_diff, steps, eval_rev, as_json, repo_dir):
    """Show a patch: provenance, the diff against S0, its lessons, and the trajectory
    around the failure. Or, with --run, one trajectory of the run by its id.

    PATCH is a number (0007), a branch (t2s/r1/patch/0007), a full ref or a commit;
    or a trajectory id (see `t2s trajectories --run RUN`). A merge's name (L1-02, S003)
    shows the merger's transcript instead: what it was asked, each raw answer, and the
    feedback that sent it back.

    \b
    Examples:
      t2s show 0007
      t2s show t2s/r1/patch/0007
      t2s show 7 --run r1 --no-diff
      t2s show 0007 --json
      t2s show L1-02 --run r1                 # the merger's transcript of merge L1-02
      t2s show hard1 --eval t2s/r1/candidate  # a held-out task's trajectory in that evaluation
      t2s show txt-1-1 --run t2s-official     # a trajectory
    """
    from t2s.views.review import MERGE_NAME_RE, merge_transcript, patch_detail

    store = open_store(repo_dir)
    if eval_rev:
        from t2s.views.review import eval_trajectory_excerpt

        excerpt = eval_trajectory_excerpt(store, eval_rev, patch, context_steps=max(0, steps))
        if as_json:
            print_json(excerpt.model_dump())
        else:
            console.print(excerpt.render(), markup=False, soft_wrap=True)
        return
    if MERGE_NAME_RE.fullmatch(patch):
        run, messages = merge_transcript(store, patch, run_name)
        if as_json:
            print_json({"run": run, "merge": patch, "transcript": messages})
            return
        _print_transcript(run, patch, messages)
        return
    if run_name is not None and _show_trajectory(store, run_name, patch, as_json):
        return
    detail = patch_detail(store, patch, run_name, context_steps=max(0, steps))
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


def _print_transcript(run: str, name: str, messages: list[dict]) -> None:
    """A merger conversation, one message after the other, text printed as it is."""
    answers = sum(1 for m in messages if m.get("role") == "assistant")
    console.print(f"merge {name} of run {run}: {answers} merger answer(s)", markup=False, style="bold")
    for message in messages:
        role = str(message.get("role", "?"))
        console.print(f"--- {role}", markup=False, style="bold cyan" if role == "assistant" else "bold")
        console.print(str(message.get("content") or ""), markup=False, soft_wrap=True)


def _show_trajectory(store, run_name: str, traj_id: str, as_json: bool) -> bool:
    """Print trajectory ``traj_id`` of the run if there is one (True), else nothing."""
    from t2s.views.trajectories import row_of, trajectory_detail

    traj = trajectory_detail(store, run_name, traj_id) if "/" not in traj_id else None
    if traj is None:
        return False
    if as_json:
        print_json(traj.model_dump(mode="json"))
        return True
    row = row_of(traj)
    console.print(
        f"trajectory {traj.id} of run {run_name}: task {row.task} case {row.case}, {row.verdict}"
        + (f" (t2s check: {row.t2s_check})" if row.t2s_check else ""),
        markup=False,
        style="bold",
        soft_wrap=True,
    )
    console.print(
        f"  source {row.source}, model {row.model or '?'}, {row.turns} turn(s), {row.tokens} tokens, "
        f"outputs: {', '.join(row.outputs) or '-'}",
        markup=False,
    )
    console.print(traj.render(), markup=False, soft_wrap=True)
    return True
