"""JSON out of model text: fenced or bare, leniently repaired (trailing commas,
``<think>`` blocks), and validation errors phrased for the repair prompt."""

from __future__ import annotations

import contextlib
import json
import re
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)```", re.DOTALL)


_THINK_RE = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def _strip_trailing_commas(text: str) -> str:
    """Remove commas directly before ``}`` or ``]``, outside strings."""
    out: list[str] = []
    in_string = escaped = False
    i = 0
    while i < len(text):
        ch = text[i]
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif ch == ",":
            j = i + 1
            while j < len(text) and text[j] in " \t\r\n":
                j += 1
            if j < len(text) and text[j] in "}]":
                i += 1
                continue
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _loads_lenient(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(_strip_trailing_commas(text))


def _embedded_json(text: str) -> Any:
    """The first JSON object or array inside prose."""
    decoder = json.JSONDecoder()
    for n, match in enumerate(re.finditer(r"[\[{]", text)):
        if n >= 64:  # prose full of brackets: give up rather than go quadratic
            break
        start = match.start()
        try:
            return decoder.raw_decode(text, start)[0]
        except ValueError:
            pass
        closer = "}" if text[start] == "{" else "]"
        end = text.rfind(closer)
        if end > start:
            try:
                return _loads_lenient(text[start : end + 1])
            except ValueError:
                pass
    raise ValueError("no JSON object found in the answer")


def extract_json(text: str | None) -> Any:
    """The JSON value in a model's answer: fenced (```json), bare, or inside prose.

    Reasoning blocks (``<think>...</think>``) are ignored; trailing commas are
    forgiven. Raises ``ValueError`` with a short reason when nothing parses.
    """
    if text is None or not text.strip():
        raise ValueError("the answer is empty")
    text = _THINK_RE.sub("", text).strip()
    first_error: ValueError | None = None
    for match in _FENCE_RE.finditer(text):
        try:
            return _loads_lenient(match.group(2).strip())
        except ValueError as err:
            first_error = first_error or err
    try:
        return _loads_lenient(text)
    except ValueError as err:
        first_error = first_error or err
    try:
        return _embedded_json(text)
    except ValueError:
        pass
    raise ValueError(f"the answer is not valid JSON ({first_error})")


def _list_fields(schema: type[BaseModel]) -> list[str]:
    return [name for name, field in schema.model_fields.items() if typing.get_origin(field.annotation) is list]


def _near_misses(data: Any, schema: type[BaseModel]) -> list[Any]:
    """What the answer probably meant, for the common slips of shape: JSON (or a fenced
    block of it) inside a string, a bare list where an object with a list field is
    expected, an object whose fields hold JSON as strings."""
    found: list[Any] = []
    if isinstance(data, str):
        with contextlib.suppress(ValueError):
            found.append(extract_json(data))
    if isinstance(data, list):
        found += [{name: data} for name in _list_fields(schema)]
    if isinstance(data, dict):
        fixed = dict(data)
        for key, value in data.items():
            if isinstance(value, str) and value.strip()[:1] in "[{`":
                with contextlib.suppress(ValueError):
                    fixed[key] = extract_json(value)
        if fixed != data:
            found.append(fixed)
    return found


def validate_answer(raw: str | None, schema: type[M]) -> M:
    """An instance of ``schema`` from a model's answer text: :func:`extract_json`, then
    validation; on failure, the near misses of shape (:func:`_near_misses`) are tried, one
    level deep, and the first that validates is the answer. Otherwise the first
    ``ValidationError`` (or the ``ValueError`` of the extraction) is raised."""
    data = extract_json(raw)
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        first = err
    pending = _near_misses(data, schema)
    for candidate in pending:
        for attempt in (candidate, *_near_misses(candidate, schema)):
            try:
                return schema.model_validate(attempt)
            except ValidationError:
                continue
    raise first


def _format_validation_error(err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(top level)"
        value = repr(item.get("input"))
        if len(value) > 80:
            value = value[:77] + "..."
        parts.append(f"{loc}: {item['msg']} (got {value})")
    return "; ".join(parts)


#: The structured-output instruction and the repair message (t2s/prompts/).
STRUCTURED_PROMPT = "structured_output.md"


REPAIR_PROMPT = "structured_repair.md"
