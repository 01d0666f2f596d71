"""Small helpers shared by the CLI verbs: output, repository and config discovery,
and the parameter types that check numbers by the rules of :mod:`t2s.config`."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from t2s.errors import UsageError
from t2s.record import refs

if TYPE_CHECKING:  # pydantic and rich load on use, for start-up time
    from pydantic import BaseModel
    from rich.progress import TaskID

#: Human output goes to stdout through rich; errors go to stderr.
console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False)

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")

repo_option = click.option(
    "-C",
    "--repo",
    "repo_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The skill repository (default: the one containing the current directory).",
)


unsafe_sandbox_option = click.option(
    "--unsafe-no-sandbox",
    "unsafe_no_sandbox",
    is_flag=True,
    default=None,
    envvar="T2S_UNSAFE_NO_SANDBOX",
    help="Where no sandbox can be had (see `t2s doctor`), run model-written code anyway, as your "
    "user with your files and network: dangerous. Ignored where the sandbox works.",
)


def sandbox_preflight(unsafe_no_sandbox: bool | None) -> str | None:
    """Before a command runs model code: clean what killed runs left, check the sandbox
    (a clear error when there is none and the flag is not given), and warn loudly on
    stderr when the code will run unsandboxed. Returns that warning (to record) or None."""
    from t2s.sandbox.run import preflight

    warning = preflight(unsafe_no_sandbox)
    if warning:
        err_console.print(f"[bold red]{warning}[/bold red]")
    return warning


class Bounded(click.ParamType):
    """A number checked by a pydantic rule of :mod:`t2s.config`, so a flag and the
    ``t2s.toml`` setting it overrides accept exactly the same values (NaN and
    infinity never pass). Build one with :func:`setting_type` or :func:`number_type`."""

    def __init__(self, annotation: Any, what: str):
        from pydantic import TypeAdapter

        self.adapter = TypeAdapter(annotation)
        self.name = what

    def convert(self, value: Any, param, ctx):
        from pydantic import ValidationError

        from t2s.config import rule_message

        try:
            return self.adapter.validate_python(value.strip() if isinstance(value, str) else value)
        except ValidationError as err:
            self.fail(f"{rule_message(err.errors()[0])} (got {value!r})", param, ctx)


def setting_type(section: type[BaseModel], field: str) -> Bounded:
    """The type of a flag that overrides ``field`` of a :mod:`t2s.config` section."""
    from typing import Annotated

    info = section.model_fields[field]
    if not info.metadata:
        return Bounded(info.annotation, _kind(info.annotation))
    return Bounded(Annotated[(info.annotation, *info.metadata)], _kind(info.annotation))


def number_type(annotation: Any) -> Bounded:
    """The type of a flag with no setting behind it, e.g. ``number_type(Count)``."""
    from typing import get_args

    base = (get_args(annotation) or (annotation,))[0]
    return Bounded(annotation, _kind(base))


def _kind(annotation: Any) -> str:
    from typing import get_args

    base = (get_args(annotation) or (annotation,))[0]
    return "integer" if base is int else "float"


@contextlib.contextmanager
def appending(path: Path, flag: str) -> Iterator[Any]:
    """``path`` opened for appending *before* any work, so a bad path fails first and
    nothing is written anywhere; a file this created is removed again if the block
    fails."""
    existed = path.exists()
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory")
    try:
        handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by the `with` below; only open() fails as UsageError
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot write: {err.strerror or err}") from None
    ok = False
    try:
        with handle:
            yield handle
        ok = True
    finally:
        if not ok and not existed:
            path.unlink(missing_ok=True)


def write_output(path: Path, text: str, flag: str) -> None:
    """Write a command's output file, or a :class:`UsageError` saying why it cannot be
    written (a missing folder, a directory in the way, no permission)."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"{flag} {path}: cannot write: {err.strerror or err}") from None


def print_json(data: Any) -> None:
    """Write JSON to stdout, deterministic key order, one trailing newline."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def open_store(repo_dir: Path | None):
    """The GitStore of ``repo_dir`` or of the repository around the current directory."""
    from t2s.gitstore.store import GitStore

    start = repo_dir or Path.cwd()
    if repo_dir is not None and not repo_dir.exists():
        raise UsageError(f"{repo_dir}: no such directory")
    return GitStore.discover(start)


def open_repo(repo_dir: Path | None):
    """The skill repository of ``repo_dir`` or around the current directory, as the
    library opens it (:func:`t2s.api.open_repo`)."""
    from t2s.api import open_repo as library_open  # lazy: the CLI imports a command's needs only

    return library_open(repo_dir or Path.cwd())


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
            TextColumn(f"[bold]{label}[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
            disable=not err_console.is_terminal,
        )
        self.styles = styles
        self.outcome = outcome
        self.counts = {name: 0 for name in styles}
        self.task: TaskID | None = None

    def _describe(self) -> str:
        return " ".join(f"[{style}]{self.counts[name]} {name}[/]" for name, style in self.styles.items())

    def start(self, total: int, already_done: int) -> None:
        self.bar.start()
        self.task = self.bar.add_task(self._describe(), total=total, completed=already_done)

    def done(self, item) -> None:
        name = self.outcome(item)
        self.counts[name] = self.counts.get(name, 0) + 1
        assert self.task is not None, "start() comes first"
        self.bar.update(self.task, advance=1, description=self._describe())

    def stop(self) -> None:
        self.bar.stop()


@contextlib.contextmanager
def resumable_stage(progress: CountingProgress | None, run: str, what: str) -> Iterator[None]:
    """Run one stage of a run: Ctrl-C leaves finished work in the record and says how to
    resume; the progress bar is always closed."""
    try:
        yield
    except KeyboardInterrupt:
        if progress:
            progress.stop()
        err_console.print(
            f"Interrupted. Finished {what} are kept in {refs.run_record(run)}; run the same command again to resume."
        )
        sys.exit(130)
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


def print_causes(rows) -> None:
    """The causes of errored work (:func:`t2s.faults.tally` rows): one table row each."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="errored: causes")
    for name in ("cause", "count", "where", "first seen"):
        table.add_column(name, overflow="fold")
    for row in rows:
        where = f"{row.role} model at {row.endpoint}" if row.role else "-"
        table.add_row(row.kind, str(row.count), escape(where), escape(row.detail or row.message))
    console.print(table)


def stopped_by_budget(summary, what: str) -> None:
    """Exit 1 with how to finish, when a budget cap stopped the stage early."""
    if summary.stopped:
        err_console.print(
            f"[yellow]Stopped:[/yellow] {summary.stopped}. "
            f"Run the same command again to finish the remaining {summary.remaining} {what}."
        )
        sys.exit(1)


def end_stage(summary, what: str, as_json: bool) -> None:
    """The end of ``rollout``/``analyze``: the causes of errored work (a table, unless
    --json, whose output carries them as ``errors``) and exit 3
    (:class:`t2s.faults.WorkErrored`); else exit 1 if a budget cap stopped the stage."""
    errored = summary.errored_work()
    if errored is not None:
        if not as_json:
            print_causes(errored.causes)
        if summary.stopped:
            err_console.print(f"[yellow]Stopped:[/yellow] {summary.stopped}; {summary.remaining} {what} not run.")
        raise errored
    stopped_by_budget(summary, what)
