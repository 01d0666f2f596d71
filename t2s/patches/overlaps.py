"""Which edits of one answer touch the same region of a file (two edits that fight over
one paragraph are sent back rather than applied in an order nobody chose).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import (
    Any,
)

from t2s.patches.edits import (
    EditError,
    find_heading,
    insertion_offset,
    locate,
    normalise_text,
    parse_heading_ref,
    section_end,
)
from t2s.patches.render import _coerce_edits, _decode, _parse_one


@dataclass(frozen=True)
class _Region:
    index: int
    op: str
    file: str
    span: tuple[int, int] | None  # text the edit reads or rewrites
    point: int | None  # where it inserts
    replaces: bool
    text: str  # for the text-only comparison
    line: int | None


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _region(index: int, edit: Any, files: Mapping[str, str]) -> _Region:
    op, file = edit.op, edit.file
    text = files.get(file)
    span = point = line = None
    probe = ""
    try:
        if op == "replace":
            probe = normalise_text(edit.old)
            if text is not None:  # verbatim, or resolved as the edit itself will be
                span = locate(text, probe, file, "the text to replace")
        elif op == "insert":
            probe = normalise_text(edit.anchor)
            if text is not None:
                point, start, end = insertion_offset(text, probe, edit.position, file)
                span = (start, end)
        elif op in ("append_to_section", "add_section"):
            ref = edit.heading if op == "append_to_section" else edit.after
            if ref is not None:
                probe = parse_heading_ref(ref)[1]
                if text is not None:
                    lines = text.splitlines(keepends=True)
                    heading = find_heading(lines, ref, file)
                    start = sum(len(line) for line in lines[: heading.line])
                    span = (start, start + len(lines[heading.line]))
                    end = section_end(lines, heading)
                    point = sum(len(line) for line in lines[:end])
            elif text is not None:
                point = len(text)
    except EditError:
        span = point = None
    if span is not None and text is not None:
        line = _line_of(text, span[0])
    elif point is not None and text is not None:
        line = _line_of(text, point)
    return _Region(index, op, file, span, point, op == "replace", probe, line)


def _text_overlap(a: str, b: str, minimum: int = 8) -> bool:
    a, b = a.strip(), b.strip()
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    return any(a.endswith(b[:size]) or b.endswith(a[:size]) for size in range(min(len(a), len(b)) - 1, minimum - 1, -1))


def find_overlaps(edits: Any, files: Mapping[str, str | bytes] | None = None) -> list[str]:
    """Pairs of edits in one list that touch the same region of the same file.

    With ``files`` (S0's files relative to the skill folder) regions are located in
    the text: two replaces whose ``old`` texts overlap, an insert anchored in (or
    pointing into) a replaced region, a section edit whose heading a replace
    rewrites. Without ``files`` (or when a target is not found) the texts are
    compared instead. Also reported: the same reference created twice, the same
    section added twice, and identical edits.
    """
    parsed = [e for e in (_parse_one(i, item)[0] for i, item in enumerate(_coerce_edits(edits), start=1))]
    texts: dict[str, str] = {}
    for path, data in (files or {}).items():
        decoded = _decode(data)
        if decoded is not None:
            texts[path] = decoded.replace("\r\n", "\n")
    regions = [(_region(i, e, texts) if e is not None else None) for i, e in enumerate(parsed, start=1)]
    out: list[str] = []

    def name(r: _Region) -> str:
        return f"{r.index} ({r.op})"

    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            if a is None or b is None or a.file != b.file:
                continue
            ea, eb = parsed[a.index - 1], parsed[b.index - 1]
            assert ea is not None and eb is not None  # a region is made only for a parsed edit
            where = f" near line {a.line or b.line}" if (a.line or b.line) else ""
            if ea == eb:
                out.append(f"edits {name(a)} and {name(b)} are identical on {a.file}{where}; keep one")
                continue
            if a.op == b.op == "create_reference":
                out.append(f"edits {name(a)} and {name(b)} both create {a.file}; merge them into one file")
                continue
            if (
                a.op == b.op == "add_section"
                and parse_heading_ref(ea.heading)[1].casefold() == parse_heading_ref(eb.heading)[1].casefold()
            ):
                out.append(
                    f"edits {name(a)} and {name(b)} both add a section '{parse_heading_ref(ea.heading)[1]}' to {a.file}; merge them"
                )
                continue
            if not (a.replaces or b.replaces):
                continue
            rep, other = (a, b) if a.replaces else (b, a)
            if rep.span is not None and (other.span is not None or other.point is not None):
                s, e = rep.span
                hit = False
                if other.span is not None and other.span[0] < e and s < other.span[1]:
                    hit = True
                if other.point is not None and s < other.point < e:
                    hit = True
                if hit:
                    what = (
                        "the texts they replace overlap"
                        if other.replaces
                        else f"{name(other)} is located in text that {name(rep)} rewrites"
                    )
                    out.append(
                        f"edits {name(a)} and {name(b)} touch the same region of {a.file}{where} "
                        f"({what}); combine them into one edit"
                    )
                continue
            if _text_overlap(rep.text, other.text):
                out.append(
                    f"edits {name(a)} and {name(b)} touch the same text in {a.file}: {rep.text.strip()[:80]!r}; "
                    "combine them into one edit"
                )
    return out
