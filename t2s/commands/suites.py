"""``t2s suites``: the suite types t2s knows and the suites ``t2s.toml`` configures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from t2s.commands._common import json_option, print_json, repo_option
from t2s.errors import T2SError


def configured_suites(config, base_dir: Path | None) -> list[dict[str, Any]]:
    """One entry per ``[suites.<name>]``: its type and path, and once loaded (splits
    checked for overlap) its task count, splits with sizes and content hash per split;
    ``error`` when it does not load."""
    from t2s.tasks import load_suite

    out = []
    for name, section in config.suites.items():
        entry: dict[str, Any] = {
            "name": name,
            "type": section.type,
            "path": section.path,
            "root": None,
            "tasks": None,
            "splits": {},
            "error": None,
        }
        try:
            suite = load_suite(name, config, base_dir=base_dir or Path.cwd())
            entry["root"] = str(suite.root)
            entry["tasks"] = len(suite.task_ids())
            entry["splits"] = {
                split: {"size": len(ids), "hash": suite.content_hash(split)} for split, ids in suite.splits().items()
            }
        except T2SError as err:
            entry["error"] = err.message
        out.append(entry)
    return out


@click.command("suites")
@repo_option
@json_option
def suites(repo_dir: Path | None, as_json: bool) -> None:
    """List the available suite types and the suites configured in t2s.toml.

    Suite types are built in (spreadsheetbench, wikitablequestions) or come from other
    packages through the `t2s.suites` entry point group. Each configured suite is
    loaded: its splits with their sizes and content hashes are shown, or why it does
    not load (e.g. evolve and held-out splits that share tasks or tables). Exit 1 when
    a configured suite does not load.

    \b
    Examples:
      t2s suites
      t2s suites -C my-skills --json
    """
    from t2s.tasks import find_config, suite_type_info

    config, config_dir = find_config(repo_dir or Path.cwd())
    types = suite_type_info()
    configured = configured_suites(config, config_dir)
    if as_json:
        print_json(
            {"types": types, "config": str(config_dir / "t2s.toml") if config_dir else None, "suites": configured}
        )
    else:
        click.echo("Suite types:")
        width = max(len(t["type"]) for t in types)
        for info in types:
            click.echo(f"  {info['type']:<{width}}  {info['class']}  ({info['source']})")
        click.echo("")
        if config_dir is None:
            click.echo("No t2s.toml here or above: no configured suites.")
        elif not configured:
            click.echo(f"No suites configured in {config_dir / 't2s.toml'} ([suites.NAME]).")
        else:
            click.echo(f"Suites in {config_dir / 't2s.toml'}:")
            for entry in configured:
                head = f"  {entry['name']}  type {entry['type']}  path {entry['path']}"
                if entry["error"]:
                    click.echo(head)
                    click.secho(f"    error: {entry['error']}", fg="red")
                    continue
                click.echo(f"{head}  ({entry['tasks']} tasks)")
                if not entry["splits"]:
                    click.echo("    (no splits)")
                split_width = max((len(k) for k in entry["splits"]), default=0)
                for split, info in entry["splits"].items():
                    click.echo(f"    {split:<{split_width}}  {info['size']:>5} tasks  content hash {info['hash'][:12]}")
    if any(entry["error"] for entry in configured):
        sys.exit(1)
