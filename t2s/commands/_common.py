"""Small helpers shared by the CLI verbs: output, repository and config discovery."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from t2s.errors import UsageError

#: Human output goes to stdout through rich; errors go to stderr.
console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False)

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables."
)

repo_option = click.option(
    "-C",
    "--repo",
    "repo_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The skill repository (default: the one containing the current directory).",
)


def print_json(data: Any) -> None:
    """Write JSON to stdout, deterministic key order, one trailing newline."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def open_store(repo_dir: Path | None):
    """The GitStore of ``repo_dir`` or of the repository around the current directory."""
    from t2s.gitstore import GitStore

    start = repo_dir or Path.cwd()
    if repo_dir is not None and not repo_dir.exists():
        raise UsageError(f"{repo_dir}: no such directory")
    return GitStore.discover(start)


def load_repo_config(store):
    """The ``t2s.toml`` of a skill repository (defaults where the file is silent)."""
    from t2s.config import load_config

    return load_config(store.root / "t2s.toml")
