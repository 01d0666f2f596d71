"""``t2s init``: create a skill repository (or add a skill to an existing one)."""

from __future__ import annotations

from pathlib import Path

import click

from t2s.commands._common import console, json_option, print_json
from t2s.commands.models import model_options
from t2s.skill.repo import init_skill_repo


@click.command()
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", help="Start from an existing skill: a folder, or a name from skill-repos/ (e.g. xlsx).")
@click.option("--name", help="Start an empty skill with this name (a-z, 0-9, hyphens).")
@click.option("--description", help="With --name: what the skill is for and when to use it.")
@click.option("--force", is_flag=True, help="Replace an existing skill of the same name.")
@click.option("--no-hooks", is_flag=True, help="Do not install the git hooks.")
@click.option(
    "--suite",
    "suite_type",
    metavar="TYPE",
    help="Configure a task suite of this type in t2s.toml (see `t2s suites`), with --suite-path.",
)
@click.option(
    "--suite-path",
    type=click.Path(file_okay=False, path_type=Path),
    help="With --suite: the suite's data directory (stored relative to t2s.toml).",
)
@click.option(
    "--create",
    is_flag=True,
    help="With --name and --description: let the analyst model draft the skill from its own "
    "knowledge (linted before commit) instead of starting empty.",
)
@model_options
@json_option
def init(
    directory,
    seed,
    name,
    description,
    force,
    no_hooks,
    suite_type,
    suite_path,
    create,
    flag_model,
    flag_base_url,
    flag_api_key_env,
    model_sets,
    as_json,
):
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
      t2s init my-skills --create --name xlsx --description "Edit Excel workbooks. Use when ..."
      t2s init my-skills --seed table-qa --suite wikitablequestions \\
          --suite-path ../shared/benchmarks/wikitablequestions
    """
    from t2s.commands.models import overrides_from_flags
    from t2s.errors import UsageError

    if (suite_type is None) != (suite_path is None):
        raise UsageError("--suite and --suite-path go together")
    overrides_from_flags(flag_model, flag_base_url, flag_api_key_env, model_sets)  # a malformed --set fails here
    if not create and (flag_model or flag_base_url or flag_api_key_env or model_sets):
        raise UsageError(
            "--model, --base-url, --api-key-env and --set only apply with --create",
            hint="set the models of the new repository in its t2s.toml ([models.*])",
        )
    files = None
    if create:
        files = _draft_skill(
            directory, seed, name, description, flag_model, flag_base_url, flag_api_key_env, model_sets
        )
    result = init_skill_repo(
        directory,
        seed=seed,
        name=name,
        description=description,
        force=force,
        install_git_hooks=not no_hooks,
        files=files,
        suite=(suite_type, str(suite_path)) if suite_type else None,
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


def _draft_skill(directory, seed, name, description, flag_model, flag_base_url, flag_api_key_env, model_sets):
    """The skill files the analyst model drafts for ``--create`` (linted; see t2s.analysis.analysts)."""
    from t2s.analysis.analysts import create_skill_files
    from t2s.commands.models import load_config_for, overrides_from_flags
    from t2s.errors import UsageError
    from t2s.llm.client import LLM
    from t2s.skill.format import NAME_RE

    if seed or not name or not description:
        raise UsageError("--create needs --name and --description (and no --seed)")
    if not NAME_RE.match(name) or len(name) > 64:
        raise UsageError(f"skill name {name!r} must be 1-64 characters of a-z, 0-9 and single hyphens")
    from t2s.config import Config

    config = load_config_for(Path(directory)) if Path(directory).exists() else Config()
    llm = LLM(
        config,
        overrides=overrides_from_flags(flag_model, flag_base_url, flag_api_key_env, model_sets),
        cache_mode="off",
        phase="init",
    )
    try:
        return create_skill_files(llm, name, description)
    finally:
        llm.close()
