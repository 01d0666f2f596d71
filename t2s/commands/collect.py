"""``t2s collect``: join the shards of a run's stages or of an evaluation."""

from __future__ import annotations

import click

from t2s.commands._common import console, json_option, open_repo, print_json, repo_option, setting_type
from t2s.config import GateSection


@click.command()
@click.option("--run", "run_name", default=None, help="Collect every sharded stage of this run into its run record.")
@click.option("--eval", "eval_rev", default=None, metavar="REV", help="Collect the sharded evaluation of REV.")
@click.option("--split", default=None, help="The evaluation's split (default: [gate] split, usually 'heldout').")
@click.option(
    "--seeds",
    type=setting_type(GateSection, "seeds"),
    default=None,
    help="The evaluation's seeds (default: [gate] seeds).",
)
@click.option("--suite", default=None, help="The evaluation's suite (default: [rollout] suite).")
@json_option
@repo_option
def collect(run_name, eval_rev, split, seeds, suite, as_json, repo_dir):
    """Join shards (`--shard K/N` runs) into what one unsharded run writes.

    Checks that every shard is there, finished, and agrees with the others (S0, suite,
    split, agent settings, t2s version); refuses a mix, naming the odd shard; names the
    missing shards and the commands that run just those. Collecting again changes
    nothing. The next stage (analyze, merge, eval, gate) collects by itself; a gate
    never judges a partial evaluation.

    \b
    Examples:
      git fetch origin 'refs/t2s/*:refs/t2s/*' 'refs/heads/t2s/*:refs/heads/t2s/*'
      t2s collect --run r1
      git fetch origin 'refs/notes/*:refs/notes/*'
      t2s collect --eval t2s/r1/candidate --split heldout --json
    """
    import t2s

    summary = t2s.collect(open_repo(repo_dir), run_name, eval_rev=eval_rev, split=split, seeds=seeds, suite=suite)
    if as_json:
        print_json(summary.to_dict())
        return
    for stage in summary.stages:
        done = f"collected {stage.files} file(s)" if stage.collected else stage.note or "nothing to do"
        console.print(f"run {stage.run} {stage.stage}: {stage.shards} shard(s), {done}")
    if summary.evaluation is not None:
        joined = summary.evaluation
        rec = joined.record
        what = "noted" if joined.written else "already noted"
        if rec is not None:
            console.print(
                f"evaluation of {joined.commit[:12]} on {rec.suite}/{rec.split}: {joined.shards} shard(s), "
                f"score {rec.score:.3f} ({rec.passed}/{rec.total}), {what}"
            )
