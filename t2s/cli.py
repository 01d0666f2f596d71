"""The ``t2s`` command line: a thin click layer over the library.

Each verb lives in its own module under ``t2s.commands`` and is imported only when it
is used, so ``t2s --help`` stays fast and one broken optional dependency cannot take
every command down. To add a verb, write ``t2s/commands/<verb>.py`` with a click
command and add one line to ``COMMANDS``.
"""

from __future__ import annotations

import importlib
import sys

import click

from t2s import __version__
from t2s.errors import T2SError

# verb -> "module:attribute"; the order here is the order of `t2s --help`.
COMMANDS: dict[str, str] = {
    "init": "t2s.commands.init:init",
    "lint": "t2s.commands.lint:lint",
    "models": "t2s.commands.models:models",
    "doctor": "t2s.commands.doctor:doctor",
    "rollout": "t2s.commands.rollout:rollout",
    "import": "t2s.commands.import_:import_cmd",
    "trajectories": "t2s.commands.trajectories:trajectories",
    "analyze": "t2s.commands.analyze:analyze",
    "check": "t2s.commands.check:check",
    "suites": "t2s.commands.suites:suites",
    "merge": "t2s.commands.merge:merge",
    "select": "t2s.commands.select:select",
    "evolve": "t2s.commands.evolve:evolve",
    "blame": "t2s.commands.blame:blame",
    "review": "t2s.commands.review:review",
    "show": "t2s.commands.show:show",
    "approve": "t2s.commands.approve:approve",
    "reject": "t2s.commands.reject:reject",
    "pr-body": "t2s.commands.pr_body:pr_body",
    "report": "t2s.commands.report:report",
    "eval": "t2s.commands.eval_:eval_",
    "collect": "t2s.commands.collect:collect",
    "gate": "t2s.commands.gate:gate",
    "release": "t2s.commands.release:release",
    "pack": "t2s.commands.pack:pack",
    "install": "t2s.commands.install:install",
    "push": "t2s.commands.push:push",
    "bisect": "t2s.commands.bisect:bisect",
    "log": "t2s.commands.log:log",
    "demo": "t2s.commands.demo:demo",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when the command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except T2SError as err:
            report_error(err)
            sys.exit(err.exit_code)


def report_error(err: T2SError) -> None:
    """Print a user error as one clear message (plus its hint), never a traceback."""
    click.secho(f"Error: {err.message}", fg="red", err=True)
    if err.hint:
        click.echo(f"Hint: {err.hint}", err=True)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="t2s")
def main() -> None:
    """t2s turns agent trajectories into better Agent Skills, in git.

    \b
    Typical loop:
      t2s init my-skills --seed skill-repos/xlsx
      t2s rollout --split evolve --run r1     # agent + skill on tasks
      t2s analyze --run r1                    # one patch branch per trajectory
      t2s merge --run r1                      # octopus merges -> candidate
      t2s gate t2s/r1/candidate               # held-out evaluation
      t2s release t2s/r1/candidate            # merge into main, tag vX.Y.Z

    Run `t2s COMMAND --help` for a command's options and examples.
    """
