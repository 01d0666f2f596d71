"""More ``t2s import`` formats: the traces other agent harnesses and evaluators write.

``trace2skill``
    The official Trace2Skill code's run directory (``run_spreadsheetbench.py``): a
    ``results.json`` (``results[].id``, ``results[].test_cases[]`` with ``input_file``,
    ``output_file``, ``success``, ``turns``), one chat log per test case written by its
    ``ChatHistoryLogger`` (``<agent>_<id>-<k>.md``: ``## [n] ROLE`` sections and a
    ``## RESULT`` block; or the ``.jsonl`` variant with ``session_start`` / ``message`` /
    ``result`` records), the output workbooks ``<id>/<k>_<id>_output.xlsx``, and for
    repeated runs one ``seed_<s>/`` folder each. One trajectory per test case and seed;
    the verdict is the case's ``success`` in ``results.json``; the output is attached.

``trace2skill-jsonl``
    Labelled rows: ``id``, ``label`` (``T+`` passed, ``T-`` failed), ``metadata`` (the
    task), ``trajectory`` = ``{conversation: [str, ...], solution, status, test_cases}``,
    ``eval``. Roles by position: 0 user, odd assistant, even >= 2 user (execution results).

``codex``
    A Codex CLI session file (``~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``): lines
    ``{timestamp, type, payload}`` of type ``session_meta``, ``turn_context`` (model),
    ``response_item`` (``message`` / ``function_call`` / ``function_call_output`` /
    ``custom_tool_call`` / ``custom_tool_call_output`` / ``reasoning``) and ``event_msg``
    (``token_count`` gives the usage). Unknown types are skipped silently.

``inspect``
    inspect_ai eval logs (``.eval`` / ``.json``), read with ``inspect_ai.log.read_eval_log``
    (the optional extra ``t2s[inspect]``). One trajectory per sample and epoch; the
    verdict is the first score (``C`` / ``I``, true / false, 1 / 0).

``otel``
    OpenTelemetry spans exported as OTLP JSON (``{"resourceSpans": [...]}``, one export
    per line or one document) whose attributes follow the GenAI semantic conventions:
    ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (role + parts), ``gen_ai.
    system_instructions``, ``gen_ai.request.model``, ``gen_ai.usage.*``. One trajectory
    per trace: the chat span with the longest input, plus its output; usage summed.

``atif``
    Harbor's Agent Trajectory Interchange Format (RFC 0001, ATIF-v1.x): one JSON object
    (or one per line) with ``schema_version``, ``session_id``, ``agent`` and ``steps``
    (``source`` system / user / agent, ``message``, ``tool_calls``
    [``tool_call_id``, ``function_name``, ``arguments``], ``observation.results``
    [``source_call_id``, ``content``], ``metrics``). A verdict may sit in ``extra.verdict``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from t2s.agent.trajectory import Message, Outcome, TokenUsage, ToolCallRecord, Trajectory, safe_id
from t2s.errors import UsageError
from t2s.rollouts.importers import (
    ImportProblem,
    ParsedFile,
    _BadLine,
    _check_verdict,
    _first_user_text,
    _json_line,
    _lines,
    _token_count,
    steps_from_messages,
)


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (optional objects)."""
    return value if isinstance(value, dict) else {}


def _trajectory(
    messages: list[Message],
    *,
    fmt: str,
    traj_id: str,
    task_id: str,
    verdict: Outcome,
    meta: dict[str, Any],
    model: str = "",
    usage: TokenUsage | None = None,
    case: int = 1,
    instruction: str = "",
) -> Trajectory:
    steps, scripts = steps_from_messages(messages)
    return Trajectory(
        id=safe_id(traj_id),
        task_id=task_id,
        case=case,
        instruction=instruction or _first_user_text(messages),
        model=model,
        protocol="imported",
        protocol_used="tools" if any(m.tool_calls for m in messages) else "text",
        messages=messages,
        steps=steps,
        scripts=scripts,
        turns=sum(1 for m in messages if m.role == "assistant"),
        verdict=verdict,
        stop_reason="imported",
        usage=usage or TokenUsage(),
        source=f"import:{fmt}",
        meta={"import": {"format": fmt, **meta}},
    )


# ---------------------------------------------------------------------------- trace2skill-jsonl
_LABELS: dict[str, Outcome] = {"T+": "passed", "T-": "failed"}


def parse_trace2skill_jsonl(path: Path, *, verdict: Outcome | None = None) -> ParsedFile:
    """Labelled Trace2Skill rows (see the module docstring)."""
    out = ParsedFile(str(path), "trace2skill-jsonl")
    for n, line in _lines(path):
        if not line.strip():
            continue
        out.lines += 1
        try:
            out.trajectories.append(_t2s_row(_json_line(line), path, n, verdict))
        except _BadLine as err:
            out.problems.append(ImportProblem(str(path), n, str(err)))
    return out


def _t2s_row(data: Any, path: Path, n: int, verdict: Outcome | None) -> Trajectory:
    if not isinstance(data, dict):
        raise _BadLine(f"a row must be a JSON object, not a {type(data).__name__}")
    traj = data.get("trajectory")
    if not isinstance(traj, dict):
        raise _BadLine("a row needs a 'trajectory' object with 'conversation'")
    conversation = traj.get("conversation")
    if not isinstance(conversation, list) or len(conversation) < 2:
        raise _BadLine("'trajectory.conversation' must be a list of at least 2 strings (user, assistant)")
    for i, turn in enumerate(conversation):
        if not isinstance(turn, str):
            raise _BadLine(f"trajectory.conversation[{i}] is a {type(turn).__name__}, not a string")
    label = data.get("label")
    if verdict is not None:
        outcome = verdict
    elif label in _LABELS:
        outcome = _LABELS[label]
    elif label is None:
        outcome = _check_verdict(data.get("verdict"))
    else:
        raise _BadLine(f"label {label!r} is not T+ or T-")
    # Roles by position: the task, then the agent and the execution results in turn.
    messages = [Message(role="assistant" if i % 2 else "user", content=text) for i, text in enumerate(conversation)]
    metadata = _obj(data.get("metadata"))
    row_id = str(data.get("id") if data.get("id") is not None else f"{path.stem}-L{n}")
    task_id = str(metadata.get("id") or row_id)
    meta: dict[str, Any] = {"path": str(path), "line": n, "label": label, "metadata": metadata}
    for key in ("test_cases", "solution", "status"):
        if key in traj:
            meta[key] = traj[key]
    if "eval" in data:
        meta["eval"] = data["eval"]
    return _trajectory(
        messages,
        fmt="trace2skill-jsonl",
        traj_id=row_id,
        task_id=task_id,
        verdict=outcome,
        meta=meta,
        instruction=str(metadata.get("instruction") or conversation[0]),
    )


# ---------------------------------------------------------------------------- trace2skill run dir
_MD_HEADER = re.compile(r"^## \[(\d+)\] ([A-Z_]+)\s*$")
_MD_RESULT = re.compile(r"^## RESULT\s*$")
_LOG_ROLES = {"SYSTEM": "system", "USER": "user", "ASSISTANT": "assistant"}


@dataclass
class _ChatLog:
    messages: list[Message]
    success: bool | None = None


def read_chat_log(path: Path) -> _ChatLog:
    """A Trace2Skill ``ChatHistoryLogger`` file, markdown or JSON lines; bad -> _BadLine."""
    if path.suffix == ".jsonl":
        return _read_chat_jsonl(path)
    messages: list[Message] = []
    current: tuple[str, list[str]] | None = None
    success: bool | None = None
    in_result = False

    def close() -> None:
        if current is not None:
            text = "\n".join(current[1]).strip("\n")
            text = re.sub(r"\n*---\s*$", "", text)  # the logger's separator after each message
            messages.append(Message(role=current[0], content=text))

    for _n, line in _lines(path):
        header = _MD_HEADER.match(line)
        if header:
            close()
            role = _LOG_ROLES.get(header.group(2))
            if role is None:
                raise _BadLine(f"line {_n}: unknown role {header.group(2)!r} in a chat log header")
            current, in_result = (role, []), False
        elif _MD_RESULT.match(line):
            close()
            current, in_result = None, True
        elif in_result and line.startswith("- Success:"):
            success = line.split(":", 1)[1].strip().lower() == "true"
        elif current is not None:
            current[1].append(line)
    close()
    if not messages:
        raise _BadLine("no '## [n] ROLE' sections: not a Trace2Skill chat log")
    return _ChatLog(messages, success)


def _read_chat_jsonl(path: Path) -> _ChatLog:
    messages: list[Message] = []
    success = None
    for n, line in _lines(path):
        if not line.strip():
            continue
        data = _json_line(line)
        if not isinstance(data, dict):
            raise _BadLine(f"line {n}: a log record must be a JSON object")
        if data.get("type") == "message":
            role = str(data.get("role", "")).lower()
            if role not in ("system", "user", "assistant"):
                raise _BadLine(f"line {n}: unknown role {data.get('role')!r}")
            messages.append(Message(role=role, content=str(data.get("content") or "")))
        elif data.get("type") == "result":
            success = bool(data.get("success"))
    if not messages:
        raise _BadLine("no message records: not a Trace2Skill chat log")
    return _ChatLog(messages, success)


def _case_of(test_case: dict[str, Any], default: int) -> int:
    name = Path(str(test_case.get("input_file") or test_case.get("output_file") or "")).name
    m = re.match(r"^(\d+)_", name)
    return int(m.group(1)) if m else default


def parse_trace2skill_dir(root: Path, *, verdict: Outcome | None = None) -> ParsedFile:
    """An official Trace2Skill run directory (see the module docstring)."""
    out = ParsedFile(str(root), "trace2skill")
    results_files = sorted(p for p in root.rglob("results*.json") if p.is_file())
    if not results_files:
        raise UsageError(
            f"{root}: no results.json under it: not a Trace2Skill run directory",
            hint="point t2s import --format trace2skill at the run's --output_dir",
        )
    logs = sorted(p for p in root.rglob("*") if p.suffix in (".md", ".jsonl") and p.is_file())
    for results in results_files:
        scope = _seed_scope(results, root)
        seed = scope.name.removeprefix("seed_") if scope != root else None
        try:
            payload = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            out.problems.append(ImportProblem(str(results), 1, f"not valid JSON: {err}"))
            continue
        rows = payload.get("results") if isinstance(payload, dict) else None
        if not isinstance(rows, list):
            out.problems.append(ImportProblem(str(results), 1, "no 'results' list"))
            continue
        seed = seed if seed is not None else (str(payload["seed"]) if payload.get("seed") is not None else None)
        scoped_logs = [p for p in logs if scope in p.parents]
        for i, row in enumerate(rows, start=1):
            out.lines += 1
            try:
                out.trajectories += _t2s_dir_row(row, results, scope, scoped_logs, seed, payload, verdict, out)
            except _BadLine as err:
                out.problems.append(ImportProblem(str(results), i, f"results[{i - 1}]: {err}"))
    return out


def _seed_scope(results: Path, root: Path) -> Path:
    for parent in [results.parent, *results.parent.parents]:
        if parent.name.startswith("seed_"):
            return parent
        if parent == root:
            break
    return root


def _t2s_dir_row(
    row: Any,
    results: Path,
    scope: Path,
    logs: list[Path],
    seed: str | None,
    payload: dict[str, Any],
    verdict: Outcome | None,
    out: ParsedFile,
) -> list[Trajectory]:
    if not isinstance(row, dict) or row.get("id") is None:
        raise _BadLine("a result needs an 'id'")
    task_id = str(row["id"])
    cases = row.get("test_cases") or [{"success": row.get("success")}]
    if not isinstance(cases, list):
        raise _BadLine("'test_cases' must be a list")
    found = []
    for j, tc in enumerate(cases, start=1):
        if not isinstance(tc, dict):
            raise _BadLine(f"test_cases[{j - 1}] is not an object")
        k = _case_of(tc, j)
        log = _find_log(logs, f"{task_id}-{k}") or (_find_log(logs, task_id) if len(cases) == 1 else None)
        if log is None:
            out.problems.append(ImportProblem(str(results), 0, f"task {task_id} case {k}: no chat log found"))
            continue
        try:
            chat = read_chat_log(log)
        except _BadLine as err:
            out.problems.append(ImportProblem(str(log), 1, str(err)))
            continue
        success = tc.get("success", row.get("success"))
        outcome = verdict or ("passed" if success is True else "failed" if success is False else "unlabelled")
        name = f"{task_id}-{k}" + (f"-seed{seed}" if seed is not None else "")
        traj = _trajectory(
            chat.messages,
            fmt="trace2skill",
            traj_id=name,
            task_id=task_id,
            verdict=outcome,
            case=k,
            model=str(payload.get("model") or ""),
            instruction=str(row.get("instruction") or ""),
            meta={"path": str(results), "log": str(log), "seed": seed, "test_case": tc, "error": row.get("error")},
        )
        output = _find_output(scope, results.parent, task_id, tc)
        if output is not None:
            out.outputs[traj.id] = output
        found.append(traj)
    return found


def _find_log(logs: list[Path], instance: str) -> Path | None:
    # ChatHistoryLogger names a log ``<agent_name>_<instance_id>.<ext>``.
    return next((p for p in logs if p.stem.rsplit("_", 1)[-1] == instance and p.stem != instance), None) or next(
        (p for p in logs if p.stem == instance), None
    )


def _find_output(scope: Path, base: Path, task_id: str, tc: dict[str, Any]) -> Path | None:
    name = Path(str(tc.get("output_file") or "")).name
    if not name:
        return None
    for candidate in (base / task_id / name, base / name, scope / task_id / name):
        if candidate.is_file():
            return candidate
    return next((p for p in scope.rglob(name) if p.is_file()), None)


# ---------------------------------------------------------------------------- codex
def parse_codex(path: Path, *, verdict: Outcome | None = None) -> ParsedFile:
    """A Codex CLI session file (see the module docstring)."""
    out = ParsedFile(str(path), "codex")
    messages: list[Message] = []
    usage = TokenUsage()
    session, model, cwd = path.stem, "", ""
    errors: set[str] = set()
    for n, line in _lines(path):
        if not line.strip():
            continue
        out.lines += 1
        try:
            data = _json_line(line)
            if not isinstance(data, dict) or not isinstance(data.get("type"), str):
                raise _BadLine("a line must be a JSON object with a string 'type'")
            payload = data.get("payload")
            if not isinstance(payload, dict):
                raise _BadLine(f"a {data['type']!r} line needs a 'payload' object")
            kind = data["type"]
            if kind == "session_meta":
                session = str(payload.get("id") or session)
                cwd = str(payload.get("cwd") or "")
            elif kind == "turn_context":
                model = str(payload.get("model") or model)
            elif kind == "event_msg" and payload.get("type") == "token_count":
                info = payload.get("info")
                total = info.get("total_token_usage") if isinstance(info, dict) else None
                if isinstance(total, dict):  # cumulative: the last one is the session's
                    usage = TokenUsage(
                        calls=usage.calls + 1,
                        prompt_tokens=_token_count(total.get("input_tokens"), "total_token_usage.input_tokens"),
                        completion_tokens=_token_count(total.get("output_tokens"), "total_token_usage.output_tokens"),
                    )
            elif kind == "response_item":
                _codex_item(payload, messages, errors)
        except _BadLine as err:
            out.problems.append(ImportProblem(str(path), n, str(err)))
    if any(m.role == "assistant" for m in messages):
        traj = _trajectory(
            messages,
            fmt="codex",
            traj_id=session,
            task_id=session,
            verdict=verdict or "unlabelled",
            meta={"path": str(path), "session": session, "cwd": cwd},
            model=model,
            usage=usage,
        )
        for step in traj.steps:
            if step.call_id in errors:
                step.exit_code = 1
        out.trajectories.append(traj)
    return out


def _codex_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _codex_item(item: dict[str, Any], messages: list[Message], errors: set[str]) -> None:
    kind = item.get("type")
    if kind == "message":
        role = item.get("role")
        text = _codex_text(item.get("content"))
        if role == "assistant":
            messages.append(Message(role="assistant", content=text))
        elif role in ("user", "developer", "system"):
            if text.lstrip().startswith(("<environment_context>", "<user_instructions>", "# AGENTS.md")):
                return  # boilerplate Codex adds to every session
            messages.append(Message(role="user" if role == "user" else "system", content=text))
    elif kind in ("function_call", "custom_tool_call", "local_shell_call"):
        name = str(item.get("name") or ("shell" if kind == "local_shell_call" else ""))
        if not name:
            raise _BadLine(f"a {kind} item needs a 'name'")
        call_id = str(item.get("call_id") or item.get("id") or f"call_{len(messages)}")
        raw = item.get("arguments", item.get("input", item.get("action", {})))
        args = _codex_arguments(name, raw)
        call = ToolCallRecord(id=call_id, name=name, arguments=json.dumps(args))
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant":  # calls of one model turn join its message
            last.tool_calls.append(call)
        else:
            messages.append(Message(role="assistant", tool_calls=[call]))
    elif kind in ("function_call_output", "custom_tool_call_output"):
        answered = item.get("call_id")
        if not isinstance(answered, str):
            raise _BadLine(f"a {kind} item needs a 'call_id'")
        output = item.get("output")
        text = output if isinstance(output, str) else json.dumps(output)
        try:  # the shell tool wraps its result: {"output": ..., "metadata": {"exit_code": ...}}
            wrapped = json.loads(text)
        except ValueError:
            wrapped = None
        if isinstance(wrapped, dict) and "output" in wrapped:
            text = str(wrapped["output"])
            if (wrapped.get("metadata") or {}).get("exit_code") not in (0, None):
                errors.add(answered)
        messages.append(Message(role="tool", tool_call_id=answered, content=text))


def _codex_arguments(name: str, raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {"input": raw}  # custom tools (apply_patch) take free text
    if not isinstance(raw, dict):
        return {"value": raw}
    command = raw.get("command")
    if isinstance(command, list):  # ["bash", "-lc", "ls"] -> the script itself
        parts = [str(c) for c in command]
        raw = {**raw, "command": parts[-1] if len(parts) >= 3 and parts[1] in ("-lc", "-c") else " ".join(parts)}
    return raw


# ---------------------------------------------------------------------------- ATIF
def parse_atif(path: Path, *, verdict: Outcome | None = None) -> ParsedFile:
    """ATIF trajectories: one JSON document, or one per line (see the module docstring)."""
    out = ParsedFile(str(path), "atif")
    lines = list(_lines(path))
    whole = "\n".join(line for _, line in lines).strip()
    items: list[tuple[int, Any]] = []
    try:
        items = [(1, _json_line(whole))] if whole else []
    except _BadLine:
        for n, line in lines:
            if line.strip():
                try:
                    items.append((n, _json_line(line)))
                except _BadLine as err:
                    out.problems.append(ImportProblem(str(path), n, str(err)))
    out.lines = len(items) + len(out.problems)
    for n, item in items:
        try:
            out.trajectories.append(_atif(item, path, n, verdict))
        except _BadLine as err:
            out.problems.append(ImportProblem(str(path), n, str(err)))
    return out


def _atif(data: Any, path: Path, n: int, verdict: Outcome | None) -> Trajectory:
    if not isinstance(data, dict) or not str(data.get("schema_version", "")).startswith("ATIF"):
        raise _BadLine("not an ATIF trajectory (no 'schema_version' \"ATIF-v1.x\")")
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise _BadLine("'steps' must be a non-empty list")
    agent = _obj(data.get("agent"))
    messages: list[Message] = []
    usage = TokenUsage()
    model = str(agent.get("model_name") or "")
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or step.get("source") not in ("system", "user", "agent"):
            raise _BadLine(f"steps[{i}] needs a 'source' of system, user or agent")
        text = step.get("message")
        text = text if isinstance(text, str) else json.dumps(text)
        if step["source"] != "agent":
            messages.append(Message(role=step["source"], content=text))
            continue
        calls = []
        for j, call in enumerate(step.get("tool_calls") or []):
            if not isinstance(call, dict) or not isinstance(call.get("function_name"), str):
                raise _BadLine(f"steps[{i}].tool_calls[{j}] needs a 'function_name'")
            calls.append(
                ToolCallRecord(
                    id=str(call.get("tool_call_id") or f"call_{i}_{j}"),
                    name=call["function_name"],
                    arguments=json.dumps(call.get("arguments") or {}),
                )
            )
        messages.append(Message(role="assistant", content=text or None, tool_calls=calls))
        observation = step.get("observation")
        for result in (observation or {}).get("results") or [] if isinstance(observation, dict) else []:
            if isinstance(result, dict):
                content = result.get("content")
                content = content if isinstance(content, str) else json.dumps(content)
                if result.get("source_call_id"):
                    messages.append(Message(role="tool", tool_call_id=str(result["source_call_id"]), content=content))
                else:
                    messages.append(Message(role="user", content=content))
        metrics = step.get("metrics")
        if isinstance(metrics, dict):
            usage.calls += 1
            usage.prompt_tokens += _token_count(metrics.get("prompt_tokens"), f"steps[{i}].metrics.prompt_tokens")
            usage.completion_tokens += _token_count(
                metrics.get("completion_tokens"), f"steps[{i}].metrics.completion_tokens"
            )
        model = str(step.get("model_name") or model)
    extra = _obj(data.get("extra"))
    session = str(data.get("session_id") or f"{path.stem}-L{n}")
    return _trajectory(
        messages,
        fmt="atif",
        traj_id=session,
        task_id=str(extra.get("task_id") or session),
        verdict=verdict or _check_verdict(extra.get("verdict"), "extra.verdict"),
        meta={"path": str(path), "line": n, "agent": agent, "notes": data.get("notes")},
        model=model,
        usage=usage,
    )


# ---------------------------------------------------------------------------- OpenTelemetry GenAI
def _otel_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_otel_value(v) for v in (value["arrayValue"] or {}).get("values", [])]
    return None


def _otel_spans(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):  # a bare list of spans
        return [s for s in data if isinstance(s, dict)]
    if not isinstance(data, dict):
        raise _BadLine(f"an export must be a JSON object, not a {type(data).__name__}")
    if "resourceSpans" not in data:
        if "spanId" in data or "span_id" in data:
            return [data]
        raise _BadLine("no 'resourceSpans': not an OTLP JSON trace export")
    spans = []
    for rs in data.get("resourceSpans") or []:
        for ss in (rs or {}).get("scopeSpans") or (rs or {}).get("instrumentationLibrarySpans") or []:
            spans += [s for s in (ss or {}).get("spans") or [] if isinstance(s, dict)]
    return spans


def _span_attributes(span: dict[str, Any]) -> dict[str, Any]:
    attrs = span.get("attributes") or {}
    if isinstance(attrs, dict):
        return attrs
    return {a["key"]: _otel_value(a.get("value")) for a in attrs if isinstance(a, dict) and "key" in a}


def _otel_messages(raw: Any, where: str) -> list[Message]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise _BadLine(f"{where} is not JSON") from None
    if not isinstance(raw, list):
        raise _BadLine(f"{where} must be a list of messages")
    messages = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise _BadLine(f"{where}[{i}] needs a 'role'")
        texts: list[str] = []
        calls: list[ToolCallRecord] = []
        role = msg["role"]
        for part in msg.get("parts") or []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("content", "")))
            elif kind == "tool_call":
                args = part.get("arguments")
                calls.append(
                    ToolCallRecord(
                        id=str(part.get("id") or f"call_{i}_{len(calls)}"),
                        name=str(part.get("name") or "tool"),
                        arguments=args if isinstance(args, str) else json.dumps(args or {}),
                    )
                )
            elif kind == "tool_call_response":
                response = part.get("response")
                messages.append(
                    Message(
                        role="tool",
                        tool_call_id=str(part.get("id") or ""),
                        content=response if isinstance(response, str) else json.dumps(response),
                    )
                )
        if role in ("tool",) and not texts:
            continue
        messages.append(
            Message(role=role if role != "developer" else "system", content="\n".join(texts) or None, tool_calls=calls)
        )
    return messages


def parse_otel(path: Path, *, verdict: Outcome | None = None) -> ParsedFile:
    """OTLP JSON spans with GenAI attributes (see the module docstring)."""
    out = ParsedFile(str(path), "otel")
    lines = list(_lines(path))
    whole = "\n".join(line for _, line in lines).strip()
    exports: list[tuple[int, Any]] = []
    try:
        exports = [(1, _json_line(whole))] if whole else []
    except _BadLine:
        for n, line in lines:
            if line.strip():
                try:
                    exports.append((n, _json_line(line)))
                except _BadLine as err:
                    out.problems.append(ImportProblem(str(path), n, str(err)))
    traces: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for n, export in exports:
        out.lines += 1
        try:
            for span in _otel_spans(export):
                attrs = _span_attributes(span)
                if not any(str(k).startswith("gen_ai.") for k in attrs):
                    continue
                trace = str(span.get("traceId") or span.get("trace_id") or "trace")
                traces.setdefault(trace, []).append((n, {**span, "attributes": attrs}))
        except _BadLine as err:
            out.problems.append(ImportProblem(str(path), n, str(err)))
    for trace, spans in traces.items():
        try:
            out.trajectories.append(_otel_trace(trace, spans, path, verdict))
        except _BadLine as err:
            out.problems.append(ImportProblem(str(path), spans[0][0], f"trace {trace}: {err}"))
    return out


def _otel_trace(trace: str, spans: list[tuple[int, dict[str, Any]]], path: Path, verdict: Outcome | None) -> Trajectory:
    usage, best, model = TokenUsage(), None, ""
    for _n, span in sorted(spans, key=lambda s: int(s[1].get("startTimeUnixNano") or 0)):
        attrs = span["attributes"]
        if "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs:
            continue
        usage.calls += 1
        usage.prompt_tokens += _token_count(attrs.get("gen_ai.usage.input_tokens"), "gen_ai.usage.input_tokens")
        usage.completion_tokens += _token_count(attrs.get("gen_ai.usage.output_tokens"), "gen_ai.usage.output_tokens")
        model = str(attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model") or model)
        inputs = _otel_messages(attrs.get("gen_ai.input.messages") or "[]", "gen_ai.input.messages")
        if best is None or len(inputs) >= len(best[0]):
            outputs = _otel_messages(attrs.get("gen_ai.output.messages") or "[]", "gen_ai.output.messages")
            system = attrs.get("gen_ai.system_instructions")
            head = []
            if system:
                parts = json.loads(system) if isinstance(system, str) and system.startswith("[") else system
                text = (
                    "\n".join(str(p.get("content", "")) for p in parts if isinstance(p, dict))
                    if isinstance(parts, list)
                    else str(parts)
                )
                head = [Message(role="system", content=text)]
            best = (inputs, head + inputs + outputs)
    if best is None or not any(m.role == "assistant" for m in best[1]):
        raise _BadLine("no chat span with gen_ai.input.messages / gen_ai.output.messages and an assistant reply")
    return _trajectory(
        best[1],
        fmt="otel",
        traj_id=trace,
        task_id=trace,
        verdict=verdict or "unlabelled",
        meta={"path": str(path), "trace": trace, "spans": len(spans)},
        model=model,
        usage=usage,
    )


# ---------------------------------------------------------------------------- inspect_ai
def parse_inspect(path: Path, *, verdict: Outcome | None = None) -> ParsedFile:
    """An inspect_ai eval log, read with inspect_ai's own reader (see the module docstring)."""
    try:
        from inspect_ai.log import read_eval_log  # optional extra: t2s[inspect]
    except ImportError:
        raise UsageError(
            "the inspect format needs inspect_ai", hint="pip install 't2s[inspect]' (or pip install inspect-ai)"
        ) from None
    out = ParsedFile(str(path), "inspect")
    try:
        log = read_eval_log(str(path))
    except Exception as err:  # inspect_ai raises many kinds on a bad file
        out.problems.append(ImportProblem(str(path), 1, f"inspect_ai cannot read it: {type(err).__name__}: {err}"))
        return out
    model = str(getattr(log.eval, "model", "") or "")
    for i, sample in enumerate(log.samples or [], start=1):
        out.lines += 1
        try:
            messages = [_inspect_message(m) for m in sample.messages]
            if not any(m.role == "assistant" for m in messages):
                raise _BadLine("the sample has no assistant message")
            usage = TokenUsage()
            for u in (getattr(sample, "model_usage", None) or {}).values():
                usage.calls += 1
                usage.prompt_tokens += int(u.input_tokens or 0)
                usage.completion_tokens += int(u.output_tokens or 0)
            label = verdict or _inspect_verdict(sample.scores)
            epoch = int(getattr(sample, "epoch", 1) or 1)
            out.trajectories.append(
                _trajectory(
                    messages,
                    fmt="inspect",
                    traj_id=f"{sample.id}-e{epoch}",
                    task_id=str(sample.id),
                    verdict=label,
                    meta={"path": str(path), "sample": i, "task": log.eval.task, "epoch": epoch},
                    model=model,
                    usage=usage,
                )
            )
        except _BadLine as err:
            out.problems.append(ImportProblem(str(path), i, f"sample {i}: {err}"))
    return out


def _inspect_message(msg: Any) -> Message:
    content = msg.content
    if not isinstance(content, str):
        content = "".join(str(getattr(part, "text", "") or "") for part in content)
    calls = [
        ToolCallRecord(id=str(tc.id), name=str(tc.function), arguments=json.dumps(tc.arguments or {}))
        for tc in (getattr(msg, "tool_calls", None) or [])
    ]
    return Message(role=msg.role, content=content, tool_calls=calls, tool_call_id=getattr(msg, "tool_call_id", None))


def _inspect_verdict(scores: Any) -> Outcome:
    if not scores:
        return "unlabelled"
    value = next(iter(scores.values())).value
    if value in ("C", True, 1, 1.0):
        return "passed"
    if value in ("I", False, 0, 0.0):
        return "failed"
    return "unlabelled"
