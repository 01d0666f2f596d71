"""Options shared by the commands that scale out: ``--shard`` (and the executors)."""

from __future__ import annotations

import click

#: t2s.agent.executor.EXECUTORS, spelled here: importing it would load the model client for `t2s --help`
EXECUTORS = ("local", "ray")

shard_option = click.option(
    "--shard",
    default=None,
    metavar="K/N|auto",
    help="Run only shard K of N (a stable hash of the task or trajectory id) into refs of its own; "
    "'auto' reads T2S_SHARD, a Kubernetes Indexed Job or a SLURM array (docs/scale.md). "
    "`t2s collect` or the next stage joins the shards.",
)


def executor_options(command):
    """``--executor local|ray`` and ``--ray-address``."""
    command = click.option(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="The Ray cluster to join (host:port or ray://...; default: $RAY_ADDRESS, else a local one).",
    )(command)
    return click.option(
        "--executor",
        type=click.Choice(EXECUTORS),
        default="local",
        show_default=True,
        help="Where episodes (or analyses) run: in this process, or each as a Ray task (pip install 't2s[ray]'); "
        "only this process writes git.",
    )(command)
