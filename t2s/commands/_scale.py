"""Options shared by the commands that scale out: ``--shard`` (and the executors)."""

from __future__ import annotations

import click

shard_option = click.option(
    "--shard",
    default=None,
    metavar="K/N|auto",
    help="Run only shard K of N (a stable hash of the task or trajectory id) into refs of its own; "
    "'auto' reads T2S_SHARD, a Kubernetes Indexed Job or a SLURM array (docs/scale.md). "
    "`t2s collect` or the next stage joins the shards.",
)
