"""``t2s eval``: evaluate the skill at a revision on a split and note the result."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

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
from t2s.commands._estimates import dry_run_option, print_estimate
from t2s.commands._scale import executor_options, shard_option
from t2s.config import Count, GateSection, Score
from t2s.errors import T2SError, UsageError

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
@click.option(
    "--repeat",
    type=number_type(Count),
    default=None,
    metavar="N",
    help="The noise floor: evaluate N (>= 2) times with no eval or response cache and report run-to-run agreement.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print one line instead of the table.")
@click.option(
    "--limit",
    type=number_type(Count),
    default=None,
    help="A quick look: only the first N tasks of the split (never cached or noted).",
)
@click.option(
    "--task",
    "task_ids",
    multiple=True,
    metavar="ID",
    help="A quick look: only this task (repeatable; never cached or noted).",
)
@unsafe_sandbox_option
@dry_run_option
@shard_option
@executor_options
@repo_option
@json_option
def eval_(
    rev,
    split,
    seeds,
    suite,
    no_cache,
    below,
    report_file,
    repeat,
    quiet,
    limit,
    task_ids,
    unsafe_no_sandbox,
    shard,
    executor,
    ray_address,
    repo_dir,
    as_json,
    dry_run=False,
):
    """Evaluate the skill at REV (default HEAD) and attach the result as a git note.

    The skill folder at REV is materialised with `git archive` (nothing is checked
    out), the agent runs every task of the split, and the per-task verdicts, score,
    tokens, cost and duration go into the note on REV in refs/notes/t2s/eval. A
    result is reused, without any model call, for any commit with the same skill
    subtree, suite hash and agent settings; --no-cache forces a run.

    --limit N and --task ID run only part of the split for a quick look: such a
    result is neither read from nor written to the notes, so no cache hit, gate or
    release can mistake it for the whole split.

    If any task errored (the model endpoint was down, answered garbage, timed out...)
    nothing is recorded: the tasks and the causes are printed and the exit status is 3.
    A second eval of the same skill waits for one already running, then reuses it.

    \b
    Examples:
      t2s eval t2s/r1/candidate --split heldout
      t2s eval v0.2.0 --seeds 3 --json
      t2s eval HEAD --repeat 2        # the noise floor: how much do two runs disagree?
      t2s eval HEAD --dry-run         # the expected cost, nothing spent
      t2s eval HEAD --limit 3         # a quick look, not recorded
      t2s eval t2s/r1/candidate --shard 3/8     # one of 8 jobs; t2s gate collects them
      t2s eval HEAD --executor ray              # every episode a Ray task
      git notes --ref t2s/eval show HEAD       # the stored result
      git bisect run t2s eval --exit-code-below 0.6   # (t2s bisect does this for you)
    """
    import t2s
    from t2s.commands.progress import eval_bar
    from t2s.evaluation.evaluate import EvalErrored, Unevaluable

    if dry_run:
        revs = [rev] * max(1, repeat or 1)
        estimate = t2s.estimate(
            open_repo(repo_dir),
            "eval",
            revs,
            split=split,
            seeds=seeds,
            suite=suite,
            cache=not no_cache and not repeat,
            shard=shard,
        )
        print_estimate(estimate, as_json, "eval")
        return
    if repeat is not None and repeat > 1:
        _noise_floor(rev, split, seeds, suite, repeat, unsafe_no_sandbox, repo_dir, as_json, quiet)
        return
    if (limit or task_ids) and below is not None:
        raise UsageError("--exit-code-below judges the whole split: leave out --limit and --task")
    progress = None if as_json or quiet else eval_bar()
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
            tasks=list(task_ids) or None,
            limit=limit,
            progress=progress,
            shard=shard,
            executor=executor,
            ray_address=ray_address,
        )
    except EvalErrored as err:
        if progress:
            progress.stop()
        _print_errored(err, as_json, quiet)
        if below is None:
            raise
        _report(report_file, {"rev": rev, "error": err.message})
        err_console.print(f"t2s eval {rev}: {err.message}", markup=False)
        sys.exit(EXIT_ABORT)  # an outage says nothing about the commit: git bisect stops
    except Unevaluable as err:
        if progress:
            progress.stop()
        if below is None:
            raise
        _report(report_file, {"rev": rev, "skipped": True, "reason": err.message})
        err_console.print(f"t2s eval {rev}: cannot evaluate, skipping: {err.message}", markup=False)
        sys.exit(EXIT_SKIP)
    except T2SError as err:
        if progress:
            progress.stop()
        if below is None:
            raise
        _report(report_file, {"rev": rev, "error": err.message})
        err_console.print(f"t2s eval {rev}: {err.message}", markup=False)
        sys.exit(EXIT_ABORT)
    if progress:
        progress.stop()
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
                "subset": outcome.subset or None,
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
    if outcome.subset and not as_json:
        err_console.print(f"quick look at {outcome.subset} of the split: not cached, not noted", markup=False)
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
        table.add_row(escape(v.task), str(v.seed), styles[_verdict(v)], score, escape(v.error or v.stop_reason or ""))
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


def _noise_floor(rev, split, seeds, suite, repeat, unsafe_no_sandbox, repo_dir, as_json, quiet) -> None:
    import t2s

    floor = t2s.noise_floor(
        open_repo(repo_dir),
        rev,
        repeat=repeat,
        split=split,
        seeds=seeds,
        suite=suite,
        unsafe_no_sandbox=unsafe_no_sandbox,
        on_wait=lambda msg: err_console.print(msg + " ...", markup=False),
    )
    if as_json:
        print_json(floor.to_json())
        return
    for outcome in [] if quiet else floor.outcomes:
        _print_tasks(outcome)
    if floor.unstable:
        console.print("changed verdict between runs: " + ", ".join(floor.unstable), markup=False)
    console.print(floor.sentence(), markup=False)
