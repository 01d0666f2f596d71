"""``t2s eval``: evaluate the skill at a revision on a split and note the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from t2s.commands._common import (
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
from t2s.config import GateSection, Score
from t2s.errors import T2SError

#: ``git bisect run`` aborts on exit codes >= 128; 125 means "skip this commit".
EXIT_SKIP = 125
EXIT_ABORT = 128


@click.command(name="eval")
@click.argument("rev", default="HEAD")
@click.option("--split", default=None, help="The split to run (default: [gate] split, usually 'heldout').")
@click.option(
    "--seeds", type=setting_type(GateSection, "seeds"), default=None, help="Runs per task (default: [gate] seeds)."
)
@click.option("--suite", default=None, help="The configured suite (default: [rollout] suite).")
@click.option("--no-cache", is_flag=True, help="Run the agent even if a matching result is in the notes.")
@click.option(
    "--exit-code-below",
    "below",
    type=number_type(Score),
    default=None,
    metavar="SCORE",
    help="Exit 1 if the score is below SCORE, 0 otherwise, 125 if the skill cannot be "
    "evaluated (git bisect skips it), 128 on other errors (git bisect stops).",
)
@click.option(
    "--report-file",
    type=click.Path(path_type=Path),
    default=None,
    hidden=True,
    help="Append one JSON line per evaluation (used by t2s bisect).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print one line instead of the table.")
@unsafe_sandbox_option
@repo_option
@json_option
def eval_(rev, split, seeds, suite, no_cache, below, report_file, quiet, unsafe_no_sandbox, repo_dir, as_json):
    """Evaluate the skill at REV (default HEAD) and attach the result as a git note.

    The skill folder at REV is materialised with `git archive` (nothing is checked
    out), the agent runs every task of the split, and the per-task verdicts, score,
    tokens, cost and duration go into the note on REV in refs/notes/t2s/eval. A
    result is reused, without any model call, for any commit with the same skill
    subtree, suite hash and agent settings; --no-cache forces a run.

    If any task errored (the model endpoint was down, answered garbage, timed out...)
    nothing is recorded: the tasks and the causes are printed and the exit status is 3.
    A second eval of the same skill waits for one already running, then reuses it.

    \b
    Examples:
      t2s eval t2s/r1/candidate --split heldout
      t2s eval v0.2.0 --seeds 3 --json
      git notes --ref t2s/eval show HEAD       # the stored result
      git bisect run t2s eval --exit-code-below 0.6   # (t2s bisect does this for you)
    """
    import t2s
    from t2s.evaluation.evaluate import EvalErrored, Unevaluable

    try:
        outcome = t2s.evaluate(
            open_repo(repo_dir),
            rev,
            split=split,
            seeds=seeds,
            suite=suite,
            cache=not no_cache,
            unsafe_no_sandbox=unsafe_no_sandbox,
            on_wait=lambda msg: err_console.print(msg + " ...", markup=False),
        )
    except EvalErrored as err:
        _print_errored(err, as_json, quiet)
        if below is None:
            raise
        _report(report_file, {"rev": rev, "error": err.message})
        err_console.print(f"t2s eval {rev}: {err.message}")
        sys.exit(EXIT_ABORT)  # an outage says nothing about the commit: git bisect stops
    except Unevaluable as err:
        if below is None:
            raise
        _report(report_file, {"rev": rev, "skipped": True, "reason": err.message})
        err_console.print(f"t2s eval {rev}: cannot evaluate, skipping: {err.message}")
        sys.exit(EXIT_SKIP)
    except T2SError as err:
        if below is None:
            raise
        _report(report_file, {"rev": rev, "error": err.message})
        err_console.print(f"t2s eval {rev}: {err.message}")
        sys.exit(EXIT_ABORT)
    rec = outcome.record
    _report(
        report_file,
        {
            "rev": rev,
            "commit": outcome.commit,
            "score": rec.score,
            "ran": outcome.ran,
            "cached_from": outcome.source if outcome.cached else None,
            "bad": below is not None and rec.score < below,
        },
    )
    if as_json:
        print_json(
            {
                "commit": outcome.commit,
                "cached": outcome.cached,
                "source": outcome.source,
                "record": rec.model_dump(mode="json"),
            }
        )
    elif quiet:
        how = (
            f"cached from {(outcome.source or '?')[:12]}"
            if outcome.cached
            else f"ran {rec.total} task run(s), {rec.model_calls} model call(s)"
        )
        console.print(
            f"{outcome.commit[:12]} score {rec.score:.3f} ({rec.passed}/{rec.total}) on {rec.suite}/{rec.split}; {how}"
        )
    else:
        _print_table(outcome)
    if below is not None:
        sys.exit(1 if rec.score < below else 0)


def _report(path: Path | None, data: dict) -> None:
    if path is not None:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(data, sort_keys=True) + "\n")


def _print_errored(err, as_json: bool, quiet: bool) -> None:
    """What the errored attempt saw (nothing of it was recorded)."""
    outcome = err.outcome
    rec = outcome.record
    if as_json:
        print_json(
            {
                "commit": outcome.commit,
                "cached": False,
                "stored": False,
                "errored": len(rec.errored_tasks),
                "total": rec.total,
                "errors": [row.model_dump() for row in err.causes],
                "tasks": [
                    {
                        "task": v.task,
                        "seed": v.seed,
                        "verdict": _verdict(v),
                        "score": None if v.errored else v.score,
                        "error": v.error,
                        "cause": v.cause.model_dump() if v.cause else None,
                    }
                    for v in rec.tasks
                ],
            }
        )
    elif not quiet:
        _print_tasks(outcome)
        print_causes(err.causes)


def _verdict(v) -> str:
    return "errored" if v.errored else "passed" if v.passed else "failed"


def _print_tasks(outcome) -> None:
    from rich.table import Table

    rec = outcome.record
    table = Table(title=f"t2s eval {outcome.commit[:12]}: {rec.suite}/{rec.split}")
    for col in ("task", "seed", "verdict", "score", "note"):
        table.add_column(col)
    styles = {"passed": "[green]pass[/]", "failed": "[red]fail[/]", "errored": "[yellow]error[/]"}
    for v in rec.tasks:
        score = "-" if v.errored else f"{v.score:.2f}"
        table.add_row(v.task, str(v.seed), styles[_verdict(v)], score, v.error or v.stop_reason or "")
    console.print(table)


def _print_table(outcome) -> None:
    rec = outcome.record
    _print_tasks(outcome)
    how = (
        f"cached (from {outcome.source[:12]})"
        if outcome.cached
        else f"{rec.duration_s:.1f} s, {rec.tokens} tokens, ${rec.cost_usd:.4f}, {rec.model_calls} model call(s)"
    )
    console.print(
        f"score {rec.score:.3f} ({rec.passed}/{rec.total} passed), skill {rec.skill_tree[:12]}, agent {rec.agent.get('model', '?')}; {how}"
    )
