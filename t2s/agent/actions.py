"""What an agent can do, and how its replies are read: the tool specs (native tool
calls) and the plain-text action protocol (fenced code, ``READ_SKILL_FILE:``, ``FINISH``,
``FINAL ANSWER:``) that small local models follow more reliably."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from t2s.prompts import load as prompt

PROTOCOLS = ("auto", "tools", "text")


TOOL_NAMES = ("run_python", "run_shell", "read_skill_file", "finish")


@cache
def _tools_json() -> str:
    return prompt("agent_tools.json")


def tool_specs(allow_shell: bool = True) -> list[dict[str, Any]]:
    """The native tool definitions sent with each request."""
    specs = json.loads(_tools_json())
    if not allow_shell:
        specs = [s for s in specs if s["function"]["name"] != "run_shell"]
    return specs


@dataclass
class Action:
    """One action parsed from a reply: ``run_python``, ``run_shell``, ``read_skill_file``,
    ``finish`` or ``invalid``."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str | None = None
    error: str | None = None


_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


_PY_LANGS = {"", "python", "py", "python3", "ipython", "pycon"}


_SH_LANGS = {"bash", "sh", "shell", "console", "zsh", "terminal"}


_READ_RE = re.compile(
    r"^[ \t>*_-]*READ[_ ]SKILL[_ ]FILE\**[ \t]*[:=]?[ \t]*\(?[ \t]*[`'\"]?([^`'\"\s)]+)",
    re.IGNORECASE | re.MULTILINE,
)


_FINISH_RE = re.compile(r"^[ \t>*_#-]*(?:FINISH|FINISHED|DONE)\b[ \t*_.!]*(?:\(.*\))?[ \t]*$", re.MULTILINE)


_FINAL_RE = re.compile(r"<final>(.*?)(?:</final>|\Z)", re.DOTALL | re.IGNORECASE)


_TOOLCALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL | re.IGNORECASE)


_THINK_RE = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)


def _action_from_call(name: str, args: Any, call_id: str | None = None) -> Action:
    name = (name or "").strip()
    aliases = {
        "python": "run_python",
        "run_code": "run_python",
        "execute_python": "run_python",
        "shell": "run_shell",
        "bash": "run_shell",
        "run_bash": "run_shell",
        "read_file": "read_skill_file",
        "read_skill": "read_skill_file",
        "final": "finish",
        "done": "finish",
    }
    name = aliases.get(name, name)
    if not isinstance(args, dict):
        return Action(
            "invalid", {"name": name, "arguments": args}, call_id, f"arguments of {name} must be a JSON object"
        )
    if name not in TOOL_NAMES:
        return Action(
            "invalid", {"name": name, **args}, call_id, f"unknown tool {name!r} (tools: {', '.join(TOOL_NAMES)})"
        )
    key = {"run_python": "code", "run_shell": "command", "read_skill_file": "path"}.get(name)
    if key and not isinstance(args.get(key), str):
        # lenient: a single string argument under another name
        strings = [v for v in args.values() if isinstance(v, str)]
        if len(strings) == 1:
            args = {key: strings[0]}
        else:
            return Action("invalid", {"name": name, **args}, call_id, f"{name} needs a string argument {key!r}")
    return Action(name, dict(args), call_id)


def parse_text_actions(content: str | None) -> list[Action]:
    """The actions in a plain-text reply, in the order they appear (lenient)."""
    text = _THINK_RE.sub("", content or "")
    found: list[tuple[int, Action]] = []
    masked = list(text)

    def mask(start: int, end: int) -> None:
        for i in range(start, end):
            if masked[i] != "\n":
                masked[i] = " "

    for m in _TOOLCALL_RE.finditer(text):
        try:
            data = json.loads(m.group(1))
        except ValueError:
            data = None
        if isinstance(data, dict) and "name" in data:
            args = data.get("arguments", data.get("parameters", {}))
            if isinstance(args, str):
                with contextlib.suppress(ValueError):
                    args = json.loads(args)
            found.append((m.start(), _action_from_call(str(data["name"]), args)))
        mask(m.start(), m.end())
    masked_text = "".join(masked)
    for m in _FENCE_RE.finditer(masked_text):
        lang = m.group(1).lower()
        body = text[m.start(2) : m.end(2)]
        mask(m.start(), m.end())
        if not body.strip():
            continue
        if lang in _PY_LANGS:
            if lang == "" and _looks_like_json_call(body):
                data = json.loads(body)
                found.append((m.start(), _action_from_call(str(data["name"]), data.get("arguments", {}))))
                continue
            found.append((m.start(), Action("run_python", {"code": body.rstrip() + "\n"})))
        elif lang in _SH_LANGS:
            found.append((m.start(), Action("run_shell", {"command": body.strip()})))
        elif lang == "json" and _looks_like_json_call(body):
            data = json.loads(body)
            found.append((m.start(), _action_from_call(str(data["name"]), data.get("arguments", {}))))
    masked_text = "".join(masked)
    for m in _READ_RE.finditer(masked_text):
        found.append((m.start(), Action("read_skill_file", {"path": m.group(1).strip().rstrip(".,;:")})))
    finish_at = None
    for m in _FINAL_RE.finditer(masked_text):
        finish_at = (m.start(), Action("finish", {"summary": text[m.start(1) : m.end(1)].strip()}))
        break
    if finish_at is None:
        bare_finish = _FINISH_RE.search(masked_text)
        if bare_finish:
            finish_at = (bare_finish.start(), Action("finish", {"summary": ""}))
    actions = [a for _, a in sorted(found, key=lambda item: item[0])]
    if finish_at is not None:
        actions.append(finish_at[1])  # finishing comes after everything else in the reply
    return actions


def _looks_like_json_call(body: str) -> bool:
    body = body.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(data, dict)
        and isinstance(data.get("name"), str)
        and data["name"] in (*TOOL_NAMES, "python", "bash", "shell")
    )


_FINAL_ANSWER_RE = re.compile(r"^[ \t>*_#-]*FINAL[ _]ANSWER\**[ \t]*[:=]\**[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


def parse_final_answer(content: str | None) -> str | None:
    """The answer of a ``FINAL ANSWER: ...`` line (outside code fences; the last one
    wins; an empty line after the colon takes the following lines up to a blank one).
    Only offered for suites that accept a final answer."""
    text = _FENCE_RE.sub("", _THINK_RE.sub("", content or ""))
    found = list(_FINAL_ANSWER_RE.finditer(text))
    if not found:
        return None
    m = found[-1]
    answer = m.group(1).strip().strip("*").strip()
    if not answer:
        lines = []
        for line in text[m.end() :].lstrip("\n").splitlines():
            if not line.strip():
                break
            lines.append(line.strip())
        answer = "\n".join(lines)
    return answer


def _finish_with_answer(specs: list[dict[str, Any]], parameter: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool specs with an ``answer`` argument on ``finish`` (the suite's schema)."""
    out = json.loads(json.dumps(specs))
    for spec in out:
        if spec["function"]["name"] == "finish":
            spec["function"]["parameters"].setdefault("properties", {})["answer"] = dict(parameter)
    return out
