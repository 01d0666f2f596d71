"""The leak guard: a patch must not carry a task's own answers (distinctive values of
the gold output, task ids) into the skill, where they would make the held-out score a
lie.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import (
    Any,
)

from t2s.patches.diff import _looks_like_diff, added_text

#: Values too common to be evidence of a leaked answer.
COMMON_WORDS = frozenset(
    """true false none null nan n/a yes no total sum average mean median count name names date
    value values data table sheet sheet1 sheet2 column columns row rows cell cells result results
    answer answers error errors output input number numbers text item items other unknown blank
    empty left right first last high low yes. january february march april may june july august
    september october november december monday tuesday wednesday thursday friday saturday sunday""".split()  # noqa: SIM905 - a long word list reads best as text
)


_NUMBER_RE = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+-]?\d+)?$")


MIN_STRING_LENGTH = 4


MIN_SIGNIFICANT_DIGITS = 3


MIN_ID_LENGTH = 3


@dataclass(frozen=True)
class _Needle:
    label: str
    pattern: re.Pattern


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    text = str(value).strip()
    text = text.lstrip("$€£¥").rstrip("%").strip()
    if not text or not _NUMBER_RE.match(text) or not any(c.isdigit() for c in text):
        return None
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None


def _significant_digits(number: Decimal) -> int:
    if not number.is_finite():
        return 0
    if number == number.to_integral_value():
        digits = str(abs(int(number))).rstrip("0")
    else:
        digits = format(abs(number).normalize(), "f").replace(".", "").lstrip("0")
    return len(digits)


def _number_variants(raw: str, number: Decimal) -> set[str]:
    variants = {raw.strip().lstrip("$€£¥").rstrip("%").strip()}
    if number == number.to_integral_value():
        integer = int(number)
        variants |= {str(integer), f"{integer:,}"}
    else:
        plain = format(number.normalize(), "f")
        variants |= {plain, format(number.normalize(), ",f")}
        if plain.startswith("0."):
            variants.add(plain[1:])  # .125
    return {v for v in variants if v}


def _needle_for_value(value: Any) -> _Needle | None:
    number = _as_number(value)
    raw = str(value).strip()
    if number is not None:
        if _significant_digits(number) < MIN_SIGNIFICANT_DIGITS:
            return None
        alternatives = "|".join(re.escape(v) for v in sorted(_number_variants(raw, number), key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w.])(?<!\d,)(?:{alternatives})(?!\w)(?![.,]\d)")
        return _Needle(raw, pattern)
    text = " ".join(raw.split())
    if len(text) < MIN_STRING_LENGTH or text.casefold() in COMMON_WORDS or not any(c.isalnum() for c in text):
        return None
    body = r"\s+".join(re.escape(part) for part in text.split(" "))
    left = r"(?<!\w)" if (text[0].isalnum() or text[0] == "_") else ""
    right = r"(?!\w)" if (text[-1].isalnum() or text[-1] == "_") else ""
    return _Needle(text, re.compile(left + body + right, re.IGNORECASE))


def _needle_for_id(task_id: Any) -> _Needle | None:
    text = str(task_id).strip()
    if len(text) < MIN_ID_LENGTH:
        return None
    pattern = re.compile(rf"(?<![\w])(?<![\w][-./]){re.escape(text)}(?![\w])(?![-./]\w)", re.IGNORECASE)
    return _Needle(text, pattern)


def is_distinctive(value: Any) -> bool:
    """Whether the leak guard polices ``value`` (see :func:`find_leaks`)."""
    return _needle_for_value(value) is not None


def distinctive_values(values: Iterable[Any], visible: Iterable[str] = ()) -> list[str]:
    """The distinctive ``values`` that do not occur (as tokens) in any ``visible`` text.

    Use it to turn a task's gold values into ``forbidden_values``: values the agent
    could read in the instruction or input are not evidence of a leak.
    """
    visible = list(visible)
    out: list[str] = []
    for value in values:
        needle = _needle_for_value(value)
        if needle is None or needle.label in out:
            continue
        if any(needle.pattern.search(text) for text in visible):
            continue
        out.append(needle.label)
    return out


def find_leaks(
    diff_or_added_text: str,
    *,
    forbidden_values: Iterable[Any] = (),
    forbidden_ids: Iterable[Any] = (),
) -> list[str]:
    """Reasons this text carries a task-specific answer or a held-out task id.

    A diff is reduced to its added lines first. Values: numbers must have at least
    3 significant digits (trailing zeros of integers do not count: 125, 3.14 and 2024
    count; 42, 0.5 and 1000 do not) and match as whole tokens in their usual
    spellings (``1234.5``, ``1,234.5``); booleans are ignored. Strings must be at
    least 4 characters, not a common word, and match case-insensitively on word
    boundaries with any whitespace. Ids (at least 3 characters) match as whole tokens:
    not inside a longer token such as ``task-123x`` or ``13-12``.
    """
    text = added_text(diff_or_added_text) if _looks_like_diff(diff_or_added_text) else diff_or_added_text
    reasons: list[str] = []
    seen: set[tuple[str, str]] = set()
    for kind, needles in (
        ("held-out task id", (_needle_for_id(i) for i in forbidden_ids)),
        ("task-specific value", (_needle_for_value(v) for v in forbidden_values)),
    ):
        for needle in needles:
            if needle is None or (kind, needle.label) in seen:
                continue
            seen.add((kind, needle.label))
            match = needle.pattern.search(text)
            if match:
                line = text[text.rfind("\n", 0, match.start()) + 1 :]
                line = line.split("\n", 1)[0].strip()
                if len(line) > 160:
                    line = line[:157] + "..."
                what = (
                    "a skill must not name held-out tasks"
                    if kind.startswith("held")
                    else ("skills carry general lessons, not the answers of particular tasks")
                )
                reasons.append(f"the patch contains the {kind} {needle.label!r} ({what}): {line!r}")
    return reasons
