"""The live progress bar of a long stage (rollout, analyze, eval, gate) on stderr.

A stage reports into a :class:`t2s.record.runs.StageProgress`: ``start(total,
already_done)`` once per batch of work (gate starts two: baseline, candidate),
``begin(label)`` when an item starts and ``done(item, label)`` when it ends. Any
executor (threads, asyncio, Ray workers feeding back to the driver) can call these;
they only touch the bar's state under a lock. :class:`StageBar` draws done/total,
the counts by outcome, what runs now, the elapsed time and an ETA.

The bar is drawn only on an interactive terminal: never with ``--json`` (the CLI
passes no reporter), never when stderr is a file or a pipe, and never under ``CI``
(CI logs would fill with redraws).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

from t2s.commands._common import err_console

if TYPE_CHECKING:  # rich.progress loads when a bar is made, for start-up time
    from rich.progress import Progress, TaskID

#: How many running items the bar names before it says "+N more".
SHOWN_RUNNING = 2


def interactive(console: Console) -> bool:
    """True when a live bar helps: an interactive terminal, not a CI log."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        return False
    return console.is_terminal and not console.is_dumb_terminal


class StageBar:
    """A rich progress bar that counts finished items by outcome and names the running ones.

    ``outcome`` maps a finished item to its outcome name; ``styles`` gives each
    counted outcome its colour, in display order. ``console`` is where it draws
    (stderr by default); ``enabled`` overrides :func:`interactive` (tests)."""

    def __init__(
        self,
        label: str,
        styles: dict[str, str],
        outcome: Callable[[Any], str],
        *,
        console: Console | None = None,
        enabled: bool | None = None,
    ):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = console or err_console
        self.enabled = interactive(console) if enabled is None else enabled
        self.bar: Progress = Progress(
            TextColumn("[bold]{task.fields[label]}[/bold]"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=False,
            disable=not self.enabled,
        )
        self.label = label
        self.styles = styles
        self.outcome = outcome
        self.counts = {name: 0 for name in styles}
        self.running: dict[str, None] = {}  # an ordered set: the labels of items in flight
        self.task: TaskID | None = None
        self._lock = threading.Lock()
        self._started = False

    # -------------------------------------------------------------- StageProgress
    def start(self, total: int, already_done: int, label: str | None = None) -> None:
        """A batch of ``total`` items starts, ``already_done`` of them finished before
        (a resume). A second call (gate: the candidate after the baseline) adds a row."""
        with self._lock:
            if not self._started:
                self.bar.start()
                self._started = True
            self.counts = {name: 0 for name in self.styles}
            self.running.clear()
            self.task = self.bar.add_task(
                "",
                total=total,
                completed=already_done,
                label=escape(label or self.label),
                counts=self._counts(),
            )

    def begin(self, label: str) -> None:
        """An item starts: the bar names it while it runs."""
        with self._lock:
            self.running[label] = None
            self._refresh()

    def done(self, item: Any, label: str = "") -> None:
        """An item finished (``item`` gives its outcome)."""
        with self._lock:
            name = self.outcome(item)
            self.counts[name] = self.counts.get(name, 0) + 1
            self.running.pop(label, None)
            self._refresh(advance=1)

    def stop(self) -> None:
        """Leave the last state on screen and stop redrawing."""
        with self._lock:
            if self._started:
                self.running.clear()
                self._refresh()
                self.bar.stop()
                self._started = False

    def __enter__(self) -> StageBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- drawing
    def _counts(self) -> str:
        return " ".join(f"[{style}]{self.counts.get(name, 0)} {name}[/]" for name, style in self.styles.items())

    def _now(self) -> str:
        names = list(self.running)
        if not names:
            return ""
        shown = ", ".join(names[:SHOWN_RUNNING]) + (
            f" +{len(names) - SHOWN_RUNNING}" if len(names) > SHOWN_RUNNING else ""
        )
        return "now: " + escape(shown)

    def _refresh(self, advance: int = 0) -> None:
        if self.task is None:
            return
        self.bar.update(self.task, advance=advance, description=self._now(), counts=self._counts())


def rollout_bar() -> StageBar:
    """Rollout: tasks done, by verdict."""
    return StageBar("rollout", {"passed": "green", "failed": "red", "errored": "yellow"}, lambda item: item.verdict)


def analyze_bar() -> StageBar:
    """Analysis: trajectories done, by outcome. A finished item is a PatchRecord (a
    verdict) or an AnalystOutcome (an analysis that errored)."""
    styles = {"accepted": "green", "unvalidated": "yellow", "rejected": "red", "errored": "yellow"}
    return StageBar("analyze", styles, lambda item: "errored" if getattr(item, "error_cause", None) else item.status)


def eval_bar(label: str = "eval") -> StageBar:
    """An evaluation (or both of a gate's): task runs done, by verdict."""
    return StageBar(label, {"passed": "green", "failed": "red", "errored": "yellow"}, lambda item: item.verdict)
