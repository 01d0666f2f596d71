"""``t2s init``: create a skill repository (or add a skill to an existing one)."""

from __future__ import annotations

from pathlib import Path

import click

from t2s.commands._common import console, json_option, print_json
from t2s.skillrepo import init_skill_repo


@click.command()
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", help="Start from an existing skill: a folder, or a name from skill-repos/ (e.g. xlsx).")
@click.option("--name", help="Start an empty skill with this name (a-z, 0-9, hyphens).")
@click.option("--description", help="With --name: what the skill is for and when to use it.")
@click.option("--force", is_flag=True, help="Replace an existing skill of the same name.")
@click.option("--no-hooks", is_flag=True, help="Do not install the git hooks.")
@json_option
def init(directory, seed, name, description, force, no_hooks, as_json):
    """Create a skill repository in DIRECTORY (default: here) and commit the skill.

    Places the skill at skills/<name>/, writes a documented t2s.toml and
    .github/workflows/t2s.yml, installs the pre-commit (lint) and pre-push (release
    check) hooks, and makes one commit. An existing repository is extended, never
    rewritten: only the files t2s adds are committed.

    \b
    Examples:
      t2s init my-skills --seed skill-repos/xlsx
      t2s init my-skills --seed xlsx                  # a seed bundled with t2s
      t2s init . --name csv-cleaning --description "Clean CSV files with pandas. Use when ..."
    """
    result = init_skill_repo(
        directory, seed=seed, name=name, description=description, force=force, install_git_hooks=not no_hooks
    )
    if as_json:
        print_json(result.__dict__)
        return
    verb = "Created" if result.created_repo else "Updated"
    console.print(f"{verb} skill repository [bold]{result.repo}[/bold]")
    console.print(f"  skill   {result.skill_dir}/")
    console.print(f"  commit  {result.commit[:12]}  ({len(result.files)} files)")
    if result.hooks:
        console.print(f"  hooks   {', '.join(result.hooks)}")
    console.print(f"Next: edit t2s.toml (\\[models.*], \\[suites.*]), then `t2s lint -C {directory}`")
