"""The prompts' edit examples, drawn from the skill being edited.

Models copy the examples they are shown: a 1.5B model answered eleven of eighteen
analyses with the example anchor ``- Open the workbook with openpyxl.``, a line of no
skill it was editing (tests/fixtures/real_model_corpus/). So the locators of the
examples (an anchor line, a heading, the section to add after) are real text of the
skill's SKILL.md: an example copied as written still finds its place. The new text of
the examples stays generic, and :mod:`t2s.patches.placeholders` refuses it when echoed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from t2s.skill.format import SKILL_FILE

#: The examples when no skill is at hand (documentation, estimates).
DEFAULTS = {"line": "- Open the workbook with openpyxl.", "heading": "## Pitfalls", "after": "## Workflow"}
#: A list item that fits on one line: the kind of line an anchor copies best.
_ITEM = re.compile(r"^(?:[-*+]|\d+[.)])\s+\S")
_MAX_LINE = 100


def _body(text: str) -> list[str]:
    """SKILL.md's lines after its frontmatter."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "---":
        for i, line in enumerate(lines[1:], start=1):
            if line.strip() == "---":
                return lines[i + 1 :]
    return lines


def _is_whole_item(lines: list[str], i: int) -> bool:
    """Line ``i`` is a list item of one line (the next line does not continue it)."""
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    return not nxt.startswith((" ", "\t")) or not nxt.strip()


def skill_examples(texts: Mapping[str, str] | None) -> dict[str, str]:
    """An anchor line, a heading and a heading to add after, all taken from SKILL.md:
    the last one-line list item that occurs once, the last ``##`` heading, the first."""
    skill = (texts or {}).get(SKILL_FILE)
    if not skill:
        return dict(DEFAULTS)
    lines = _body(skill)
    headings = [line.rstrip() for line in lines if line.startswith("## ")]
    items = [
        line.rstrip()
        for i, line in enumerate(lines)
        if _ITEM.match(line) and len(line) <= _MAX_LINE and _is_whole_item(lines, i) and skill.count(line) == 1
    ]
    return {
        "line": items[-1] if items else DEFAULTS["line"],
        "heading": headings[-1] if headings else DEFAULTS["heading"],
        "after": headings[0] if headings else DEFAULTS["after"],
    }


def example_values(texts: Mapping[str, str] | None) -> dict[str, str]:
    """The examples as JSON strings, for the ``{example_*}`` placeholders of the prompts."""
    return {f"example_{name}": json.dumps(value, ensure_ascii=False) for name, value in skill_examples(texts).items()}
