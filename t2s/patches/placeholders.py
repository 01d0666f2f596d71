"""Text that stands in for text: empty, ``...``, ``TODO``, or an echo of the prompt's own
example. Models copy the examples they were shown; such an edit or lesson is sent back
with :func:`placeholder_problem`'s reason, never committed.
"""

from __future__ import annotations

import functools
import json
import re

from t2s.prompts import load as load_prompt

#: Prompts whose JSON examples a model may echo (t2s/prompts/).
EXAMPLE_PROMPTS = ("edit_format.md", "analyst_report_format.md", "merger_system.md")

_STAND_INS = {"", "todo", "tbd", "fixme", "n/a", "na", "none", "null", "text", "lesson", "placeholder", "xxx", "..."}
#: A stand-in in angle brackets, as the prompts write them: ``- <the lesson>``.
_ANGLED = re.compile(r"^\s*(?:[-*+]\s+)?<[^<>\n]+>\s*$")
_EXAMPLE_RE = re.compile(r'"(?:text|anchor|old|new|body|content|resolution|reason)"\s*:\s*"((?:[^"\\]|\\.)*)"')


def _key(text: str) -> str:
    """Compare texts without case, list markers, emphasis, punctuation at the ends."""
    text = " ".join(text.split()).casefold()
    text = re.sub(r"^(?:[-*+]\s+|\d+[.)]\s+)+", "", text)
    text = re.sub(r"[*_`]", "", text)
    return text.strip(" .\u2026:;,!'\"<>[](){}")


@functools.cache
def prompt_examples() -> frozenset[str]:
    """The example texts of the prompts (normalised), longer than a word or two."""
    found: set[str] = set()
    for name in EXAMPLE_PROMPTS:
        for match in _EXAMPLE_RE.finditer(load_prompt(name)):
            try:
                value = json.loads(f'"{match.group(1)}"')
            except ValueError:
                continue
            key = _key(value)
            if len(key) >= 12:
                found.add(key)
    return frozenset(found)


def placeholder_problem(text: str | None, what: str = "the text") -> str | None:
    """Why ``text`` is a placeholder (a reason a model can act on), or None."""
    if text is None:
        return f"{what} is missing"
    key = _key(text)
    if key in _STAND_INS or not any(ch.isalnum() for ch in key) or _ANGLED.match(text):
        shown = text.strip() or "empty"
        return f"{what} is a placeholder ({shown[:40]!r}): write the actual text"
    if key in prompt_examples():
        return (
            f"{what} repeats the example of the instructions ({text.strip()[:80]!r}): "
            "write what this case taught, in your own words"
        )
    return None


#: The fields of each edit op that hold new text.
_EDIT_TEXT_FIELDS = {
    "insert": "text",
    "replace": "new",
    "append_to_section": "text",
    "append_to_reference": "text",
    "add_section": "body",
    "create_reference": "content",
}


def edit_placeholder(edit: object) -> str | None:
    """The placeholder problem of one parsed edit's new text (``replace`` may delete: ``""``)."""
    field = _EDIT_TEXT_FIELDS.get(str(getattr(edit, "op", "")))
    value = getattr(edit, field, None) if field else None
    if field is None or not isinstance(value, str) or (field == "new" and value == ""):
        return None
    return placeholder_problem(value, f"`{field}`")
