"""``t2s demo``: the whole loop offline, in a fresh directory, in about a minute."""

from __future__ import annotations

from pathlib import Path

import click

from t2s.commands._common import sandbox_preflight, unsafe_sandbox_option


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to work (default: a new temporary directory).",
)
@unsafe_sandbox_option
def demo(directory, unsafe_no_sandbox):
    """Run init, rollout, analyze, merge, gate, release, pack and report offline.

    The models are scripted responders on a local OpenAI-compatible server (a
    simulated agent whose mistakes depend on the skill text, simulated analysts and
    merger): the demo shows the workflow, not a model's learning. Everything else is
    real: git objects, sandboxed code, the checker, the evaluation and the release.

    \b
    Examples:
      t2s demo
      t2s demo --dir /tmp/t2s-demo
    """
    import os

    from t2s.commands._common import console
    from t2s.demo import run_demo

    if sandbox_preflight(unsafe_no_sandbox):  # no sandbox here, and running without one was allowed
        os.environ["T2S_UNSAFE_NO_SANDBOX"] = "1"  # for the commands the demo runs in-process
    run_demo(directory, console)
