"""The task-suite seam: what every suite type implements and what the rest of t2s sees.

Nothing outside ``t2s/tasks/`` knows which benchmark it runs. A suite lists its tasks
and named splits, prepares a task's work directory, renders the task prompt and checks
an output, returning a :class:`Verdict` whose :class:`CheckReport` is both
machine-readable (JSON) and human-readable (:meth:`CheckReport.render`).

The agentic error analyst works in a folder the suite lays out too
(:meth:`Suite.analyst_workspace`: the task's inputs, the gold material, how a fix is
checked), so it works for every suite that can supply one.

A new suite type subclasses :class:`Suite` and registers itself with
:func:`t2s.tasks.registry.register_suite_type` (built in) or through the entry point
group ``t2s.suites`` (third party).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from abc import ABC, abstractmethod
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from t2s.errors import T2SError, UsageError
from t2s.tasks.splits import default_splits_file, resolve_split


class SplitOverlapError(UsageError):
    """Two splits that must be disjoint (evolve and held-out) share task ids (or, for
    suites whose tasks share data, what they share: ``unit="table(s)"``)."""

    def __init__(self, suite: str, first: str, second: str, overlap: list[str], *, unit: str = "task(s)"):
        shown = ", ".join(overlap[:20]) + (f", ... ({len(overlap)} in all)" if len(overlap) > 20 else "")
        super().__init__(
            f"suite {suite!r}: splits {first!r} and {second!r} overlap on {len(overlap)} {unit}: {shown}",
            hint="a skill must never be evolved on the tasks it is judged on; fix [suites.<name>.splits] in t2s.toml",
        )
        self.suite = suite
        self.splits = (first, second)
        self.overlap = overlap


class Case(BaseModel):
    """One test case of a task: an input file and the answer it is judged against."""

    model_config = ConfigDict(frozen=True)

    index: int  # 1-based, as in the benchmark's file names
    input_path: Path | None = None
    answer_path: Path | None = None


class Task(BaseModel):
    """One task of a suite: its id, the instruction, its test cases and where the
    answer is judged."""

    model_config = ConfigDict(frozen=True)

    id: str
    instruction: str
    cases: list[Case]
    #: Where the answer is judged (suite-specific syntax; SpreadsheetBench: ``'S'!A1:B5``).
    answer_position: str = ""
    #: Everything else the suite knows (instruction type, answer sheet, row index...).
    meta: dict[str, Any] = Field(default_factory=dict)

    def case(self, k: int) -> Case:
        """Test case ``k`` (1-based); a :class:`UsageError` naming the cases it has."""
        for case in self.cases:
            if case.index == k:
                return case
        have = ", ".join(str(c.index) for c in self.cases)
        raise UsageError(f"task {self.id!r} has no test case {k} (it has: {have})")


class Workspace(BaseModel):
    """A prepared per-task work directory."""

    dir: Path
    input_path: Path | None
    output_path: Path
    case: int = 1
    extra: dict[str, Any] = Field(default_factory=dict)


class FixCheck(BaseModel):
    """How the agentic error analyst's ``evaluate_output`` checks a fix: the suite's own
    :meth:`Suite.check`, run as ``t2s check PATH --task TASK --suite SUITE --case CASE``
    in a separate process (so the analyst cannot alter the checker or the gold it reads)."""

    model_config = ConfigDict(frozen=True)

    #: What ``t2s check --suite`` loads: the suite's directory (its type is detected).
    suite: str
    task_id: str
    case: int = 1
    lenient: bool = False
    recalculate: bool = False


class AnalystGuide(BaseModel):
    """What the agentic error analyst's prompt says about a suite's analyst workspace.

    The texts are data (a TOML file next to the suite, see :meth:`load`); they go into
    ``t2s/prompts/analyst_error_system.md`` verbatim, so a changed byte changes the
    analyst's request bodies (and the response-cache keys)."""

    model_config = ConfigDict(frozen=True)

    #: Markdown bullets on the task's input files (listed before the agent's output).
    inputs: str
    #: Markdown bullets on the gold material (listed after the agent's scripts).
    gold: str
    #: Markdown bullet on the agent's output.
    output: str
    #: What the agent's output is compared with (step 1 of "How to work").
    compare_with: str
    #: The fix to write and check (step 2 of "How to work").
    fix: str

    @classmethod
    def load(cls, name: str, package: str = "t2s.tasks") -> AnalystGuide:
        """The guide in the TOML file ``name`` of ``package`` (cached)."""
        return _load_guide(package, name)


@cache
def _load_guide(package: str, name: str) -> AnalystGuide:
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    return AnalystGuide.model_validate(tomllib.loads(text))


class AnalystWorkspace(BaseModel):
    """The agentic error analyst's work folder for one case of a task, as the suite laid
    it out (:meth:`Suite.analyst_workspace`). The analyst adds the agent's output and
    scripts (from the run record) and ``trajectory.json``."""

    dir: Path
    case: int = 1
    #: The task's input files placed in ``dir`` (paths relative to it), in listing order.
    inputs: list[str] = Field(default_factory=list)
    #: The gold material placed in ``dir`` that the analyst may read.
    gold: list[str] = Field(default_factory=list)
    #: The output file a fix must produce (as the agent's output is named).
    output_name: str
    #: How a fix is checked.
    check: FixCheck
    #: What the analyst's prompt says about these files and the fix.
    guide: AnalystGuide


class Mismatch(BaseModel):
    """One cell whose value differs from the answer: what was expected, what was there."""

    sheet: str
    cell: str
    expected: Any = None
    actual: Any = None
    expected_type: str = "NoneType"
    actual_type: str = "NoneType"


class AnswerCheck(BaseModel):
    """A value-list comparison (suites whose answer is a list of values, e.g.
    WikiTableQuestions): what was expected, what was given, what differs."""

    #: Where the predicted values were read (e.g. ``output.xlsx!answer``).
    source: str = ""
    #: Distinct gold values (as written in the benchmark).
    gold: list[str] = Field(default_factory=list)
    #: Distinct predicted values (as read from the output).
    predicted: list[str] = Field(default_factory=list)
    #: How each gold / predicted value was read (``number 12467``, ``date 1990-06-xx``,
    #: ``string 'bangkok, thailand'``), parallel to ``gold`` / ``predicted``.
    gold_read: list[str] = Field(default_factory=list)
    predicted_read: list[str] = Field(default_factory=list)
    #: Gold values no predicted value matches.
    missing: list[str] = Field(default_factory=list)
    #: Predicted values that match no gold value.
    extra: list[str] = Field(default_factory=list)
    correct: bool = False


class CheckReport(BaseModel):
    """What the checker found, JSON-able; ``render()`` gives the human version."""

    task_id: str
    case: int = 1
    output_path: str = ""
    answer_path: str = ""
    answer_position: str = ""
    lenient: bool = False
    recalculated: bool = False
    #: The (sheet, range) pieces that were compared.
    ranges: list[str] = Field(default_factory=list)
    cells_checked: int = 0
    #: Problems that fail the check before any cell is compared (missing sheet, bad
    #: range, unreadable file).
    problems: list[str] = Field(default_factory=list)
    mismatches: list[Mismatch] = Field(default_factory=list)
    #: Total mismatching cells (``mismatches`` may be capped).
    mismatch_count: int = 0
    notes: list[str] = Field(default_factory=list)
    #: Value-list suites: the gold and predicted values and how they differ (a wrong
    #: answer also adds a problem, so ``passed`` stays ``not problems and not mismatches``).
    answers: AnswerCheck | None = None

    @property
    def passed(self) -> bool:
        """No problem and no mismatching cell."""
        return not self.problems and self.mismatch_count == 0

    def render(self, max_rows: int = 30) -> str:
        """The report for a person (or a model): what was compared and each difference,
        at most ``max_rows`` per list."""
        status = "PASS" if self.passed else "FAIL"
        head = f"{status}  task {self.task_id} case {self.case}"
        lines = [head]
        if self.output_path:
            lines.append(f"  output:  {self.output_path}")
        if self.answer_position:
            lines.append(f"  answer position: {self.answer_position}")
        if self.ranges:
            lines.append(f"  compared: {', '.join(self.ranges)} ({self.cells_checked} cells)")
        flags = [f for f, on in (("lenient", self.lenient), ("recalculated", self.recalculated)) if on]
        if flags:
            lines.append(f"  mode: {', '.join(flags)}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.answers is not None:
            a = self.answers

            def listing(values: list[str]) -> str:
                shown = ", ".join(repr(v) for v in values[:max_rows])
                return shown + (f", ... ({len(values)} in all)" if len(values) > max_rows else "")

            if a.source:
                lines.append(f"  answer read from: {a.source}")
            lines.append(f"  gold ({len(a.gold)}): {listing(a.gold)}")
            lines.append(f"  predicted ({len(a.predicted)}): {listing(a.predicted)}")
            # a suite that does not read values leaves the *_read lists empty: nothing to show
            for value, read in list(zip(a.gold, a.gold_read, strict=False))[:max_rows]:
                lines.append(f"    gold {value!r} read as {read}")
            for value, read in list(zip(a.predicted, a.predicted_read, strict=False))[:max_rows]:
                lines.append(f"    predicted {value!r} read as {read}")
            if a.missing:
                lines.append(f"  missing gold value(s): {listing(a.missing)}")
            if a.extra:
                lines.append(f"  extra predicted value(s): {listing(a.extra)}")
        for problem in self.problems:
            lines.append(f"  problem: {problem}")
        if self.mismatch_count:
            lines.append(f"  {self.mismatch_count} cell(s) differ:")
            lines.append("    sheet!cell: expected (type) | actual (type)")
            for m in self.mismatches[:max_rows]:
                lines.append(
                    f"    {m.sheet}!{m.cell}: {m.expected!r} ({m.expected_type}) | {m.actual!r} ({m.actual_type})"
                )
            if self.mismatch_count > min(max_rows, len(self.mismatches)):
                lines.append(f"    ... {self.mismatch_count - min(max_rows, len(self.mismatches))} more")
        return "\n".join(lines)


class Verdict(BaseModel):
    """The checker's judgement of one output: passed, a score, and the full report."""

    passed: bool
    score: float
    report: CheckReport


class Score(BaseModel):
    """A task's result across its test cases (OJ style)."""

    task_id: str
    case_results: dict[int, bool]
    #: Fraction of test cases passed.
    soft: float
    #: 1.0 only if every test case passed.
    hard: float
    verdicts: dict[int, Verdict] = Field(default_factory=dict)


def _sha256_file(path: Path, cache: dict) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    digest = cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = cache[key] = h.hexdigest()
    return digest


class Suite(ABC):
    """A task suite: data plus a checker. Subclasses implement the abstract methods."""

    #: Registry name of the suite type (``[suites.<name>] type = ...``).
    type: ClassVar[str] = ""

    def __init__(
        self, name: str, root: Path, *, lenient: bool = False, recalculate: bool = False, options: dict | None = None
    ):
        self.name = name
        self.root = Path(root)
        self.lenient = lenient
        self.recalculate = recalculate
        self.options = dict(options or {})
        self._splits: dict[str, list[str]] | None = None
        self._hash_cache: dict = {}

    def configure_splits(self, specs: dict | None = None, search_dirs: list[Path] | None = None) -> None:
        """Resolve the splits declared in ``t2s.toml`` (a dict of ``SplitSpec``); with
        none declared, use the suite's own ``splits.json`` if it has one."""

        all_ids = self.all_task_ids()
        if specs:
            dirs = [self.root, *(search_dirs or [])]
            self._splits = {
                n: resolve_split(n, spec, suite=self.name, all_ids=all_ids, search_dirs=dirs)
                for n, spec in specs.items()
            }
        else:
            self._splits = default_splits_file(self.root, all_ids, self.name)

    # -- discovery ---------------------------------------------------------------
    @classmethod
    @abstractmethod
    def detect(cls, path: Path) -> bool:
        """True if ``path`` looks like a suite of this type (for auto-detection)."""

    @abstractmethod
    def all_task_ids(self) -> list[str]:
        """Every task id, in suite order."""

    def task_ids(self, split: str | None = None) -> list[str]:
        """Task ids in suite order; ``split=None`` means every task."""
        if split is None:
            return self.all_task_ids()
        splits = self.splits()
        if split not in splits:
            have = ", ".join(map(repr, splits)) or "none"
            raise UsageError(
                f"suite {self.name!r} has no split {split!r} (splits: {have})",
                hint="declare it under [suites.<name>.splits] in t2s.toml",
            )
        return splits[split]

    @abstractmethod
    def task(self, task_id: str) -> Task:
        """One task; unknown ids raise :class:`UsageError`."""

    def splits(self) -> dict[str, list[str]]:
        """Split name -> its task ids (resolved from ``t2s.toml`` on first use)."""
        if self._splits is None:
            self.configure_splits()
        return {name: list(ids) for name, ids in (self._splits or {}).items()}

    def tasks(self, split: str | None = None) -> list[Task]:
        """The tasks of ``split`` (every task for None), in suite order."""
        return [self.task(i) for i in self.task_ids(split)]

    def check_disjoint(self, first: str, second: str) -> None:
        """Raise :class:`SplitOverlapError` when splits ``first`` and ``second`` share a task."""
        a = self.task_ids(first)
        b = set(self.task_ids(second))
        overlap = [i for i in a if i in b]
        if overlap:
            raise SplitOverlapError(self.name, first, second, overlap)

    # -- running -----------------------------------------------------------------
    def prepare(self, task: Task, dest_dir: Path, case: int = 1) -> Workspace:
        """Create ``dest_dir`` with the case's input copied in; decide the output path."""
        c = task.case(case)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        input_path = None
        if c.input_path is not None:
            if not c.input_path.is_file():
                raise UsageError(f"task {task.id!r}: input file {c.input_path} is missing")
            input_path = dest_dir / self.input_name(task, c)
            shutil.copyfile(c.input_path, input_path)
            input_path.chmod(0o644)
        return Workspace(
            dir=dest_dir, input_path=input_path, output_path=dest_dir / self.output_name(task, c), case=case
        )

    def input_name(self, task: Task, case: Case) -> str:
        """The name the case's input file gets in the workspace (default: its own)."""
        return case.input_path.name if case.input_path else "input"

    def output_name(self, task: Task, case: Case) -> str:
        """The name of the file the agent must write in the workspace."""
        return "output"

    @abstractmethod
    def render_prompt(self, task: Task, workspace: Workspace) -> str:
        """The task as the agent sees it."""

    @abstractmethod
    def check(
        self,
        task: Task,
        output_path: Path,
        case: int = 1,
        *,
        recalculate: bool | None = None,
        lenient: bool | None = None,
    ) -> Verdict:
        """Judge one output file against test case ``case``."""

    # -- optional hooks (defaults keep a suite that ignores them working) ------------
    #: JSON schema of an ``answer`` argument the agent's ``finish`` action accepts
    #: (``None``: finishing takes no answer). The text protocol's ``FINAL ANSWER:``
    #: line is offered only when this is set.
    final_answer_parameter: ClassVar[dict[str, Any] | None] = None

    def record_final_answer(self, workspace: Workspace, answer: Any) -> str:
        """Write ``answer`` (from the agent's final-answer action) into the workspace's
        output; returns a one-line note for the agent. Only called when
        :attr:`final_answer_parameter` is set; errors are :class:`UsageError`."""
        raise UsageError(f"suite type {self.type!r} takes no final answer; write the output file")

    def gold_values(self, task: Task, case: int = 1) -> list[Any]:
        """The task's gold answer values (for the analysts' leak guard: a skill must not
        learn them). Default: none known."""
        return []

    def visible_texts(self, task: Task, case: int = 1) -> list[str]:
        """Texts the agent is shown besides the instruction (its input data), so gold
        values that appear there are not counted as leaks. Default: none."""
        return []

    # -- the agentic error analyst's workspace ----------------------------------------
    def has_analyst_workspace(self, task: Task) -> bool:
        """Can :meth:`analyst_workspace` lay out a workspace for ``task`` (inputs and a gold
        to check a fix against)? Without one, a failed trajectory of the task gets the
        single-call error analyst. Default: the task's first case has a gold file."""
        return bool(task.cases) and task.cases[0].answer_path is not None

    def analyst_workspace(self, task: Task, case: int, dest_dir: Path) -> AnalystWorkspace:
        """Lay out the agentic error analyst's work folder for case ``case`` of ``task`` in
        ``dest_dir``: the inputs, the gold material the analyst may see, the output a fix
        must produce and how it is checked.

        Default (workbook suites such as SpreadsheetBench): the case's input file as
        ``input.xlsx`` and under its :meth:`input_name` when that differs (the agent's
        scripts open it by that name), its answer file as ``golden.xlsx``; the output is
        ``output.xlsx``; a fix is checked by :meth:`check` with the suite's ``lenient`` and
        ``recalculate`` settings; the prompt texts are ``t2s/tasks/analyst_workspace.toml``."""
        c = task.case(case)
        if c.answer_path is None:
            raise T2SError(f"task {task.id!r} case {case} has no answer file: no gold for the analyst")
        if not Path(c.answer_path).is_file():
            raise T2SError(f"task {task.id!r} case {case}: the answer file {c.answer_path} is missing")
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        inputs: list[str] = []
        if c.input_path is not None and Path(c.input_path).is_file():
            shutil.copyfile(c.input_path, dest_dir / "input.xlsx")
            inputs.append("input.xlsx")
            original = self.input_name(task, c)
            if original != "input.xlsx" and "/" not in original:
                shutil.copyfile(c.input_path, dest_dir / original)
                inputs.append(original)
        shutil.copyfile(c.answer_path, dest_dir / "golden.xlsx")
        return AnalystWorkspace(
            dir=dest_dir,
            case=c.index,
            inputs=inputs,
            gold=["golden.xlsx"],
            output_name="output.xlsx",
            check=self.fix_check(task, c.index),
            guide=AnalystGuide.load("analyst_workspace.toml"),
        )

    def fix_check(self, task: Task, case: int) -> FixCheck:
        """How the analyst's fix for ``task`` case ``case`` is checked: :meth:`check` in a
        separate ``t2s check`` process, with the suite's settings."""
        return FixCheck(
            suite=str(self.root.resolve()),
            task_id=task.id,
            case=case,
            lenient=self.lenient,
            recalculate=self.recalculate,
        )

    def score(
        self, task: Task, outputs: dict[int, Path], *, recalculate: bool | None = None, lenient: bool | None = None
    ) -> Score:
        """Soft (fraction passed) and hard (all passed) scores over every test case of
        ``task``; a case without an output counts as failed."""
        results: dict[int, bool] = {}
        verdicts: dict[int, Verdict] = {}
        for c in task.cases:
            out = outputs.get(c.index)
            if out is None:
                results[c.index] = False
                continue
            v = self.check(task, Path(out), c.index, recalculate=recalculate, lenient=lenient)
            verdicts[c.index] = v
            results[c.index] = v.passed
        n = len(results) or 1
        passed = sum(results.values())
        return Score(
            task_id=task.id,
            case_results=results,
            soft=passed / n,
            hard=1.0 if results and all(results.values()) else 0.0,
            verdicts=verdicts,
        )

    # -- caching -----------------------------------------------------------------
    def content_hash(self, split: str | None = None) -> str:
        """sha256 over the split's task ids, instructions, answer positions and data
        files (stable across machines and paths)."""
        h = hashlib.sha256()
        h.update(f"t2s-suite-v1\0{self.type}\0".encode())
        for task in self.tasks(split):
            h.update(json.dumps([task.id, task.instruction, task.answer_position], ensure_ascii=False).encode())
            for c in task.cases:
                for p in (c.input_path, c.answer_path):
                    h.update(b"\0" + (_sha256_file(p, self._hash_cache).encode() if p and p.is_file() else b"-"))
            h.update(b"\n")
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """The suite in brief (name, type, root, task and split sizes, checker options),
        JSON-ready."""
        return {
            "name": self.name,
            "type": self.type,
            "root": str(self.root),
            "tasks": len(self.task_ids()),
            "splits": {k: len(v) for k, v in self.splits().items()},
            "lenient": self.lenient,
            "recalculate": self.recalculate,
        }
