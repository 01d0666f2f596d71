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
    open_repo,
    print_causes,
    print_json,
    repo_option,
    setting_type,
    unsafe_sandbox_option,
)
from t2s.config import GateSection


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
@click.option("--no-cache", is_flag=True, help="Re-run both evaluations.")
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='Append the Markdown summary to this file (e.g. "$GITHUB_STEP_SUMMARY").',
)
@unsafe_sandbox_option
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
    no_cache,
    markdown_path,
    unsafe_no_sandbox,
    repo_dir,
    as_json,
):
    """Evaluate CANDIDATE and a baseline on the same split and agent; pass or fail.

    Passes only if the score delta is at least [gate] min_delta and at most [gate]
    max_regressions tasks went from pass to fail. Prints the paired table and an
    exact sign-test p-value, records the verdict in the candidate's eval note (what
    `t2s release` and the pre-push hook check). Exit 0 on pass, 1 on fail, 3 when
    an evaluation errored (the model endpoint failed: nothing is judged or recorded).

    \b
    Examples:
      t2s gate t2s/r1/candidate
      t2s gate t2s/r1/candidate --baseline v0.2.0 --markdown "$GITHUB_STEP_SUMMARY"
      t2s gate HEAD --json
    """
    import t2s
    from t2s.evaluation.evaluate import EvalErrored
    from t2s.evaluation.summary import gate_markdown

    repo = open_repo(repo_dir)
    with appending(markdown_path, "--markdown") if markdown_path else contextlib.nullcontext() as summary:
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
                cache=not no_cache,
                unsafe_no_sandbox=unsafe_no_sandbox,
                on_wait=lambda msg: err_console.print(msg + " ...", markup=False),
            )
        except EvalErrored as err:  # no verdict: say why, in the form asked for
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
        markdown = gate_markdown(result)
        if summary is not None:
            summary.write(markdown)
    if as_json:
        data = result.to_json()
        data["markdown"] = markdown
        print_json(data)
    else:
        _print(result)
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
    console.print(
        f"score {r.baseline_score:.3f} -> {r.candidate_score:.3f} (delta {r.delta:+.3f}, need >= {r.min_delta:+.3f}); "
        f"regressions {r.regressions} (max {r.max_regressions}); sign test p = {r.p_value:.4g}"
    )
    if r.regressed:
        console.print("regressed: " + ", ".join(r.regressed))
    if r.improved:
        console.print("improved: " + ", ".join(r.improved))
    console.print("[green]PASSED[/]" if r.passed else "[red]FAILED[/]")
