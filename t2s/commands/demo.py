"""``t2s demo``: the whole loop offline, in a fresh directory, in about a minute."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to work (default: a new temporary directory).")
def demo(directory):
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
    from t2s.commands._common import console
    from t2s.demo import run_demo

    run_demo(directory, console)
