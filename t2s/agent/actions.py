"""What an agent can do, and how its replies are read: the tool specs (native tool
calls) and the plain-text action protocol (fenced code, ``READ_SKILL_FILE:``, ``FINISH``,
``FINAL ANSWER:``) that small local models follow more reliably."""

from __future__ import annotations

import ast
import contextlib
import json
import re
import textwrap
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


_ALIASES = {
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


def _action_from_call(name: str, args: Any, call_id: str | None = None) -> Action:
    name = (name or "").strip()
    name = _ALIASES.get(name, name)
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


@dataclass
class _Fence:
    """A fenced block of a reply: where it opens, its language tag, its code (dedented,
    without the protocol lines written inside it) and the prose line just before it."""

    start: int
    lang: str
    body: str
    label: str


#: An opening fence at the start of a line, maybe indented (inside a list item).
_OPEN_LINE_RE = re.compile(r"^(?P<indent>[ \t]*)```[ \t]*(?P<lang>[A-Za-z0-9_+.-]*)[^`]*$")
#: An opening fence with a language tag at the end of a line of prose ("Run this: ```python").
_OPEN_AFTER_PROSE_RE = re.compile(r"^(?P<indent>)\S.*?```[ \t]*(?P<lang>[A-Za-z0-9_+.-]+)[ \t]*$")
_CLOSE_LINE_RE = re.compile(r"^[ \t]*```[ \t]*$")
#: A protocol line written inside a fence (by small models, often at the end of their
#: code, or in an unclosed fence): it is an action of the reply, not code.
#: (Only with a colon: ``FINAL_ANSWER = 3`` is Python.)
_PROTOCOL_LINE_RE = re.compile(
    r"^[ \t]*(?:READ[_ ]SKILL[_ ]FILE[ \t]*:|FINAL[ _]ANSWER[ \t]*:|(?-i:FINISH)[ \t.!]*$)", re.IGNORECASE
)


def _scan(text: str) -> tuple[list[_Fence], str]:
    """The fences of ``text`` and its prose: ``text`` with the fences blanked out (same
    offsets, newlines kept) except the protocol lines written inside a fence. A fence
    left open runs to the end of the reply."""
    prose = list(text)
    fences: list[_Fence] = []

    def blank(start: int, end: int) -> None:
        for i in range(start, end):
            if prose[i] != "\n":
                prose[i] = " "

    opened: dict[str, Any] | None = None
    label = ""
    pos = 0
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        start, pos = pos, pos + len(raw)
        if opened is None:
            m = _OPEN_LINE_RE.match(line) or _OPEN_AFTER_PROSE_RE.match(line)
            if m is None:
                if line.strip():
                    label = line.strip()
                continue
            fence_at = start + line.index("```")
            opened = {"start": fence_at, "indent": m.group("indent"), "lang": m.group("lang").lower(), "code": []}
            opened["label"] = line[: line.index("```")].strip() or label
            blank(fence_at, start + len(line))
            continue
        if _CLOSE_LINE_RE.match(line):
            code_line, closing = "", True
            blank(start, start + len(line))
        elif line.rstrip().endswith("```"):  # "print(x)```": a last line of code, then the fence closes
            code_line, closing = line.rstrip()[:-3], True
            blank(start + len(code_line), start + len(line))
        else:
            code_line, closing = line, False
        if not _PROTOCOL_LINE_RE.match(code_line):  # a protocol line stays in the prose
            if code_line.strip() or not closing:
                indent = opened["indent"]
                opened["code"].append(code_line[len(indent) :] if code_line.startswith(indent) else code_line.lstrip())
            blank(start, start + len(code_line))
        if closing:
            fences.append(_fence(opened))
            opened, label = None, ""
    if opened is not None:
        fences.append(_fence(opened))
    return fences, "".join(prose)


def _fence(opened: dict[str, Any]) -> _Fence:
    body = textwrap.dedent("\n".join(opened["code"]))
    return _Fence(opened["start"], opened["lang"], body.strip("\n") + "\n" if body.strip() else "", opened["label"])


#: Words of a prose line that announces output rather than code ("Output:", "This prints:").
_OUTPUT_LABEL_RE = re.compile(
    r"\b(?:output|outputs|result|results|prints?|returns?|displays?|shows?)\b[^\n]*:[\s*_]*$", re.I
)


def _runs_as_python(fence: _Fence) -> bool:
    """Whether a Python (or untagged) fence is code to run, not a shown value: code that
    parses must do something (a call, an import, an assignment, a loop...); code that
    does not parse runs (the model sees its error) only when tagged as Python and not
    announced as output."""
    try:
        tree = ast.parse(fence.body)
    except (SyntaxError, ValueError):
        return fence.lang != "" and not _OUTPUT_LABEL_RE.search(fence.label)
    return _does_something(tree)


def _does_something(tree: ast.Module) -> bool:
    for statement in tree.body:
        if isinstance(statement, ast.Pass) or (isinstance(statement, ast.AnnAssign) and statement.value is None):
            continue  # "Total: 13" parses as a bare annotation
        if not isinstance(statement, ast.Expr):
            return True
        if any(isinstance(node, (ast.Call, ast.Await, ast.NamedExpr)) for node in ast.walk(statement)):
            return True
    return False


_TRIPLE_QUOTED_RE = re.compile(r"(\"\"\"|''')(.*?)\1", re.DOTALL)
_CALL_NAME_RE = re.compile(r"\"name\"\s*:\s*\"([A-Za-z_]+)\"")
_OPEN_TRIPLE_RE = re.compile(r"\"([A-Za-z_]+)\"\s*:\s*(?:\"\"\"|''')(.*?)(?:\"\"\"|'''|\Z)", re.DOTALL)


def _json_call(body: str) -> tuple[str, Any] | None:
    """(name, arguments) of a tool call written as JSON in a fence, or None. Small models
    write the code argument as a Python triple-quoted string, sometimes never closed."""
    body = body.strip()
    if not body.startswith("{"):
        return None
    for candidate in (body, _TRIPLE_QUOTED_RE.sub(lambda m: json.dumps(m.group(2)), body)):
        try:
            data = json.loads(candidate, strict=False)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str) and _is_tool_name(data["name"]):
            args = data.get("arguments", data.get("parameters", {}))
            if isinstance(args, str):
                with contextlib.suppress(ValueError):
                    args = json.loads(args)
            return data["name"], args
    name, argument = _CALL_NAME_RE.search(body), _OPEN_TRIPLE_RE.search(body)
    if name and argument and _is_tool_name(name.group(1)):
        value = re.sub(r"(?:\n[ \t]*\}[ \t]*)+\s*\Z", "", argument.group(2))  # the braces after an unclosed string
        return name.group(1), {argument.group(1): value.rstrip() + "\n"}
    return None


def _is_tool_name(name: str) -> bool:
    return _ALIASES.get(name.strip(), name.strip()) in TOOL_NAMES


def _fence_action(fence: _Fence) -> Action | None:
    """The action of one fence, or None when it holds no action (empty, shown output,
    another language)."""
    if not fence.body.strip():
        return None
    if fence.lang in ("json", ""):
        call = _json_call(fence.body)
        if call is not None:
            return _action_from_call(call[0], call[1])
    if fence.lang in _PY_LANGS:
        return Action("run_python", {"code": fence.body}) if _runs_as_python(fence) else None
    if fence.lang in _SH_LANGS:
        return Action("run_shell", {"command": fence.body.strip()})
    return None


def parse_text_actions(content: str | None) -> list[Action]:
    """The actions in a plain-text reply, in the order they appear (lenient); a finish
    comes last. An episode runs only the first (:mod:`t2s.agent.episode`)."""
    text = _THINK_RE.sub("", content or "")
    found: list[tuple[int, Action]] = []
    calls: list[tuple[int, int]] = []
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
        calls.append((m.start(), m.end()))
    for start, end in reversed(calls):  # a <tool_call> block is neither prose nor a fence
        text = text[:start] + "".join("\n" if c == "\n" else " " for c in text[start:end]) + text[end:]
    fences, prose = _scan(text)
    for fence in fences:
        action = _fence_action(fence)
        if action is not None:
            found.append((fence.start, action))
    for m in _READ_RE.finditer(prose):
        found.append((m.start(), Action("read_skill_file", {"path": m.group(1).strip().rstrip(".,;:")})))
    finish_at = None
    for m in _FINAL_RE.finditer(prose):
        finish_at = (m.start(), Action("finish", {"summary": prose[m.start(1) : m.end(1)].strip()}))
        break
    if finish_at is None:
        bare_finish = _FINISH_RE.search(prose)
        if bare_finish:
            finish_at = (bare_finish.start(), Action("finish", {"summary": ""}))
    actions = [a for _, a in sorted(found, key=lambda item: item[0])]
    if finish_at is not None:
        actions.append(finish_at[1])  # finishing comes after everything else in the reply
    return actions


_FINAL_ANSWER_RE = re.compile(r"^[ \t>*_#-]*FINAL[ _]ANSWER\**[ \t]*[:=]\**[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)


def parse_final_answer(content: str | None) -> str | None:
    """The answer of a ``FINAL ANSWER: ...`` line (outside code, or written inside a
    fence on a line of its own; the last one wins; an empty line after the colon takes
    the following lines up to a blank one). Only offered for suites that accept a
    final answer."""
    _, text = _scan(_THINK_RE.sub("", content or ""))
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
