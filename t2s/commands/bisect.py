"""``t2s bisect``: which commit broke a held-out task?"""

from __future__ import annotations

import sys

import click

from t2s.commands._common import (
    console,
    json_option,
    load_repo_config,
    number_type,
    open_store,
    print_json,
    repo_option,
    setting_type,
)
from t2s.config import GateSection, Score


@click.command()
@click.option("--good", required=True, help="A revision whose skill scores well (e.g. the run's S0).")
@click.option("--bad", required=True, help="A revision whose skill scores worse (e.g. t2s/r1/candidate).")
@click.option("--split", default=None, help="The split (default: [gate] split).")
@click.option(
    "--threshold",
    type=number_type(Score),
    default=None,
    help="A commit is bad when its score is below this (default: the good revision's score).",
)
@click.option(
    "--seeds", type=setting_type(GateSection, "seeds"), default=None, help="Runs per task (default: [gate] seeds)."
)
@click.option("--suite", default=None, help="The configured suite.")
@click.option("--no-cache", is_flag=True, help="Evaluate every step afresh (for measuring; costs model calls).")
@click.option("--first-parent", is_flag=True, help="Follow first parents only (walks releases on main).")
@repo_option
@json_option
def bisect(good, bad, split, threshold, seeds, suite, no_cache, first_parent, repo_dir, as_json):
    """Find the first commit whose held-out score falls below a threshold.

    Runs `git bisect run t2s eval --exit-code-below THRESHOLD` in a private linked
    worktree (your working tree, index, HEAD and any bisect of yours are left alone)
    and cleans it up whatever happens. Evaluations go through the eval cache, so
    commits with an already evaluated skill cost nothing. Reports the first bad
    commit; for a patch branch its lesson, task and trajectory; for a merge its
    merge report. Exit 0 when a commit was found, 1 otherwise.

    \b
    Examples:
      t2s bisect --good main --bad t2s/r1/candidate
      t2s bisect --good v0.1.0 --bad v0.3.0 --first-parent --threshold 0.7
    """
    from t2s.views.bisect import bisect as do_bisect

    store = open_store(repo_dir)
    config = load_repo_config(store)
    result = do_bisect(
        store,
        config,
        good=good,
        bad=bad,
        split=split,
        threshold=threshold,
        seeds=seeds,
        suite=suite,
        use_cache=not no_cache,
        first_parent=first_parent,
    )
    if as_json:
        print_json(result.to_json())
    else:
        _print(result)
    sys.exit(0 if result.first_bad else 1)


def _print(result) -> None:
    for step in result.endpoints:
        console.print(
            f"{step['label']:>4} {step['commit'][:12]} score {step['score']:.3f}" + ("" if step["ran"] else " (cached)")
        )
    for step in result.steps:
        if step.get("skipped"):
            console.print(f"step {step['rev'][:12]}: skipped ({step.get('reason', '')})")
        elif step.get("error"):  # e.g. the model endpoint failed: git bisect stopped, nothing blamed
            console.print(f"step {step['rev'][:12]}: error: {step['error']}")
        elif "score" in step:
            console.print(
                f"step {step['commit'][:12]} score {step['score']:.3f} -> {'bad' if step.get('bad') else 'good'}"
                + ("" if step.get("ran") else " (cached)")
            )
    console.print(
        f"{len(result.steps)} bisect step(s), {result.evaluations} agent evaluation(s); threshold {result.threshold:.3f}"
    )
    if not result.first_bad:
        console.print("[red]bisect could not name a first bad commit[/]")
        console.print(result.log)
        return
    console.print(f"[bold]first bad commit: {result.first_bad[:12]}[/] ({result.kind}) {result.subject}")
    for b in result.branches:
        console.print(f"  branch: {b}")
    d = result.details
    if result.kind == "patch":
        for key in ("patch", "task", "trajectory", "trajectory_path", "outcome"):
            if d.get(key):
                console.print(f"  {key}: {d[key]}")
        for lesson in d.get("lessons") or []:
            console.print(f"  lesson: {lesson}")
    elif result.kind == "merge":
        console.print(f"  parents: {', '.join(p[:12] for p in d.get('parents', []))}")
        if d.get("merge_report") is not None:
            import json

            console.print("  merge report: " + json.dumps(d["merge_report"], indent=2)[:2000])
