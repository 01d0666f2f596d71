"""``t2s install``: put a released skill where agents look for skills."""

from __future__ import annotations

from pathlib import Path

import click

from t2s.commands._common import console, json_option, print_json


@click.command()
@click.argument("source")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The skills folder to install into (the skill goes to DEST/<name>).",
)
@click.option("--agents", is_flag=True, help="Install into .agents/skills/ instead of .claude/skills/.")
@click.option("--force", is_flag=True, help="Replace an installed skill that came from elsewhere.")
@json_option
def install(source, dest, agents, force, as_json):
    """Install the skill from SOURCE[@TAG]: a git URL or path, or a packed zip.

    Without @TAG the latest vX.Y.Z tag is installed (HEAD if there is none). The
    skill goes into .claude/skills/<name> (or .agents/skills/<name>, or DEST/<name>)
    under the current directory; SKILL.md records metadata.source and
    metadata.version. Reinstalling from the same source updates it; a skill from
    another source is replaced only with --force.

    \b
    Examples:
      t2s install https://github.com/me/my-skills.git@v0.2.0
      t2s install ../my-skills --agents
      t2s install dist/xlsx-0.2.0.zip --dest ~/.claude/skills
    """
    from t2s.releases.install import install as do_install

    result = do_install(source, dest=dest, agents=agents, force=force)
    if as_json:
        print_json(result.to_json())
        return
    verb = "updated" if result.replaced else "installed"
    console.print(f"{verb} {result.name} {result.version} from {result.source} into {result.dest}")
