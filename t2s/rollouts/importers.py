"""``t2s import``: trajectories other agents produced, as :class:`~t2s.agent.trajectory.Trajectory`.

Formats (one file each; bad lines are reported as ``PATH:LINE: reason`` and skipped,
the rest is imported):

``openai-jsonl``
    One conversation per line: a JSON object ``{"messages": [...]}`` in OpenAI chat
    format (``system`` / ``user`` / ``assistant`` with optional ``tool_calls`` / ``tool``
    with ``tool_call_id``; content a string, ``null`` or a list of text parts). Optional
    keys: ``id``, ``task_id``, ``verdict`` (``passed`` | ``failed`` | ``unlabelled``),
    ``model``, ``suite``, ``split``, ``metadata`` (kept in ``meta``). A line that is a
    bare JSON list is taken as the messages. Tool calls named ``run_python`` /
    ``python`` (argument ``code``) or ``run_shell`` / ``bash`` (``command``) become the
    trajectory's scripts; assistant text in t2s's text protocol (fenced code) too.

``claude-code``
    A Claude Code session file (``~/.claude/projects/<project>/<session>.jsonl``): lines
    of ``type`` ``user`` / ``assistant`` whose ``message.content`` is a string or a list
    of blocks (``text``, ``thinking``, ``tool_use``, ``tool_result``). Assistant lines that
    share a ``message.id`` (one block per line) are merged; tool results pair with their
    ``tool_use`` by id; sidechain (sub-agent) lines and bookkeeping lines (``summary``,
    ``system``, ``file-history-snapshot``, ``progress``...) are skipped silently. One
    trajectory per ``sessionId``. ``Bash`` commands become scripts.

``t2s``
    Our own trajectory JSON: one object, a JSON list of objects, or JSONL.

Verdicts: ``--verdict`` labels every imported trajectory; without it a line's own
``verdict`` is kept, else ``unlabelled``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from t2s.agent.actions import parse_text_actions
from t2s.agent.trajectory import (
    Message,
    Outcome,
    Step,
    TokenUsage,
    ToolCallRecord,
    Trajectory,
    load_trajectory,
    now_iso,
    safe_id,
    trajectory_path,
)
from t2s.errors import UsageError
from t2s.record.runs import RunManifest, RunRecord
from t2s.skill.repo import skill_dir_of

FORMATS = ("openai-jsonl", "claude-code", "t2s")
IMPORT_VERDICTS: tuple[Outcome, ...] = ("passed", "failed", "unlabelled")
#: What a line's own ``verdict`` may say (an errored run is kept as such).
_LINE_VERDICTS: tuple[Outcome, ...] = (*IMPORT_VERDICTS, "errored")
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


@dataclass
class ImportProblem:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ParsedFile:
    path: str
    format: str
    trajectories: list[Trajectory] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    lines: int = 0


class _BadLine(Exception):
    pass


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UsageError(f"{path}: cannot read: {err.strerror or err}") from None
    text = raw.decode("utf-8", errors="replace")
    yield from enumerate(text.splitlines(), start=1)


#: Deeper JSON than this is refused: no transcript needs it, and Python's JSON
#: decoder and encoder (and pydantic) fail on a few thousand levels.
MAX_JSON_DEPTH = 64


class _Unwritable(_BadLine):
    """Well-formed text t2s refuses to store: NaN/Infinity, or nesting too deep."""


def _reject_constant(name: str) -> Any:
    raise _Unwritable(f"{name} is not a number JSON allows")


def _json_line(line: str) -> Any:
    """A JSON value; NaN/Infinity (which JSON does not have) and very deep nesting are
    bad lines, so nothing that cannot be written back as JSON gets into a run."""
    try:
        data = json.loads(line, parse_constant=_reject_constant)
    except ValueError as err:
        raise _BadLine(f"not valid JSON: {err}") from None
    except RecursionError:
        raise _Unwritable(f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    if _too_deep(data, MAX_JSON_DEPTH):
        raise _Unwritable(f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
    return data


def _too_deep(data: Any, limit: int) -> bool:
    """Whether ``data`` nests lists and objects more than ``limit`` levels (no recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return False


def _token_count(value: Any, where: str) -> int:
    """A token count from an imported file: a whole number >= 0 (null/absent = 0)."""
    if value is None:
        return 0
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value != value
        or value < 0
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise _BadLine(f"{where} must be a whole number of tokens, not {value!r}")
    return int(value)


def _check_verdict(value: Any, where: str = "verdict") -> Outcome:
    if value is None:
        return "unlabelled"
    if value is True:
        return "passed"
    if value is False:
        return "failed"
    if not isinstance(value, str) or value not in _LINE_VERDICTS:
        raise _BadLine(f"{where} {value!r} is not one of {', '.join(IMPORT_VERDICTS)}")
    return value


# ---------------------------------------------------------------------------- messages -> steps
def _text(content: Any, where: str) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict):
                if part.get("type") in (None, "text", "input_text", "output_text"):
                    parts.append(str(part.get("text", "")))
                elif part.get("type") == "image_url":
                    parts.append("[image]")
            else:
                raise _BadLine(f"{where}.content[{i}] is a {type(part).__name__}, not a content part")
        return "".join(parts)
    raise _BadLine(f"{where}.content is a {type(content).__name__}, not a string or a list of parts")


def _openai_message(raw: Any, i: int) -> Message:
    where = f"messages[{i}]"
    if not isinstance(raw, dict):
        raise _BadLine(f"{where} is a {type(raw).__name__}, not a message object")
    role = raw.get("role")
    if role not in _ROLES:
        raise _BadLine(f"{where}: unknown role {role!r} (roles: {', '.join(_ROLES)})")
    calls = []
    for j, tc in enumerate(raw.get("tool_calls") or []):
        fn = tc.get("function") if isinstance(tc, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _BadLine(f"{where}.tool_calls[{j}] has no function name")
        args = fn.get("arguments", "")
        if not isinstance(args, str):
            args = json.dumps(args)
        calls.append(ToolCallRecord(id=str(tc.get("id") or f"call_{i}_{j}"), name=fn["name"], arguments=args))
    if role == "function":  # legacy function results
        role = "tool"
    if role == "developer":
        role = "system"
    return Message(
        role=role,
        content=_text(raw.get("content"), where),
        tool_calls=calls,
        tool_call_id=raw.get("tool_call_id"),
        name=raw.get("name"),
    )


def _script_of(tool: str, args: dict[str, Any]) -> str | None:
    low = tool.lower()
    if isinstance(args.get("code"), str) and low in (
        "run_python",
        "python",
        "run_code",
        "execute_python",
        "ipython",
        "jupyter",
        "code_interpreter",
    ):
        return args["code"]
    if isinstance(args.get("command"), str) and low in (
        "run_shell",
        "bash",
        "shell",
        "run_bash",
        "terminal",
        "execute_command",
    ):
        return f"# shell\n{args['command']}"
    if isinstance(args.get("code"), str):
        return args["code"]
    return None


def steps_from_messages(messages: list[Message]) -> tuple[list[Step], list[str]]:
    """Steps (action + observation) and scripts recovered from a chat transcript."""

    steps: list[Step] = []
    scripts: list[str] = []
    results = {m.tool_call_id: m for m in messages if m.role == "tool" and m.tool_call_id}
    turn = 0
    for idx, msg in enumerate(messages):
        if msg.role != "assistant":
            continue
        turn += 1
        if msg.tool_calls:
            for call in msg.tool_calls:
                try:
                    args = json.loads(call.arguments or "{}")
                except ValueError:
                    args = {"raw": call.arguments}
                if not isinstance(args, dict):
                    args = {"value": args}
                result = results.get(call.id)
                script = _script_of(call.name, args)
                if script is not None:
                    scripts.append(script)
                steps.append(
                    Step(
                        index=len(steps) + 1,
                        turn=turn,
                        tool=call.name,
                        arguments=args,
                        observation=(result.content or "") if result else "",
                        call_id=call.id,
                    )
                )
            continue
        actions = parse_text_actions(msg.content)
        if not actions:
            continue
        following = next((m for m in messages[idx + 1 :] if m.role in ("user", "assistant")), None)
        observation = following.content or "" if following is not None and following.role == "user" else ""
        for action in actions:
            script = _script_of(action.tool, action.arguments)
            if script is not None:
                scripts.append(script)
            steps.append(
                Step(
                    index=len(steps) + 1,
                    turn=turn,
                    tool=action.tool,
                    arguments=action.arguments,
                    observation=observation,
                )
            )
    return steps, scripts


def _first_user_text(messages: list[Message]) -> str:
    return next((m.content or "" for m in messages if m.role == "user"), "")


# ---------------------------------------------------------------------------- formats
def parse_openai_jsonl(path: Path, *, verdict: Outcome | None = None) -> ParsedFile:
    """One OpenAI chat conversation per line (see the module docstring)."""
    path = Path(path)
    out = ParsedFile(str(path), "openai-jsonl")
    for n, line in _lines(path):
        if not line.strip():
            continue
        out.lines += 1
        try:
            data = _json_line(line)
            if isinstance(data, list):
                data = {"messages": data}
            if not isinstance(data, dict):
                raise _BadLine(f"a line must be a JSON object with 'messages', not a {type(data).__name__}")
            raw_messages = data.get("messages")
            if not isinstance(raw_messages, list) or not raw_messages:
                raise _BadLine("'messages' must be a non-empty list of chat messages")
            messages = [_openai_message(m, i) for i, m in enumerate(raw_messages)]
            if not any(m.role == "assistant" for m in messages):
                raise _BadLine("the conversation has no assistant message")
            label = _check_verdict(data.get("verdict")) if verdict is None else verdict
            raw_usage = data.get("usage")
            usage = raw_usage if isinstance(raw_usage, dict) else {}
            task_id = str(data.get("task_id") or data.get("id") or f"{path.stem}-L{n}")
            steps, scripts = steps_from_messages(messages)
            meta = {"import": {"path": str(path), "line": n, "format": "openai-jsonl"}}
            if isinstance(data.get("metadata"), dict):
                meta["metadata"] = data["metadata"]
            out.trajectories.append(
                Trajectory(
                    id=safe_id(str(data.get("id") or f"{path.stem}-L{n}")),
                    task_id=task_id,
                    suite=str(data.get("suite") or ""),
                    split=str(data.get("split") or ""),
                    instruction=str(data.get("instruction") or _first_user_text(messages)),
                    model=str(data.get("model") or ""),
                    protocol="imported",
                    protocol_used="tools" if any(m.tool_calls for m in messages) else "text",
                    messages=messages,
                    steps=steps,
                    scripts=scripts,
                    verdict=label,
                    stop_reason="imported",
                    usage=TokenUsage(
                        prompt_tokens=_token_count(usage.get("prompt_tokens"), "usage.prompt_tokens"),
                        completion_tokens=_token_count(usage.get("completion_tokens"), "usage.completion_tokens"),
                    ),
                    source="import:openai-jsonl",
                    meta=meta,
                )
            )
        except _BadLine as err:
            out.problems.append(ImportProblem(str(path), n, str(err)))
    return out


_CC_SKIP_TYPES = {
    "summary",
    "system",
    "file-history-snapshot",
    "progress",
    "queue-operation",
    "permission-mode",
    "checkpoint",
    "attachment",
}


def _cc_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if content is None:
        return []
    if not isinstance(content, list):
        raise _BadLine(f"{where} is a {type(content).__name__}, not a string or a list of blocks")
    for i, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _BadLine(f"{where}[{i}] is not a content block (an object with 'type')")
    return content


def _cc_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return "" if content is None else json.dumps(content)


class _Session:
    def __init__(self, sid: str):
        self.sid = sid
        self.messages: list[Message] = []
        self.errors: set[str] = set()
        self.usage = TokenUsage()
        self.model = ""
        self.first_ts: str | None = None
        self.last_ts: str | None = None
        self.cwd = ""
        self.last_assistant_id: str | None = None
        self.counted_usage: set[str] = set()


def parse_claude_code(path: Path, *, verdict: Outcome | None = None, task_id: str | None = None) -> ParsedFile:
    """A Claude Code session JSONL file (see the module docstring)."""
    path = Path(path)
    out = ParsedFile(str(path), "claude-code")
    sessions: dict[str, _Session] = {}
    for n, line in _lines(path):
        if not line.strip():
            continue
        out.lines += 1
        try:
            data = _json_line(line)
            if not isinstance(data, dict):
                raise _BadLine(f"a line must be a JSON object, not a {type(data).__name__}")
            kind = data.get("type")
            if kind in _CC_SKIP_TYPES or data.get("isSidechain") is True:
                continue
            if kind not in ("user", "assistant"):
                if isinstance(kind, str):
                    continue  # bookkeeping types Claude Code adds over time
                raise _BadLine("a line needs a string 'type'")
            message = data.get("message")
            if not isinstance(message, dict):
                raise _BadLine(f"a {kind!r} line needs a 'message' object")
            sid = str(data.get("sessionId") or path.stem)
            sess = sessions.setdefault(sid, _Session(sid))
            ts = data.get("timestamp")
            if isinstance(ts, str):
                sess.first_ts = sess.first_ts or ts
                sess.last_ts = ts
            sess.cwd = sess.cwd or str(data.get("cwd") or "")
            blocks = _cc_blocks(message.get("content"), "message.content")
            if kind == "assistant":
                _cc_assistant(sess, message, blocks)
            else:
                _cc_user(sess, blocks)
        except _BadLine as err:
            out.problems.append(ImportProblem(str(path), n, str(err)))
    for sess in sessions.values():
        if not any(m.role == "assistant" for m in sess.messages):
            continue
        steps, scripts = steps_from_messages(sess.messages)
        for step in steps:
            if step.call_id in sess.errors:
                step.exit_code = 1
        out.trajectories.append(
            Trajectory(
                id=safe_id(sess.sid),
                task_id=task_id or sess.sid,
                instruction=_first_user_text(sess.messages),
                model=sess.model,
                protocol="imported",
                protocol_used="tools",
                messages=sess.messages,
                steps=steps,
                scripts=scripts,
                verdict=verdict or "unlabelled",
                stop_reason="imported",
                usage=sess.usage,
                source="import:claude-code",
                meta={"import": {"path": str(path), "format": "claude-code", "session": sess.sid, "cwd": sess.cwd}},
            )
        )
        out.trajectories[-1].timings.started_at = sess.first_ts
        out.trajectories[-1].timings.finished_at = sess.last_ts
    return out


def _cc_assistant(sess: _Session, message: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
    mid = message.get("id")
    text_parts, calls = [], []
    for block in blocks:
        if block["type"] == "text":
            text_parts.append(str(block.get("text", "")))
        elif block["type"] == "tool_use":
            if not isinstance(block.get("name"), str):
                raise _BadLine("a tool_use block needs a 'name'")
            calls.append(
                ToolCallRecord(
                    id=str(block.get("id") or f"toolu_{len(sess.messages)}"),
                    name=block["name"],
                    arguments=json.dumps(block.get("input") or {}),
                )
            )
    usage = message.get("usage")
    if not isinstance(usage, dict) or (mid is not None and mid in sess.counted_usage):
        usage = None  # none given, or this message's usage is counted already
    if usage is not None:  # checked before the session changes: a bad line leaves no trace
        prompt = sum(
            _token_count(usage.get(k), f"message.usage.{k}")
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        )
        completion = _token_count(usage.get("output_tokens"), "message.usage.output_tokens")
    if isinstance(message.get("model"), str) and message["model"] != "<synthetic>":
        sess.model = message["model"]
    if usage is not None:
        if mid is not None:
            sess.counted_usage.add(mid)
        sess.usage.calls += 1
        sess.usage.prompt_tokens += prompt
        sess.usage.completion_tokens += completion
    last = sess.messages[-1] if sess.messages else None
    if mid is not None and mid == sess.last_assistant_id and last is not None and last.role == "assistant":
        if text_parts:
            last.content = "\n".join(filter(None, [last.content or "", *text_parts])) or None
        last.tool_calls.extend(calls)
        return
    sess.messages.append(Message(role="assistant", content="\n".join(text_parts) or None, tool_calls=calls))
    sess.last_assistant_id = mid


def _cc_user(sess: _Session, blocks: list[dict[str, Any]]) -> None:
    sess.last_assistant_id = None
    text_parts = []
    for block in blocks:
        if block["type"] == "tool_result":
            call_id = block.get("tool_use_id")
            if not isinstance(call_id, str):
                raise _BadLine("a tool_result block needs a 'tool_use_id'")
            if block.get("is_error"):
                sess.errors.add(call_id)
            sess.messages.append(
                Message(role="tool", tool_call_id=call_id, content=_cc_result_text(block.get("content")))
            )
        elif block["type"] == "text":
            text_parts.append(str(block.get("text", "")))
        elif block["type"] == "image":
            text_parts.append("[image]")
    if text_parts:
        sess.messages.append(Message(role="user", content="\n".join(text_parts)))


def parse_t2s(path: Path, *, verdict: Outcome | None = None) -> ParsedFile:
    """t2s trajectories: one JSON object, a JSON list, or JSON lines."""
    path = Path(path)
    out = ParsedFile(str(path), "t2s")
    lines = list(_lines(path))
    whole = "\n".join(line for _, line in lines).strip()
    items: list[tuple[int, Any]] = []
    try:
        data = _json_line(whole) if whole else None
    except _Unwritable as err:  # one JSON document, refused as a whole
        data = None
        out.problems.append(ImportProblem(str(path), 1, str(err)))
    except _BadLine:  # not one JSON document: JSON lines
        data = None
        for n, line in lines:
            if not line.strip():
                continue
            try:
                items.append((n, _json_line(line)))
            except _BadLine as err:
                out.problems.append(ImportProblem(str(path), n, str(err)))
    else:
        if isinstance(data, list):
            items = [(i + 1, item) for i, item in enumerate(data)]  # "line" = item number
        elif data is not None:
            items = [(1, data)]
    out.lines = len(items) + len(out.problems)
    for n, item in items:
        try:
            traj = load_trajectory(item, where="trajectory")
        except UsageError as err:
            out.problems.append(ImportProblem(str(path), n, err.message.removeprefix("trajectory: ")))
            continue
        traj.meta = {
            **traj.meta,
            "import": {"path": str(path), "line": n, "format": "t2s", "original_source": traj.source},
        }
        traj.source = "import:t2s"
        if verdict is not None:
            traj.verdict = verdict
        out.trajectories.append(traj)
    return out


def parse_file(path: Path, fmt: str, *, verdict: str | None = None, task_id: str | None = None) -> ParsedFile:
    if fmt not in FORMATS:
        raise UsageError(f"unknown import format {fmt!r} (formats: {', '.join(FORMATS)})")
    if verdict is not None and verdict not in IMPORT_VERDICTS:
        raise UsageError(f"--verdict {verdict!r} (verdicts: {', '.join(IMPORT_VERDICTS)})")
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: " + ("not a regular file" if path.exists() else "no such file"))
    if fmt == "openai-jsonl":
        parsed = parse_openai_jsonl(path, verdict=verdict)
    elif fmt == "claude-code":
        parsed = parse_claude_code(path, verdict=verdict, task_id=task_id)
    else:
        parsed = parse_t2s(path, verdict=verdict)
    if task_id is not None:
        for traj in parsed.trajectories:
            traj.task_id = task_id
    return parsed


# ---------------------------------------------------------------------------- into a run
@dataclass
class ImportSummary:
    run: str
    files: list[dict[str, Any]] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    #: Trajectories whose id was already in the run (not imported again).
    existing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "files": self.files,
            "imported": self.imported,
            "existing": self.existing,
            "problems": self.problems,
        }


def import_trajectories(
    store,
    config,
    *,
    run: str,
    paths: list[Path],
    fmt: str,
    verdict: str | None = None,
    task_id: str | None = None,
    rev: str | None = None,
    replace: bool = False,
) -> ImportSummary:
    """Parse ``paths`` and append the trajectories to run ``run`` (created if needed,
    with S0 = ``rev`` or ``HEAD``). Ids already in the run are left alone unless
    ``replace``. All new trajectories land in one commit."""

    record = RunRecord(store, run)
    summary = ImportSummary(run=run)
    parsed_files = [parse_file(Path(p), fmt, verdict=verdict, task_id=task_id) for p in paths]
    existing_ids = {p.rsplit("/", 1)[-1].removesuffix(".json") for p in record.list("trajectories")}
    files: dict[str, Any] = {}
    batch: set[str] = set()
    for parsed in parsed_files:
        counts: dict[str, Any] = {
            "path": parsed.path,
            "format": parsed.format,
            "imported": 0,
            "skipped": len(parsed.problems),
            "existing": 0,
        }
        summary.problems += [str(p) for p in parsed.problems]
        for traj in parsed.trajectories:
            base, k = traj.id, 2
            while traj.id in batch:  # two conversations with the same id in this import
                traj.id = f"{base}-{k}"
                k += 1
            if traj.id in existing_ids and not replace:
                summary.existing.append(traj.id)
                counts["existing"] += 1
                continue
            batch.add(traj.id)
            traj.timings.finished_at = traj.timings.finished_at or now_iso()
            files[trajectory_path(traj.id)] = traj.to_json()
            summary.imported.append(traj.id)
            counts["imported"] += 1
        summary.files.append(counts)
    if not files:
        return summary
    if record.exists():
        manifest = record.manifest()
    else:
        commit = store.resolve(rev or "HEAD")
        manifest = RunManifest(
            run=run,
            s0=commit,
            skill_dir=skill_dir_of(store, config, commit),
            suite="",
            split="",
            options={"imported": True},
        )
        record.create(manifest)
    for path in files:
        traj = load_trajectory(files[path])
        traj.skill_dir = traj.skill_dir or manifest.skill_dir
        files[path] = traj.to_json()
    record.write(
        files,
        f"t2s run {run}: import {len(files)} trajectories ({fmt})",
        "\n".join(f"{f['path']}: {f['imported']} imported, {f['skipped']} bad line(s)" for f in summary.files),
    )
    previous = record.manifest().stages.get("import")
    total = len(summary.imported) + int((previous.summary.get("imported") if previous else 0) or 0)
    record.set_stage(
        "import",
        "done",
        {
            "imported": total,
            "last": {
                "format": fmt,
                "imported": len(summary.imported),
                "skipped": len(summary.problems),
                "existing": len(summary.existing),
            },
        },
    )
    return summary
