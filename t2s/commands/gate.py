"""``t2s gate``: is the candidate better than the baseline on held-out tasks?"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from t2s.commands._common import (
    appending,
    console,
    err_console,
    json_option,
    number_type,
    open_repo,
    print_causes,
    print_json,
    repo_option,
    setting_type,
    unsafe_sandbox_option,
)
from t2s.commands._estimates import dry_run_option, print_estimate
from t2s.config import Count, GateSection


@click.command()
@click.argument("candidate")
@click.option(
    "--baseline",
    default=None,
    help="Compare against this revision (default: the latest release tag, else the run's S0).",
)
@click.option("--split", default=None, help="The split (default: [gate] split).")
@click.option(
    "--seeds", type=setting_type(GateSection, "seeds"), default=None, help="Runs per task (default: [gate] seeds)."
)
@click.option("--suite", default=None, help="The configured suite (default: [rollout] suite).")
@click.option(
    "--min-delta", type=setting_type(GateSection, "min_delta"), default=None, help="Override [gate] min_delta."
)
@click.option(
    "--max-regressions",
    type=setting_type(GateSection, "max_regressions"),
    default=None,
    help="Override [gate] max_regressions.",
)
@click.option(
    "--decide",
    type=click.Choice(["delta", "significant"]),
    default=None,
    help="Judge the observed delta, or the lower bound of its confidence interval (default: [gate] decide).",
)
@click.option("--alpha", type=setting_type(GateSection, "alpha"), default=None, help="Override [gate] alpha.")
@click.option("--no-cache", is_flag=True, help="Re-run both evaluations.")
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='Append the Markdown summary to this file (e.g. "$GITHUB_STEP_SUMMARY").',
)
@click.option(
    "--limit",
    type=number_type(Count),
    default=None,
    help="A quick look: only the first N tasks of the split (the verdict is printed, never recorded).",
)
@click.option(
    "--task",
    "task_ids",
    multiple=True,
    metavar="ID",
    help="A quick look: only this task (repeatable; the verdict is never recorded).",
)
@unsafe_sandbox_option
@dry_run_option
@repo_option
@json_option
def gate(
    candidate,
    baseline,
    split,
    seeds,
    suite,
    min_delta,
    max_regressions,
    decide,
    alpha,
    no_cache,
    markdown_path,
    limit,
    task_ids,
    unsafe_no_sandbox,
    repo_dir,
    as_json,
    dry_run=False,
):
    """Evaluate CANDIDATE and a baseline on the same split and agent; pass or fail.

    Passes only if the score delta is above [gate] min_delta (an unchanged score
    fails unless [gate] require_improvement = false) and at most [gate]
    max_regressions tasks went from pass to fail. With --decide significant the
    lower bound of the delta's (1 - alpha) paired bootstrap interval must be above
    min_delta instead: use --seeds 3 or more. Prints the paired table, the interval,
    each task's pass rate and the flaky tasks (with several seeds), an exact
    sign-test p-value and one sentence saying why it passed or failed, records the verdict in the candidate's eval note (what
    `t2s release` and the pre-push hook check). Exit 0 on pass, 1 on fail, 3 when
    an evaluation errored (the model endpoint failed: nothing is judged or recorded).

    \b
    Examples:
      t2s gate t2s/r1/candidate
      t2s gate t2s/r1/candidate --baseline v0.2.0 --markdown "$GITHUB_STEP_SUMMARY"
      t2s gate HEAD --json
      t2s gate t2s/r1/candidate --seeds 5 --decide significant --alpha 0.1
      t2s gate t2s/r1/candidate --dry-run     # the expected cost, nothing spent
      t2s gate t2s/r1/candidate --limit 5     # a quick look: printed, never recorded
    """
    import t2s
    from t2s.commands.progress import eval_bar
    from t2s.evaluation.evaluate import EvalErrored
    from t2s.evaluation.summary import gate_markdown

    repo = open_repo(repo_dir)
    if dry_run:
        estimate = t2s.estimate(
            repo, "gate", candidate, baseline, split=split, seeds=seeds, suite=suite, cache=not no_cache
        )
        print_estimate(estimate, as_json, "gate")
        return
    progress = None if as_json else eval_bar("gate")
    with (
        appending(markdown_path, "--markdown") if markdown_path else contextlib.nullcontext() as summary,
        progress or contextlib.nullcontext(),
    ):
        try:
            result = t2s.gate(
                repo,
                candidate,
                baseline,
                split=split,
                seeds=seeds,
                suite=suite,
                min_delta=min_delta,
                max_regressions=max_regressions,
                decide=decide,
                alpha=alpha,
                cache=not no_cache,
                unsafe_no_sandbox=unsafe_no_sandbox,
                on_wait=lambda msg: err_console.print(msg + " ...", markup=False),
                tasks=list(task_ids) or None,
                limit=limit,
                progress=progress,
            )
        except EvalErrored as err:  # no verdict: say why, in the form asked for
            if progress:
                progress.stop()
            rec = err.outcome.record
            if as_json:
                print_json(
                    {
                        "passed": None,
                        "commit": err.outcome.commit,
                        "errored": len(rec.errored_tasks),
                        "total": rec.total,
                        "errors": [row.model_dump() for row in err.causes],
                    }
                )
            else:
                print_causes(err.causes)
            raise
        subset = result.candidate.subset
        markdown = gate_markdown(result)
        if subset:
            markdown = f"> A quick look at {subset} of the split: this verdict was not recorded.\n\n" + markdown
        if summary is not None:
            summary.write(markdown)
    if as_json:
        data = result.to_json()
        data["markdown"] = markdown
        data["subset"] = subset or None
        print_json(data)
    else:
        _print(result)
        if subset:
            console.print(f"(a quick look at {subset} of the split: this verdict was not recorded)", markup=False)
    sys.exit(0 if result.passed else 1)


def _print(result) -> None:
    from rich.table import Table

    r = result.record
    table = Table(title=f"t2s gate: {result.candidate_rev} vs {result.baseline_rev}")
    table.add_column("")
    table.add_column("candidate passes", justify="right")
    table.add_column("candidate fails", justify="right")
    table.add_row("baseline passes", str(r.paired["both"]), f"[red]{r.paired['only_baseline']}[/]")
    table.add_row("baseline fails", f"[green]{r.paired['only_candidate']}[/]", str(r.paired["neither"]))
    console.print(table)
    if result.candidate.record.seeds > 1:
        rates = Table(title="pass rate over the seeds")
        for col in ("task", "baseline", "candidate", "flaky"):
            rates.add_column(col)
        for task, rate in r.candidate_pass_rates.items():
            base = r.baseline_pass_rates.get(task, 0.0)
            rates.add_row(task, f"{base:.0%}", f"{rate:.0%}", "yes" if task in r.flaky else "")
        console.print(rates)
    need = f"> {r.min_delta:+.3f}" if r.require_improvement else f">= {r.min_delta:+.3f}"
    interval = (
        "" if r.ci_low is None else f", {100 * (1 - (r.alpha or 0.05)):g}% CI [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
    )
    console.print(
        f"score {r.baseline_score:.3f} -> {r.candidate_score:.3f} (delta {r.delta:+.3f}{interval}, need {need}, "
        f"decide {r.decide}); regressions {r.regressions} (max {r.max_regressions}); sign test p = {r.p_value:.4g}",
        markup=False,
    )
    if r.regressed:
        console.print("regressed: " + ", ".join(r.regressed), markup=False)
    if r.improved:
        console.print("improved: " + ", ".join(r.improved), markup=False)
    if r.flaky:
        console.print("flaky: " + ", ".join(r.flaky), markup=False)
    console.print(r.reason, markup=False)
    console.print("[green]PASSED[/]" if r.passed else "[red]FAILED[/]")
