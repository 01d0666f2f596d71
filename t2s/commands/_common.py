"""Small helpers shared by the CLI verbs: output, repository and config discovery."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Iterator

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


unsafe_sandbox_option = click.option(
    "--unsafe-no-sandbox", "unsafe_no_sandbox", is_flag=True, default=None, envvar="T2S_UNSAFE_NO_SANDBOX",
    help="Where no sandbox can be had (see `t2s doctor`), run model-written code anyway, as your "
         "user with your files and network: dangerous. Ignored where the sandbox works.",
)


def sandbox_preflight(unsafe_no_sandbox: bool | None) -> str | None:
    """Before a command runs model code: clean what killed runs left, check the sandbox
    (a clear error when there is none and the flag is not given), and warn loudly on
    stderr when the code will run unsandboxed. Returns that warning (to record) or None."""
    from t2s.sandbox import preflight

    warning = preflight(unsafe_no_sandbox)
    if warning:
        err_console.print(f"[bold red]{warning}[/bold red]")
    return warning


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


class CountingProgress:
    """A rich progress bar on stderr (stdout stays clean for --json) that counts
    finished items by outcome, e.g. passed / failed / errored.

    ``outcome`` maps a finished item to its outcome name; ``styles`` gives each
    counted outcome its colour, in display order.
    """

    def __init__(self, label: str, styles: dict[str, str], outcome):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn(f"[bold]{label}[/bold]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.description}"), TimeElapsedColumn(),
            console=err_console, transient=False, disable=not err_console.is_terminal,
        )
        self.styles = styles
        self.outcome = outcome
        self.counts = {name: 0 for name in styles}
        self.task = None

    def _describe(self) -> str:
        return " ".join(f"[{style}]{self.counts[name]} {name}[/]" for name, style in self.styles.items())

    def start(self, total: int, already_done: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task(self._describe(), total=total, completed=already_done)

    def done(self, item) -> None:
        name = self.outcome(item)
        self.counts[name] = self.counts.get(name, 0) + 1
        self.bar.update(self.task, advance=1, description=self._describe())

    def stop(self) -> None:
        self.bar.stop()


@contextlib.contextmanager
def resumable_stage(progress: "CountingProgress | None", run: str, what: str, llm) -> Iterator[None]:
    """Run one stage of a run: Ctrl-C leaves finished work in the record and says how to
    resume; the progress bar and the model client are always closed."""
    try:
        yield
    except KeyboardInterrupt:
        if progress:
            progress.stop()
        err_console.print(f"Interrupted. Finished {what} are kept in refs/t2s/runs/{run}; "
                          "run the same command again to resume.")
        sys.exit(130)
    finally:
        llm.close()
    if progress:
        progress.stop()


def print_row_table(title: str, rows: list[tuple[str, str]]) -> None:
    """One summary row under named columns (the end-of-stage tables)."""
    from rich.table import Table

    table = Table(title=title)
    for name, _ in rows:
        table.add_column(name, justify="right")
    table.add_row(*(value for _, value in rows))
    console.print(table)


def stopped_by_budget(summary, what: str) -> None:
    """Exit 1 with how to finish, when a budget cap stopped the stage early."""
    if summary.stopped:
        err_console.print(f"[yellow]Stopped:[/yellow] {summary.stopped}. "
                          f"Run the same command again to finish the remaining {summary.remaining} {what}.")
        sys.exit(1)
