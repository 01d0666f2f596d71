"""``t2s demo``: the whole loop, offline, in a fresh directory.

The demo runs the real t2s commands, printed as a user would type them, against the
project's scripted OpenAI-compatible server playing a *simulated* agent, analysts and
merger (:mod:`t2s.demo.simulation`). It shows the workflow, not a model's learning.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from t2s.cli import main
from t2s.demo.simulation import agent_responder, analyst_responder
from t2s.demo.tasks import write_suite
from t2s.errors import T2SError
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.testing.server import ScriptedServer
from t2s.testing.simulated import merger_responder

RUN = "demo"
DEMO_CONFIG = """
# --- added by `t2s demo` -------------------------------------------------------
[suites.demo]
type = "spreadsheetbench"
path = "../tasks"
[suites.demo.splits]
evolve = { file = "splits.json", key = "evolve" }
heldout = { file = "splits.json", key = "heldout" }
"""

SIMULATION_NOTICE = (
    "This demo runs offline. The 'models' are scripted responders on a local "
    "OpenAI-compatible server: a simulated agent that makes typical spreadsheet "
    "mistakes unless its skill states the matching lesson, simulated analysts that "
    "state the lesson of the mistake they were shown, and a simulated merger. "
    "Everything else is real: git objects, the sandbox, the checker, the evaluation. "
    "It shows the workflow, not a model's learning."
)


@dataclass
class DemoResult:
    directory: Path
    repo: Path
    report: Path
    tag: str = ""
    steps: list[tuple[str, int, float]] = field(default_factory=list)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _configure(repo: Path) -> None:
    """Point the repository at the demo suite, as a user would edit t2s.toml."""
    config = repo / "t2s.toml"
    text = config.read_text()
    text = text.replace('# suite = "sheets"', 'suite = "demo"')
    text = text.replace("min_delta = 0.0 ", "min_delta = 0.2 ")
    config.write_text(text + DEMO_CONFIG)


class Demo:
    def __init__(self, directory: Path | None, console: Console):
        self.directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="t2s-demo-"))
        self.repo = self.directory / "my-skills"
        self.console = console
        self.result = DemoResult(self.directory, self.repo, self.directory / "report.html")

    def t2s(self, *args: str, allow: tuple[int, ...] = (0,)) -> int:
        """Run one t2s command in-process, printed as the user would type it."""

        shown = " ".join(shlex.quote(a) for a in args)
        self.console.print(f"\n[bold cyan]$ t2s {shown}[/bold cyan]")
        start = time.perf_counter()
        try:
            main.main(list(args), prog_name="t2s", standalone_mode=False)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        self.result.steps.append((f"t2s {shown}", code, time.perf_counter() - start))
        if code not in allow:
            raise T2SError(f"demo step failed (exit {code}): t2s {shown}")
        return code

    def run(self) -> DemoResult:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.console.rule("[bold]t2s demo[/bold]")
        self.console.print(SIMULATION_NOTICE, style="yellow")
        self.console.print(f"\nWorking in {self.directory}")
        suite = write_suite(self.directory / "tasks")
        splits = json.loads((suite / "splits.json").read_text())
        self.console.print(
            f"Generated {sum(len(v) for v in splits.values())} small spreadsheet tasks with openpyxl "
            f"({len(splits['evolve'])} evolve, {len(splits['heldout'])} held-out) in {suite}"
        )
        with ScriptedServer(models=["t2s-demo-sim"]) as server:
            server.on(agent_responder, role="agent")
            server.on(analyst_responder, role="analyst")
            server.on(merger_responder, role="merger")
            env = {
                "T2S_BASE_URL": server.base_url,
                "T2S_MODEL": "t2s-demo-sim",
                "T2S_API_KEY_ENV": "T2S_DEMO_API_KEY",
                "T2S_CACHE_MODE": "off",
            }
            with _environment(env):
                self._steps()
        self._summary()
        return self.result

    def _steps(self) -> None:
        repo = str(self.repo)
        self.t2s("init", repo, "--seed", "xlsx")
        _configure(self.repo)

        store = GitStore.discover(self.repo)
        store.commit_paths(["t2s.toml"], "Configure the demo task suite")
        self.console.print("[dim](t2s.toml now names the demo suite; committed as S0)[/dim]")
        self.t2s("rollout", "-C", repo, "--split", "evolve", "--run", RUN)
        self.t2s("analyze", "-C", repo, "--run", RUN)
        self.t2s("merge", "-C", repo, "--run", RUN)
        self.t2s("log", "-C", repo, "--run", RUN)
        candidate = refs.short(refs.candidate_branch(RUN))
        self.t2s("gate", "-C", repo, candidate, allow=(0, 1))
        self.t2s("release", "-C", repo, candidate)
        self.result.tag = (store.tags("v*") or [""])[-1]
        if self.result.tag and store.resolve("main") != store.resolve(self.result.tag):
            # release leaves a checked-out main alone; fast-forward it as its message says
            self.console.print(f"\n[bold cyan]$ git merge --ff-only {self.result.tag}[/bold cyan]")
            store.fast_forward(self.result.tag)
        self.t2s("pack", "-C", repo)
        self.t2s("report", "-C", repo, "--run", RUN, "-o", str(self.result.report))

    def _summary(self) -> None:
        self.console.rule("[bold]what happened[/bold]")
        for command, code, seconds in self.result.steps:
            mark = "[green]ok[/green]" if code == 0 else f"[yellow]exit {code}[/yellow]"
            self.console.print(f"  {mark:>6}  {seconds:5.1f}s  {command}")
        self.console.print(
            f"\nRelease tag: [bold]{self.result.tag or '(none)'}[/bold]   report: [bold]{self.result.report}[/bold]"
        )
        self.console.print(f"Skill repository: {self.repo}  (try `t2s review -C {self.repo} --run {RUN}`)")
        self.console.print(
            "\nThe same loop against a real OpenAI-compatible endpoint (here: the local Qwen server):\n"
            f"  T2S_BASE_URL=http://127.0.0.1:8765/v1 T2S_MODEL=qwen2.5-coder-1.5b-instruct "
            f"t2s evolve -C {self.repo} --run r2"
        )
        self.console.print("\n" + SIMULATION_NOTICE, style="yellow")


def run_demo(directory: Path | None = None, console: Console | None = None) -> DemoResult:
    return Demo(directory, console or Console()).run()
