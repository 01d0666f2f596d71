"""Analysts: one trajectory in, one report (failure causes, <= 3 lessons, skill edits) out.

Three analysts, all against the same frozen skill S0 (they never see each other's work):

- :class:`AgenticErrorAnalyst` (failed trajectories): a tool loop in a workspace with
  the task's inputs and gold (laid out by the suite: :meth:`t2s.tasks.Suite.analyst_workspace`),
  the agent's output and scripts, and the trajectory.
  Tools: ``run_python`` (the sandbox), ``evaluate_output`` (the suite's checker, run as a
  separate ``t2s check`` process so the analyst cannot alter it), ``read_skill_file``
  and ``submit``. ``submit`` is refused until an ``evaluate_output`` call has passed;
  that passing fix is the evidence that the diagnosis is causal. At the turn budget
  without one, a final report is forced and marked unvalidated. Native tool calls and
  a plain-text protocol are both spoken (``auto`` switches to text when the first reply
  calls no tool, as the agent harness does).
- :class:`SuccessAnalyst` (passed trajectories): one call.
- :class:`SingleCallErrorAnalyst` (failed trajectories, reads the trajectory only):
  the paper's ablation and a cheap mode.

Every analyst ends with the same edit step: the report's edits are rendered against
S0 by :class:`t2s.patches.context.PatchContext` (guardrails and leak guard in code) and, when
they fail, the model is told exactly which edit failed and why and asked again
(:func:`t2s.patches.retries.edits_with_retries`). The orchestration (which trajectory gets
which analyst, records, branches, concurrency) is :mod:`t2s.analysis.analyze`.

Also here: :func:`create_skill_files`, the parametric first draft of a skill for
``t2s init --create``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from t2s import sandbox
from t2s.agent.actions import parse_text_actions
from t2s.agent.bundle import SkillBundle
from t2s.agent.prompting import format_exec, truncate
from t2s.errors import T2SError, UsageError
from t2s.faults import ErrorCause, cause_of
from t2s.llm.client import SAMPLE, sampling
from t2s.llm.errors import LLMError, StructuredOutputError
from t2s.llm.results import ChatResult
from t2s.llm.structured import REPAIR_PROMPT, _format_validation_error, extract_json, validate_answer
from t2s.patches.context import PatchContext
from t2s.patches.examples import example_values
from t2s.patches.leaks import find_leaks
from t2s.patches.placeholders import placeholder_problem
from t2s.patches.results import Patch, Rejected
from t2s.patches.retries import edit_format_prompt, edits_with_retries
from t2s.prompts import load as prompt, render
from t2s.record.lessons import TOPIC_RE, slugify
from t2s.sandbox.leftovers import dies_with_parent, scratch_dir
from t2s.sandbox.run import SECRET_NAME
from t2s.skill.format import SKILL_FILE, Limits, lint_files
from t2s.tasks.base import AnalystWorkspace, CheckReport

ROLE = "analyst"
PHASE = "analyze"
MAX_LESSONS = 3
ANALYST_KINDS = ("agentic", "single-call", "success")


# ---------------------------------------------------------------------- the report
class LessonOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1)
    topic: str = ""

    @field_validator("text")
    @classmethod
    def _not_a_placeholder(cls, value: str) -> str:
        problem = placeholder_problem(value, "the lesson")
        if problem:
            raise ValueError(problem)
        return value


class AnalystReport(BaseModel):
    """What an analyst hands in. Edits stay raw dicts so that a malformed edit reaches
    the renderer, which says precisely what is wrong with it (and the model retries)."""

    model_config = ConfigDict(extra="ignore")
    failure_causes: list[str] = Field(default_factory=list)
    lessons: list[LessonOut] = Field(min_length=1, max_length=MAX_LESSONS)
    edits: list[Any] = Field(default_factory=list)

    @field_validator("lessons", mode="before")
    @classmethod
    def _lessons_as_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"text": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("failure_causes", mode="before")
    @classmethod
    def _causes_as_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return [str(v) if not isinstance(v, str) else v for v in value] if isinstance(value, list) else value


class EditsReply(BaseModel):
    """The answer to an edit retry: the complete list of edits again."""

    model_config = ConfigDict(extra="ignore")
    edits: list[Any]


def lesson_topic(lesson: LessonOut) -> str:
    topic = lesson.topic.strip().lower()
    if TOPIC_RE.match(topic):
        return topic
    return slugify(topic or lesson.text, fallback="general")


# ---------------------------------------------------------------------- inputs and outcomes
@dataclass
class AnalysisInput:
    """Everything one analysis needs. ``task``/``suite`` are None for imported
    trajectories whose task the suite does not know (then only single-call works)."""

    trajectory: Any  # t2s.agent.trajectory.Trajectory
    context: PatchContext
    task: Any = None
    suite: Any = None
    #: Files of ``artifacts/<id>/`` (the agent's output workbook, ``scripts/...``).
    artifacts: dict[str, bytes] = field(default_factory=dict)
    max_turns: int = 12
    edit_retries: int = 2
    exec_timeout: float = 60.0
    #: Run the edit retries for unvalidated reports too (off: they are not kept anyway).
    retry_unvalidated: bool = False
    #: Tool protocol of the agentic analyst (None: the role's ``protocol`` setting).
    protocol: str | None = None
    #: Run the analyst's code without the sandbox where none can be had
    #: (``--unsafe-no-sandbox``; None: ``$T2S_UNSAFE_NO_SANDBOX``).
    unsafe_no_sandbox: bool | None = None
    role: str = ROLE
    phase: str = PHASE


@dataclass
class AnalystOutcome:
    analyst: str
    #: True only for an agentic analysis whose fix passed the checker before it submitted.
    validated: bool = False
    report: AnalystReport | None = None
    result: Patch | Rejected | None = None
    #: Why there is no usable report (analyst call failed...); "" otherwise.
    error: str = ""
    #: Set when the analysis *errored* (the analyst's endpoint failed, t2s could not run
    #: it): no verdict on the trajectory, retried on the next run (:mod:`t2s.faults`).
    error_cause: ErrorCause | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    turns: int = 0
    protocol: str = ""
    notes: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def fail(self, err: Exception) -> None:
        """Record why the analysis stopped. A model that answered but never gave a usable
        report is a genuine (final) rejection; anything else is an error, retried later."""

        if isinstance(err, StructuredOutputError):
            self.error = f"analyst answer unusable: {err.message}"
            return
        message = err.message if isinstance(err, T2SError) else f"{type(err).__name__}: {err}"
        self.error = f"analyst call failed: {message}"
        self.error_cause = cause_of(err)


# ---------------------------------------------------------------------- a conversation
class Session:
    """One analyst conversation: messages, usage, and JSON answers with a repair loop."""

    def __init__(self, llm, outcome: AnalystOutcome, *, role: str = ROLE, phase: str = PHASE):
        self.llm = llm
        self.outcome = outcome
        self.role = role
        self.phase = phase
        self.messages: list[dict[str, Any]] = outcome.transcript
        self._sample = SAMPLE.get()
        self._answers: set[str] = set()

    def add(self, role: str, content: str, **extra: Any) -> None:
        self.messages.append({"role": role, "content": content, **extra})

    async def chat(self, tools: list[dict[str, Any]] | None = None) -> ChatResult:
        with sampling(self._sample):
            res = await self.llm.chat(self.role, self.messages, tools=tools, phase=self.phase)
        out = self.outcome
        out.calls += 0 if res.cached else 1
        out.prompt_tokens += res.usage.prompt_tokens
        out.completion_tokens += res.usage.completion_tokens
        if res.model and not out.model:
            out.model = res.model
        self.messages.append(res.message)
        return res

    def answer_tool_calls(self, res: ChatResult, text: str) -> None:
        """Every tool call must be answered before the next user message."""
        for call in res.tool_calls:
            self.add("tool", text, tool_call_id=call.id)

    async def ask_json(
        self, schema: type[BaseModel], *, tools: list[dict[str, Any]] | None = None, repairs: int = 2
    ) -> Any:
        """An instance of ``schema`` from the next reply (content, or a tool call's arguments)."""
        errors: list[str] = []
        raw = ""
        for round_ in range(repairs + 1):
            res = await self.chat(tools)
            raw = res.content or ""
            if not raw.strip() and res.tool_calls:
                raw = res.tool_calls[0].arguments
            if raw in self._answers:  # the same bytes again: the next reply is a new sample
                self._sample += 1
            self._answers.add(raw)
            try:
                value = validate_answer(raw, schema)
            except ValueError as err:
                problem = (
                    f"it does not match the schema: {_format_validation_error(err)}"
                    if isinstance(err, ValidationError)
                    else str(err)
                )
                errors.append(problem)
                if res.tool_calls:
                    self.answer_tool_calls(res, f"Not accepted: {problem}")
                if round_ < repairs:
                    self.add("user", render(prompt(REPAIR_PROMPT).strip(), error=problem))
                continue
            if res.tool_calls:
                self.answer_tool_calls(res, "Received.")
            return value
        cfg = self.llm.role(self.role)
        raise StructuredOutputError(
            f"{self.role} answer never matched {schema.__name__} after {repairs + 1} attempts: {errors[-1]}",
            raw=raw,
            errors=errors,
            role=self.role,
            model=cfg.model,
            cause=errors[-1],
            attempts=repairs + 1,
        )


# ---------------------------------------------------------------------- prompt pieces
def skill_files_block(texts: dict[str, str]) -> str:
    return "\n\n".join(
        f"### {path}\n\n````markdown\n{text}````"
        for path, text in sorted(texts.items(), key=lambda item: (item[0] != SKILL_FILE, item[0]))
    )


def check_block(check: dict[str, Any] | None) -> str:
    if not check:
        return "(the trajectory carries no checker report)"
    try:
        return "```\n" + CheckReport.model_validate(check).render() + "\n```"
    except (ValidationError, TypeError):
        return "```json\n" + json.dumps(check, indent=1, default=str)[:4000] + "\n```"


def facts(traj, extra: dict[str, Any] | None = None) -> str:
    check = traj.check or {}
    data = {
        "trajectory": traj.id,
        "task": traj.task_id,
        "verdict": traj.verdict,
        "problems": list(check.get("problems") or []),
        "mismatches": [
            {k: m.get(k) for k in ("sheet", "cell", "expected", "actual")} for m in (check.get("mismatches") or [])[:20]
        ],
        "mismatch_count": check.get("mismatch_count", 0),
        **(extra or {}),
    }
    return json.dumps(data, indent=1, default=str)


def report_prompt_parts(skill_texts: dict[str, str]) -> dict[str, str]:
    """The report format, rules and edit format, their examples drawn from the skill."""
    return {
        "report_format": render(prompt("analyst_report_format.md"), **example_values(skill_texts)).strip() + "\n",
        "rules": prompt("analyst_rules.md").strip(),
        "edit_format": edit_format_prompt(skill_texts).strip(),
    }


def _task_values(traj, task) -> dict[str, str]:
    return {
        "trajectory": traj.id,
        "task": traj.task_id or "(unknown)",
        "verdict": traj.verdict,
        "instruction": (task.instruction if task is not None else traj.instruction).strip() or "(not recorded)",
        "answer_position": (task.answer_position if task is not None else traj.answer_position) or "(not recorded)",
    }


# ---------------------------------------------------------------------- the edit step
async def edit_step(
    session: Session,
    inp: AnalysisInput,
    report: AnalystReport,
    *,
    retries: int,
    tools: list[dict[str, Any]] | None = None,
) -> Patch | Rejected:
    """Render the report's edits against S0; on failure say exactly why and ask again."""

    async def ask(feedback: str | None) -> Any:
        if feedback is None:
            return report.edits
        session.add("user", render(prompt("analyst_edit_retry.md"), feedback=feedback).strip())
        reply = await session.ask_json(EditsReply, tools=tools)
        report.edits = reply.edits
        return reply.edits

    return await edits_with_retries(ask, inp.context.render, max_retries=retries)


def lesson_leaks(report: AnalystReport, context: PatchContext) -> list[str]:
    """Lessons travel to the merger and into commit subjects: they obey the leak guard too."""
    text = "\n".join(lesson.text for lesson in report.lessons)
    return find_leaks(text, forbidden_values=context.forbidden_values, forbidden_ids=context.forbidden_ids)


# ---------------------------------------------------------------------- one-call analysts
class _OneCallAnalyst:
    kind = ""
    system_prompt = ""

    def __init__(self, llm):
        self.llm = llm

    def messages(self, inp: AnalysisInput) -> list[dict[str, Any]]:
        traj = inp.trajectory
        system = render(prompt(self.system_prompt), **report_prompt_parts(inp.context.texts()))
        user = render(
            prompt("analyst_single_task.md"),
            **_task_values(traj, inp.task),
            check=check_block(traj.check),
            facts=facts(traj),
            transcript=traj.render(max_chars=3000),
            skill_files=skill_files_block(inp.context.texts()),
        )
        return [{"role": "system", "content": system.strip() + "\n"}, {"role": "user", "content": user.strip() + "\n"}]

    async def analyze(self, inp: AnalysisInput) -> AnalystOutcome:

        started = time.perf_counter()
        outcome = AnalystOutcome(analyst=self.kind, protocol="json")
        session = Session(self.llm, outcome, role=inp.role, phase=inp.phase)
        session.messages.extend(self.messages(inp))
        try:
            outcome.report = await session.ask_json(AnalystReport)
            outcome.turns = 1
            outcome.result = await edit_step(session, inp, outcome.report, retries=inp.edit_retries)
        except LLMError as err:
            outcome.fail(err)
        outcome.wall_s = round(time.perf_counter() - started, 3)
        return outcome


class SuccessAnalyst(_OneCallAnalyst):
    """Passing trajectories: one call; what made the run work, <= 3 lessons, edits."""

    kind = "success"
    system_prompt = "analyst_success_system.md"


class SingleCallErrorAnalyst(_OneCallAnalyst):
    """Failed trajectories, one call on the trajectory alone (no workspace, no checker)."""

    kind = "single-call"
    system_prompt = "analyst_single_call_system.md"


# ---------------------------------------------------------------------- the agentic analyst
_EVAL_RE = re.compile(
    r"^[ \t>*_-]*EVALUATE[_ ]OUTPUT\**[ \t]*[:=]?[ \t]*\(?[ \t]*[`'\"]?([^`'\"\s)]+)", re.IGNORECASE | re.MULTILINE
)
_SUBMIT_RE = re.compile(r"^[ \t>*_#-]*SUBMIT\b[ \t*_:]*", re.MULTILINE)
TOOL_NAMES = ("run_python", "evaluate_output", "read_skill_file", "submit")


@dataclass
class _Action:
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _action_from_call(name: str, arguments: str) -> _Action:
    aliases = {
        "python": "run_python",
        "run_code": "run_python",
        "evaluate": "evaluate_output",
        "check": "evaluate_output",
        "read_file": "read_skill_file",
        "submit_report": "submit",
    }
    name = aliases.get(name, name)
    try:
        args = json.loads(arguments or "{}")
    except ValueError as err:
        return _Action("invalid", {"name": name}, f"the arguments of {name} are not valid JSON: {err}")
    if not isinstance(args, dict):
        return _Action("invalid", {"name": name}, f"the arguments of {name} must be a JSON object")
    if name not in TOOL_NAMES:
        return _Action("invalid", {"name": name, **args}, f"unknown tool {name!r} (tools: {', '.join(TOOL_NAMES)})")
    key = {"run_python": "code", "evaluate_output": "path", "read_skill_file": "path"}.get(name)
    if key and not isinstance(args.get(key), str):
        strings = [v for v in args.values() if isinstance(v, str)]
        if len(strings) != 1:
            return _Action("invalid", {"name": name, **args}, f"{name} needs a string argument {key!r}")
        args = {key: strings[0]}
    return _Action(name, args)


def parse_analyst_text(content: str | None) -> list[_Action]:
    """Actions of the plain-text protocol: python fences (via the agent's parser),
    ``EVALUATE_OUTPUT: path``, ``READ_SKILL_FILE: path`` and ``SUBMIT`` + a JSON report."""

    text = content or ""
    submit = _SUBMIT_RE.search(text)
    head = text[: submit.start()] if submit else text
    actions: list[_Action] = []
    for action in parse_text_actions(head):
        if action.tool in ("run_python", "run_shell", "read_skill_file"):
            actions.append(_Action(action.tool, dict(action.arguments), action.error))
    for match in _EVAL_RE.finditer(head):
        actions.append(_Action("evaluate_output", {"path": match.group(1).strip().rstrip(".,;:")}))
    if submit:
        try:
            data = extract_json(text[submit.end() :])
        except ValueError as err:
            actions.append(
                _Action("invalid", {"name": "submit"}, f"SUBMIT must be followed by the report as JSON: {err}")
            )
        else:
            actions.append(_Action("submit", data if isinstance(data, dict) else {"value": data}))
    return actions


@dataclass
class _Held:
    """What the agentic analyst's workspace holds."""

    space: AnalystWorkspace
    #: Every file placed, in listing order (the prompt's "Workspace" and the facts).
    files: list[str]
    #: The agent's output among them (None: it wrote none).
    output: str | None


class AgenticErrorAnalyst:
    """The error analyst with tools; see the module docstring."""

    kind = "agentic"

    def __init__(self, llm, *, observation_limit: int = 6000, checker_timeout: float = 300.0):
        self.llm = llm
        self.observation_limit = observation_limit
        self.checker_timeout = checker_timeout
        #: Set when a run_python/run_shell ran without the sandbox (noted in the outcome).
        self.unsandboxed = False

    # -- workspace
    @staticmethod
    def build_workspace(inp: AnalysisInput, workdir: Path) -> _Held:
        """Lay out the workspace: the suite places the task's inputs and its gold
        (:meth:`t2s.tasks.Suite.analyst_workspace`), then come the agent's artifacts and
        ``trajectory.json``. Returns what it holds (for the prompt and the record)."""
        traj, task, suite = inp.trajectory, inp.task, inp.suite
        case = task.case(traj.case if traj.case else task.cases[0].index)
        space = suite.analyst_workspace(task, case.index, workdir)
        held: list[str] = list(space.inputs)
        for rel, data in sorted(inp.artifacts.items()):
            parts = PurePosixPath(rel).parts
            if not parts or ".." in parts or rel.startswith("/") or rel in space.gold:
                continue  # (an artifact never stands in for the gold)
            target = workdir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            held.append(rel)
        held += space.gold
        (workdir / "trajectory.json").write_text(traj.to_json(), encoding="utf-8")
        held.append("trajectory.json")
        for path in list(workdir.rglob("*")):
            if path.is_file():
                path.chmod(0o644)
        output = next((o for o in traj.outputs if o in inp.artifacts), None)
        return _Held(space=space, files=held, output=output)

    # -- tools
    def evaluate(self, workdir: Path, path: str, space: AnalystWorkspace) -> tuple[bool, str, dict[str, Any]]:
        """Run the suite's checker (``t2s check``, a separate process) on a file of the
        workspace, as ``space.check`` says."""
        target = (workdir / str(path).strip().strip("`'\"")).resolve()
        root = workdir.resolve()
        if root not in target.parents:
            return (
                False,
                f"[evaluate_output] error: {path!r} is not a file inside the workspace",
                {"path": path, "error": "outside"},
            )
        if not target.is_file():
            suffix = PurePosixPath(space.output_name).suffix
            have = ", ".join(sorted(p.name for p in root.iterdir() if p.suffix == suffix)) or "none"
            return (
                False,
                f"[evaluate_output] error: no file {path!r} in the workspace (workbooks: {have})",
                {"path": path, "error": "missing"},
            )
        check = space.check
        cmd = [
            sys.executable,
            "-m",
            "t2s",
            "check",
            str(target),
            "--task",
            check.task_id,
            "--suite",
            check.suite,
            "--case",
            str(check.case),
            "--json",
            "--lenient" if check.lenient else "--literal",
            "--recalculate" if check.recalculate else "--no-recalculate",
        ]
        env = {k: v for k, v in os.environ.items() if not _secret_name(k)}
        try:
            proc = subprocess.run(
                dies_with_parent(cmd), cwd=root, env=env, capture_output=True, text=True, timeout=self.checker_timeout
            )
        except subprocess.TimeoutExpired:
            return False, "[evaluate_output] error: the checker timed out", {"path": path, "error": "timeout"}
        rel = str(target.relative_to(root))
        if proc.returncode not in (0, 1):
            message = (proc.stderr or proc.stdout).strip()[-1500:]
            return False, f"[evaluate_output] error on {rel}: {message}", {"path": rel, "error": message}
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            return (
                False,
                f"[evaluate_output] error: unreadable checker output: {proc.stdout[-500:]}",
                {"path": rel, "error": "unreadable"},
            )

        report = CheckReport.model_validate(data["report"])
        passed = bool(data.get("passed"))
        report.output_path = rel
        report.answer_path = "(the task's answer file)"
        compact = {
            "passed": passed,
            "problems": report.problems,
            "mismatch_count": report.mismatch_count,
            "mismatches": [
                {"sheet": m.sheet, "cell": m.cell, "expected": m.expected, "actual": m.actual}
                for m in report.mismatches[:30]
            ],
        }
        if report.answers is not None:  # value-list suites (WikiTableQuestions): the values
            a = report.answers
            compact["answers"] = {"gold": a.gold, "predicted": a.predicted, "missing": a.missing, "extra": a.extra}
        text = (
            f"[evaluate_output] {'PASS' if passed else 'FAIL'} {rel}\n{report.render()}\n"
            f"```json\n{json.dumps(compact, default=str)}\n```"
        )
        return (
            passed,
            text,
            {"path": rel, "passed": passed, "mismatch_count": report.mismatch_count, "problems": report.problems},
        )

    def run_code(self, inp: AnalysisInput, workdir: Path, code: str, language: Literal["python", "shell"]) -> str:

        result = sandbox.run_code(
            code, workdir, language=language, timeout=inp.exec_timeout, unsafe_no_sandbox=inp.unsafe_no_sandbox
        )
        if not result.sandboxed:
            self.unsandboxed = True
        text, _ = format_exec("run_python" if language == "python" else "run_shell", result, self.observation_limit)
        for form in {str(workdir), str(workdir.resolve())}:
            text = text.replace(form.rstrip("/") + "/", "")
        return text

    def read_skill(self, inp: AnalysisInput, path: str) -> str:

        bundle = SkillBundle(skill_dir=inp.context.skill_dir, files=inp.context.files)
        rel = bundle.resolve(path)
        if rel is None:
            return (
                f"[read_skill_file] error: the skill has no file {path!r}. Its files: {', '.join(sorted(bundle.files))}"
            )
        text = bundle.text(rel)
        text, _ = truncate(text, 20000)
        return f"[read_skill_file] {rel}\n{text}"

    # -- the loop
    def messages(self, inp: AnalysisInput, protocol: str, held: _Held) -> list[dict[str, Any]]:
        traj = inp.trajectory
        tools_text = prompt("analyst_error_text_protocol.md" if protocol == "text" else "analyst_error_tools.md")
        guide = held.space.guide
        system = render(
            prompt("analyst_error_system.md"),
            tools=tools_text.strip(),
            max_turns=inp.max_turns,
            workspace_inputs=guide.inputs,
            workspace_output=guide.output,
            workspace_gold=guide.gold,
            compare_with=guide.compare_with,
            fix=guide.fix,
            **report_prompt_parts(inp.context.texts()),
        )
        listing = "\n".join(f"- `{name}`" for name in held.files)
        user = render(
            prompt("analyst_error_task.md"),
            **_task_values(traj, inp.task),
            workspace=listing,
            check=check_block(traj.check),
            facts=facts(traj, {"output_file": held.output, "workspace": held.files}),
            transcript=traj.render(max_chars=3000),
            skill_files=skill_files_block(inp.context.texts()),
        )
        return [{"role": "system", "content": system.strip() + "\n"}, {"role": "user", "content": user.strip() + "\n"}]

    async def analyze(self, inp: AnalysisInput) -> AnalystOutcome:

        started = time.perf_counter()
        outcome = AnalystOutcome(analyst=self.kind)
        try:
            with scratch_dir("t2s-analyst-") as tmp:
                workdir = Path(tmp) / "workspace"
                held = await asyncio.to_thread(self.build_workspace, inp, workdir)
                await self._loop(inp, outcome, workdir, held)
        except LLMError as err:
            outcome.fail(err)
        if self.unsandboxed:
            outcome.notes.append("the analyst's code ran WITHOUT the sandbox (--unsafe-no-sandbox)")
        outcome.wall_s = round(time.perf_counter() - started, 3)
        return outcome

    async def _loop(self, inp: AnalysisInput, outcome: AnalystOutcome, workdir: Path, held: _Held) -> None:
        requested = inp.protocol or self.llm.role(inp.role).protocol
        protocol = "text" if requested == "text" else "tools"
        tool_specs = json.loads(prompt("analyst_tools.json"))
        session = Session(self.llm, outcome, role=inp.role, phase=inp.phase)
        session.messages.extend(self.messages(inp, protocol, held))
        tools_seen = False
        submitted: AnalystReport | None = None
        state = {"passed": False}

        async def execute(action: _Action, turn: int) -> str:
            nonlocal submitted
            if action.tool == "invalid":
                return f"Error: {action.error}"
            if action.tool in ("run_python", "run_shell"):
                language: Literal["python", "shell"] = "python" if action.tool == "run_python" else "shell"
                code = action.arguments.get("code" if language == "python" else "command", "")
                return await asyncio.to_thread(self.run_code, inp, workdir, code, language)
            if action.tool == "evaluate_output":
                passed, text, entry = await asyncio.to_thread(
                    self.evaluate, workdir, action.arguments.get("path", ""), held.space
                )
                entry["turn"] = turn
                outcome.evaluations.append(entry)
                if passed:
                    state["passed"] = True
                return text
            if action.tool == "read_skill_file":
                return self.read_skill(inp, str(action.arguments.get("path", "")))
            if action.tool == "submit":
                try:
                    report = AnalystReport.model_validate(action.arguments)
                except ValidationError as err:
                    return f"[submit] not accepted: the report is malformed: {_format_validation_error(err)}"
                if not state["passed"] and turn < inp.max_turns:
                    left = inp.max_turns - turn
                    return render(
                        prompt("analyst_submit_refused.md"), turns_left=left, plural="y" if left == 1 else "ies"
                    ).strip()
                submitted = report
                return "[submit] accepted." + ("" if state["passed"] else " (unvalidated: no fix passed the checker)")
            raise AssertionError(action.tool)  # pragma: no cover

        for turn in range(1, inp.max_turns + 1):
            if turn == inp.max_turns and inp.max_turns > 1:
                session.add("user", prompt("analyst_last_turn.md").strip())
            res = await session.chat(tool_specs if protocol == "tools" else None)
            outcome.turns = turn
            if res.tool_calls:
                tools_seen = True
                for call in res.tool_calls:
                    action = _action_from_call(call.name, call.arguments)
                    obs = await execute(action, turn) if submitted is None else "[skipped: the report was submitted]"
                    session.add("tool", obs, tool_call_id=call.id)
                if submitted is not None:
                    break
                continue
            actions = parse_analyst_text(res.content)
            if protocol == "tools" and requested == "auto" and not tools_seen:
                protocol = "text"
                outcome.notes.append(f"turn {turn}: no tool call; switched to the text protocol")
                if not actions:
                    session.add(
                        "user", "Use this protocol from now on:\n\n" + prompt("analyst_error_text_protocol.md").strip()
                    )
                    continue
            if not actions:
                session.add("user", prompt("analyst_no_action.md").strip())
                continue
            observations = []
            for action in actions:
                observations.append(await execute(action, turn))
                if submitted is not None:
                    break
            if submitted is not None:
                break
            session.add("user", "\n\n".join(observations))
        outcome.protocol = protocol
        passed_once = state["passed"]
        if submitted is None:
            session.add("user", prompt("analyst_force_submit.md").strip())
            outcome.notes.append("turn budget used up: report forced")
            submitted = await session.ask_json(AnalystReport, tools=tool_specs if protocol == "tools" else None)
        outcome.report = submitted
        outcome.validated = passed_once
        retries = inp.edit_retries if (passed_once or inp.retry_unvalidated) else 0
        outcome.result = await edit_step(
            session, inp, submitted, retries=retries, tools=tool_specs if protocol == "tools" else None
        )


def _secret_name(name: str) -> bool:

    return bool(SECRET_NAME.search(name))


def make_analyst(kind: str, llm):
    if kind == "agentic":
        return AgenticErrorAnalyst(llm)
    if kind == "single-call":
        return SingleCallErrorAnalyst(llm)
    if kind == "success":
        return SuccessAnalyst(llm)
    raise UsageError(f"unknown analyst {kind!r} (analysts: {', '.join(ANALYST_KINDS)})")


# ---------------------------------------------------------------------- skill creation
class SkillDraft(BaseModel):
    model_config = ConfigDict(extra="ignore")
    skill_md: str = Field(min_length=1)
    references: dict[str, str] = Field(default_factory=dict)


async def create_skill_files_async(
    llm, name: str, description: str, *, role: str = ROLE, phase: str = "init"
) -> dict[str, bytes]:
    """A first draft of skill ``name`` from the model's own knowledge, linted.

    A draft with lint findings goes back once with the findings; a second failure is a
    :class:`T2SError` listing them. Returns skill-relative paths -> bytes.
    """

    outcome = AnalystOutcome(analyst="skill-create")
    session = Session(llm, outcome, role=role, phase=phase)
    session.add("system", prompt("skill_create_system.md").strip() + "\n")
    session.add(
        "user", render(prompt("skill_create_task.md"), name=name, description=" ".join(description.split())).strip()
    )
    findings_text = ""
    for attempt in (1, 2):
        draft = await session.ask_json(SkillDraft)
        files: dict[str, bytes] = {SKILL_FILE: _ensure_nl(draft.skill_md).encode("utf-8")}
        problems: list[str] = []
        for path, text in draft.references.items():
            rel = path.strip().lstrip("./")
            if not re.match(r"^references/[a-z0-9][a-z0-9_-]*\.md$", rel):
                problems.append(f"{path}: reference files must be named references/<topic>.md (a-z, 0-9, '-', '_')")
                continue
            files[rel] = _ensure_nl(text).encode("utf-8")
        findings = lint_files(name, files, strict=True, limits=Limits())
        problems += [f.render() for f in findings]
        if not problems:
            return files
        findings_text = "\n".join(f"- {p}" for p in problems)
        if attempt == 1:
            session.add("user", render(prompt("skill_create_retry.md"), findings=findings_text).strip())
    raise T2SError(
        f"the drafted skill {name!r} does not pass lint after a retry; nothing was written:\n{findings_text}"
    )


def create_skill_files(llm, name: str, description: str) -> dict[str, bytes]:
    """Synchronous :func:`create_skill_files_async` (closes the client's connections)."""
    return llm.run(create_skill_files_async(llm, name, description))


def _ensure_nl(text: str) -> str:
    text = text.replace("\r\n", "\n")
    return text if text.endswith("\n") else text + "\n"


__all__ = [
    "AgenticErrorAnalyst",
    "AnalysisInput",
    "AnalystOutcome",
    "AnalystReport",
    "EditsReply",
    "LessonOut",
    "SingleCallErrorAnalyst",
    "SuccessAnalyst",
    "create_skill_files",
    "create_skill_files_async",
    "lesson_leaks",
    "lesson_topic",
    "make_analyst",
    "parse_analyst_text",
]
