"""The trajectory record: one agent episode on one task, versioned and JSON-able.

Everything downstream reads this (analysts, review, reports, ``t2s import``), so it is
self-contained: the task, the skill it ran with (folder, subtree hash, S0 commit), the
model and the tool protocol actually used, every message and tool call with its result,
the scripts the agent ran, the checker report and the verdict, token usage and timings.

In a run record a trajectory lives at ``trajectories/<id>.json`` and its files (the
output workbook, the scripts) under ``artifacts/<id>/`` (see :mod:`t2s.record.runs`).

``schema_version`` changes only when a field changes meaning or disappears; new
optional fields keep the version. :func:`load_trajectory` refuses newer versions.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from t2s.errors import UsageError
from t2s.faults import ErrorCause

SCHEMA_VERSION = 1

Outcome = Literal["passed", "failed", "errored", "unlabelled"]
OUTCOMES: tuple[str, ...] = ("passed", "failed", "errored", "unlabelled")

TRAJECTORIES_DIR = "trajectories"
ARTIFACTS_DIR = "artifacts"

_SAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def safe_id(text: str, *, max_len: int = 100) -> str:
    """``text`` as a safe path component (letters, digits, ``.``, ``_``, ``-``).

    Unsafe characters become ``_``; a result that differs from ``text`` (or is too
    long) gets a short hash suffix so two different ids never collide.
    """
    raw = str(text)
    clean = _SAFE_RE.sub("_", raw).strip("._-") or "t"
    if clean != raw or len(clean) > max_len:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        clean = f"{clean[: max_len - 9]}-{digest}"
    return clean


def trajectory_id(task_id: str, seed_index: int = 0, seeds: int = 1) -> str:
    """``<task>`` (or ``<task>-s<k>`` when a task runs with several seeds), path-safe."""
    base = safe_id(task_id)
    return f"{base}-s{seed_index}" if seeds > 1 else base


def trajectory_path(traj_id: str) -> str:
    return f"{TRAJECTORIES_DIR}/{traj_id}.json"


def artifacts_prefix(traj_id: str) -> str:
    return f"{ARTIFACTS_DIR}/{traj_id}/"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ToolCallRecord(_Model):
    """One tool call as the model wrote it (arguments verbatim: maybe invalid JSON)."""

    id: str
    name: str
    arguments: str = ""


class Message(_Model):
    """One chat message, OpenAI-shaped: what was sent to or received from the model."""

    role: str  # system | user | assistant | tool
    content: str | None = None
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    #: For ``role="tool"``: the call this message answers.
    tool_call_id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}
                for tc in self.tool_calls
            ]
        if self.tool_call_id is not None:
            msg["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            msg["name"] = self.name
        return msg


class Step(_Model):
    """One action the agent took and what it observed."""

    index: int
    #: The model turn (1-based) that produced the action.
    turn: int
    #: ``run_python`` | ``run_shell`` | ``read_skill_file`` | ``finish`` | ``invalid`` |
    #: anything an imported trajectory's tools were called.
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    observation: str = ""
    exit_code: int | None = None
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0
    #: The tool call id (native protocol), if any.
    call_id: str | None = None
    #: Set for failures of the harness itself (bad arguments, unknown tool...).
    error: str | None = None


class TokenUsage(_Model):
    calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Timings(_Model):
    started_at: str | None = None
    finished_at: str | None = None
    wall_s: float = 0.0
    llm_s: float = 0.0
    exec_s: float = 0.0
    check_s: float = 0.0


class Trajectory(_Model):
    """One agent episode. See the module docstring for where it lives."""

    schema_version: int = SCHEMA_VERSION
    id: str
    task_id: str
    suite: str = ""
    split: str = ""
    case: int = 1
    #: The seed index (0-based) when a task runs several times; the model seed sent.
    seed_index: int = 0
    seed: int | None = None

    #: The task as the agent saw it.
    instruction: str = ""
    answer_position: str = ""

    #: Skill folder inside the repository, its git subtree hash, and the S0 commit.
    skill_dir: str = ""
    skill_tree: str | None = None
    s0: str | None = None

    model: str = ""
    #: Protocol asked for (``auto`` | ``tools`` | ``text``) and the one actually used.
    protocol: str = ""
    protocol_used: str = ""
    #: Why ``auto`` switched to the text protocol (None: it did not).
    protocol_switch: str | None = None

    messages: list[Message] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    #: Artifact file names under ``artifacts/<id>/`` (e.g. ``output.xlsx``).
    outputs: list[str] = Field(default_factory=list)
    #: The code the agent ran, in order (shell commands prefixed with ``# shell``).
    scripts: list[str] = Field(default_factory=list)

    #: The suite's checker report (JSON), if the output was checked.
    check: dict[str, Any] | None = None
    verdict: Outcome = "unlabelled"
    score: float | None = None
    #: Why the episode ended: ``finished`` | ``max_turns`` | ``no_action`` | ``error`` |
    #: ``imported``.
    stop_reason: str = ""
    error: str | None = None
    #: Why an ``errored`` episode ended (the model endpoint, a budget cap, a crash...):
    #: see :mod:`t2s.faults`. None for verdicts and for records of older t2s versions.
    error_cause: ErrorCause | None = None
    #: Reminders sent because the agent tried to finish without writing the output.
    reminders: int = 0
    turns: int = 0

    usage: TokenUsage = Field(default_factory=TokenUsage)
    timings: Timings = Field(default_factory=Timings)
    #: ``rollout`` or ``import:<format>``.
    source: str = "rollout"
    #: Anything else worth keeping (import origin, harness options...).
    meta: dict[str, Any] = Field(default_factory=dict)

    # ------------------------------------------------------------------ views
    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def openai_messages(self) -> list[dict[str, Any]]:
        return [m.to_openai() for m in self.messages]

    def render(self, max_chars: int = 2000) -> str:
        """A readable transcript (for analysts and humans)."""
        lines = [
            f"# Trajectory {self.id}: task {self.task_id} ({self.verdict})",
            f"model {self.model or '?'}, protocol {self.protocol_used or self.protocol or '?'}, "
            f"{len(self.steps)} step(s), stop: {self.stop_reason or '?'}",
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        for step in self.steps:
            lines.append(f"\n## Step {step.index} (turn {step.turn}): {step.tool}")
            for key, value in step.arguments.items():
                text = str(value)
                lines.append(
                    f"{key}:\n{_clip(text, max_chars)}" if "\n" in text else f"{key}: {_clip(text, max_chars)}"
                )
            if step.exit_code is not None:
                lines.append(f"exit code: {step.exit_code}" + (" (timed out)" if step.timed_out else ""))
            if step.observation:
                lines.append("observation:\n" + _clip(step.observation, max_chars))
        if self.check:
            lines.append("\n## Checker")
            lines.append(json.dumps(self.check, indent=1, default=str)[:max_chars])
        return "\n".join(lines) + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit // 2] + "\n...\n" + text[-limit // 2 :]


def load_trajectory(data: bytes | str | dict | None, *, where: str = "trajectory") -> Trajectory:
    """Parse and validate a stored trajectory; a clear error for bad or newer data."""
    if isinstance(data, (bytes, str)):
        try:
            data = json.loads(data)
        except ValueError as err:
            raise UsageError(f"{where}: not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where}: a trajectory is a JSON object")
    version = data.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise UsageError(
            f"{where}: trajectory schema_version {version!r} is newer than this t2s understands ({SCHEMA_VERSION})",
            hint="upgrade t2s",
        )
    try:
        return Trajectory.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()[:5]
        )
        raise UsageError(f"{where}: not a valid trajectory: {problems}") from None


def read_trajectories(record) -> list[Trajectory]:
    """Every trajectory stored in a :class:`t2s.record.runs.RunRecord`, sorted by id."""
    out = []
    for path in record.list(TRAJECTORIES_DIR):
        if path.endswith(".json"):
            out.append(load_trajectory(record.read(path), where=f"{record.ref}:{path}"))
    return out
