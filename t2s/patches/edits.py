"""Edits as models write them, and their deterministic application to text.

Models are bad at line numbers, so analysts and the merger never write diffs: they
write a list of *edits* located by text they can copy from the skill (an anchor, the
text to replace, a section heading). :func:`apply_edit` applies one edit to the text
of one file in memory; :mod:`t2s.patches` turns a whole list into a unified diff,
runs the guardrails and commits it.

The pydantic models below are shown to models as a JSON schema, so their docstrings
and field descriptions are written for a model to read.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SKILL_FILE = "SKILL.md"


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InsertEdit(_Edit):
    """Insert new lines just before or just after the line(s) holding `anchor`.

    `anchor` is text copied exactly from the file (a whole line, or a distinctive
    part of one) and must occur exactly once in it.
    """

    op: Literal["insert"]
    file: str = Field(
        "SKILL.md",
        description="The file to edit, relative to the skill folder: 'SKILL.md' or 'references/<name>.md'.",
    )
    anchor: str = Field(description="Text copied exactly from the file that occurs exactly once in it.")
    position: Literal["before", "after"] = Field(
        "after", description="Insert before the first line of the anchor, or after its last line."
    )
    text: str = Field(
        description="The lines to insert (Markdown). Include blank lines yourself where Markdown needs them."
    )


class ReplaceEdit(_Edit):
    """Replace one exact piece of text with new text (a search/replace block).

    `old` must occur exactly once in the file; copy it character for character,
    including indentation. An empty `new` deletes `old`.
    """

    op: Literal["replace"]
    file: str = Field(
        "SKILL.md",
        description="The file to edit, relative to the skill folder: 'SKILL.md' or 'references/<name>.md'.",
    )
    old: str = Field(
        description="Exact text to replace; must occur exactly once in the file. Keep it short but unique."
    )
    new: str = Field(description="The replacement text ('' deletes `old`).")


class AppendToSectionEdit(_Edit):
    """Append text at the end of an existing Markdown section.

    The section is the heading named by `heading` and everything up to the next
    heading of the same or a higher level (so text lands after its subsections).
    A bullet appended to a section that ends with a list continues the list.
    """

    op: Literal["append_to_section"]
    file: str = Field(
        "SKILL.md",
        description="The file to edit, relative to the skill folder: 'SKILL.md' or 'references/<name>.md'.",
    )
    heading: str = Field(
        description="The section's heading, e.g. '## Pitfalls' or just 'Pitfalls'; must match exactly one heading."
    )
    text: str = Field(description="The Markdown to append to the section.")


class AddSectionEdit(_Edit):
    """Add a new section: a heading line and its body.

    The section goes right after the section named by `after` (after its
    subsections too), or at the end of the file when `after` is null. A section
    with the same heading must not exist yet (use append_to_section for that).
    """

    op: Literal["add_section"]
    file: str = Field(
        "SKILL.md",
        description="The file to edit, relative to the skill folder: 'SKILL.md' or 'references/<name>.md'.",
    )
    heading: str = Field(description="The new heading, e.g. '## Formulas'. Without leading '#', level 2 is used.")
    body: str = Field(description="The Markdown body of the new section (not repeating the heading).")
    after: str | None = Field(
        None, description="Heading of an existing section to place the new one after; null for the end of the file."
    )


class CreateReferenceEdit(_Edit):
    """Create a new reference file `references/<topic>.md`.

    Use it for detail or rare cases that would make SKILL.md too long. SKILL.md must
    link to the new file in the same list of edits, e.g. with append_to_section:
    `- [Topic](references/topic.md): when to read it`.
    """

    op: Literal["create_reference"]
    file: str = Field(
        description="'references/<topic>.md'; <topic> uses a-z, 0-9, '-' and '_' and starts with a letter or digit."
    )
    content: str = Field(description="The whole Markdown content of the new file, starting with a '# Title' line.")


class AppendToReferenceEdit(_Edit):
    """Append text at the end of an existing reference file."""

    op: Literal["append_to_reference"]
    file: str = Field(description="An existing 'references/<topic>.md'.")
    text: str = Field(description="The Markdown to append at the end of the file.")


Edit = Annotated[
    InsertEdit | ReplaceEdit | AppendToSectionEdit | AddSectionEdit | CreateReferenceEdit | AppendToReferenceEdit,
    Field(discriminator="op"),
]

OPS = ("insert", "replace", "append_to_section", "add_section", "create_reference", "append_to_reference")


class EditList(BaseModel):
    """The edits to make to the skill, applied in order. Each edit is located by text
    copied from the current files (never by line numbers)."""

    model_config = ConfigDict(extra="forbid")
    edits: list[Edit] = Field(description="The edits, applied one after another.")


_EDITS_ADAPTER = TypeAdapter(list[Edit])


def parse_edits(data: Any) -> list[Any]:
    """Edits from JSON-like data: a list of edit objects or ``{"edits": [...]}``.

    Raises :class:`pydantic.ValidationError` with pydantic's explanation.
    """
    if isinstance(data, (str, bytes)):
        import json

        data = json.loads(data)
    if isinstance(data, dict) and "edits" in data:
        return EditList.model_validate(data).edits
    return _EDITS_ADAPTER.validate_python(data)


def edit_list_schema() -> dict[str, Any]:
    """The JSON schema of :class:`EditList`, to put in a structured-output request."""
    return EditList.model_json_schema()


# ---------------------------------------------------------------------- text helpers
class EditError(Exception):
    """One edit cannot be applied; ``reason`` says why in words a model can act on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def normalise_text(text: str) -> str:
    """Model-written text with LF line ends only."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _ensure_newline(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def _short(text: str, limit: int = 160) -> str:
    flat = text.replace("\n", "\u23ce")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s")
_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t]*(?:#+[ \t]*)?$")
_FENCE_RE = re.compile(r"^[ ]{0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Heading:
    line: int  # 0-based index into the file's lines
    level: int
    title: str


def _frontmatter_end(lines: list[str]) -> int:
    """Index of the first line after a leading ``---`` frontmatter block (0 if none)."""
    if lines and lines[0].rstrip("\r\n") == "---":
        for index in range(1, len(lines)):
            if lines[index].rstrip("\r\n") == "---":
                return index + 1
    return 0


def headings(lines: list[str]) -> list[Heading]:
    """ATX headings outside frontmatter and fenced code blocks."""
    found: list[Heading] = []
    fence: str | None = None
    for index in range(_frontmatter_end(lines), len(lines)):
        line = lines[index].rstrip("\r\n")
        match = _FENCE_RE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        heading = _HEADING_RE.match(line)
        if heading:
            found.append(Heading(index, len(heading.group(1)), heading.group(2).strip()))
    return found


def _norm_title(title: str) -> str:
    return " ".join(title.split()).casefold().rstrip(":").strip()


def parse_heading_ref(ref: str) -> tuple[int | None, str]:
    """``'## Pitfalls'`` -> ``(2, 'Pitfalls')``; ``'Pitfalls'`` -> ``(None, 'Pitfalls')``."""
    ref = normalise_text(ref).strip()
    match = _HEADING_RE.match(ref)
    if match:
        return len(match.group(1)), match.group(2).strip()
    return None, ref.lstrip("#").strip()


def find_heading(lines: list[str], ref: str, file: str) -> Heading:
    """The one heading ``ref`` names, or :class:`EditError` (missing/ambiguous)."""
    level, title = parse_heading_ref(ref)
    if not title:
        raise EditError("the heading is empty")
    all_headings = headings(lines)
    matches = [h for h in all_headings if _norm_title(h.title) == _norm_title(title)]
    if level is not None and len(matches) > 1:
        matches = [h for h in matches if h.level == level] or matches
    if not matches:
        known = ", ".join(f"'{'#' * h.level} {h.title}'" for h in all_headings) or "none"
        close = difflib.get_close_matches(title, [h.title for h in all_headings], n=1, cutoff=0.5)
        hint = f"; closest heading: '{close[0]}'" if close else ""
        raise EditError(f"no heading '{title}' in {file}{hint}. Headings in {file}: {known}")
    if len(matches) > 1:
        where = ", ".join(f"line {h.line + 1} ('{'#' * h.level} {h.title}')" for h in matches)
        raise EditError(
            f"the heading '{title}' occurs {len(matches)} times in {file} ({where}); give its level with '#' marks or use another edit"
        )
    return matches[0]


def section_end(lines: list[str], heading: Heading) -> int:
    """Index of the line after ``heading``'s section (next heading of level <= its level)."""
    for other in headings(lines):
        if other.line > heading.line and other.level <= heading.level:
            return other.line
    return len(lines)


#: Default of ``[patches] anchor_similarity``: the least similarity at which a fuzzy
#: anchor is resolved to the file's closest lines.
ANCHOR_SIMILARITY = 0.9
#: Two candidates closer than this in similarity are ambiguous: the anchor is refused.
AMBIGUITY_MARGIN = 0.03


@dataclass(frozen=True)
class Resolution:
    """How a located text that is not in the file verbatim was found: ``how`` is
    ``"normalised"`` (equal once whitespace, list markers, emphasis and quotes are
    ignored) or ``"fuzzy"`` (the unique best match, ``similarity`` in [0, 1])."""

    what: str
    how: str
    similarity: float
    line: int  # 1-based first line of the text used
    found: str

    def render(self) -> str:
        """One line for the patch or merge report."""
        return (
            f"{self.what} resolved ({self.how}, {round(self.similarity * 100)}% similar) "
            f"to line {self.line}: {_short(self.found, 120)!r}"
        )


_MARKER_RE = re.compile(r"^(?:(?:[-*+]|\d+[.)])\s+)+")
_EMPHASIS_RE = re.compile(r"(\*\*|__|\*|`)")
_QUOTES = str.maketrans({c: '"' for c in "\u201c\u201d\u2018\u2019'"})


def normalise_line(line: str) -> str:
    """A line without what models get wrong when they copy it: surrounding and repeated
    whitespace, list markers and numbering (``- 2. ``), emphasis and code marks, quote styles,
    and a trailing ellipsis."""
    line = " ".join(line.split())
    line = _MARKER_RE.sub("", line)
    line = _EMPHASIS_RE.sub("", line).translate(_QUOTES)
    line = line.rstrip(".\u2026 ").strip()
    return " ".join(line.split())


def _line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of each line of ``text``, without its newline."""
    spans: list[tuple[int, int]] = []
    start = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        spans.append((start, start + len(body)))
        start += len(line)
    return spans


def resolve_text(
    text: str, needle: str, *, similarity: float = ANCHOR_SIMILARITY, what: str = "the anchor text", part: bool = False
) -> tuple[int, int, Resolution] | None:
    """Where a text that does not occur verbatim is meant: ``(start, end, Resolution)`` for
    whole lines of ``text``, or None. First the lines equal to the needle's once both are
    normalised (:func:`normalise_line`), then the unique best fuzzy match of at least
    ``similarity``; two candidates within :data:`AMBIGUITY_MARGIN` refuse. ``part``: a
    one-line needle may also be a distinctive part (12+ characters) of one line (anchors,
    whose edit lands after or before the whole line anyway; never a replaced text)."""
    want = [normalise_line(line) for line in needle.strip("\n").splitlines()]
    want = [w for w in want if w] or [normalise_line(needle)]
    if not any(want):
        return None
    lines = text.splitlines()
    spans = _line_spans(text)
    width = len(want)
    windows = []
    for start in range(0, max(0, len(lines) - width + 1)):
        got = [normalise_line(line) for line in lines[start : start + width]]
        if all(got):
            windows.append((start, got))
    exact = [start for start, got in windows if got == want]
    if len(exact) > 1:
        return None
    if len(exact) == 1:
        return _resolution(text, spans, exact[0], width, what, "normalised", 1.0)
    if part and width == 1:  # a distinctive part of one line, normalised
        inside = [start for start, got in windows if want[0] in got[0] and len(want[0]) >= 12]
        if len(inside) == 1:
            return _resolution(text, spans, inside[0], 1, what, "normalised", 1.0)
    target = "\n".join(want)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    scored = []
    for start, got in windows:
        matcher.set_seq1("\n".join(got))
        if matcher.real_quick_ratio() < similarity - AMBIGUITY_MARGIN:
            continue
        if matcher.quick_ratio() < similarity - AMBIGUITY_MARGIN:
            continue
        scored.append((matcher.ratio(), start))
    scored.sort(reverse=True)
    if not scored or scored[0][0] < similarity:
        return None
    if len(scored) > 1 and scored[0][0] - scored[1][0] < AMBIGUITY_MARGIN:
        return None
    return _resolution(text, spans, scored[0][1], width, what, "fuzzy", scored[0][0])


def _resolution(
    text: str, spans: list[tuple[int, int]], start: int, width: int, what: str, how: str, ratio: float
) -> tuple[int, int, Resolution]:
    begin, end = spans[start][0], spans[start + width - 1][1]
    return begin, end, Resolution(what=what, how=how, similarity=round(ratio, 3), line=start + 1, found=text[begin:end])


_PREFIX_RE = re.compile(r"^\s*(?:(?:[-*+]|\d+[.)])\s+)*")


def _keep_line_prefix(found: str, old: str, new: str) -> str:
    """A resolved ``old`` stands for whole lines: keep the first line's indentation and
    list marker ("- ", "2. ") when the model left them out of both ``old`` and ``new``."""
    prefix = _PREFIX_RE.match(found)
    marker = prefix.group(0) if prefix else ""
    if not marker or _PREFIX_RE.match(old.lstrip("\n")).group(0) or _PREFIX_RE.match(new).group(0):  # type: ignore[union-attr]
        return new
    return marker + new if new else new


def locate(
    text: str,
    needle: str,
    file: str,
    what: str,
    *,
    similarity: float = ANCHOR_SIMILARITY,
    resolutions: list[Resolution] | None = None,
    part: bool = False,
) -> tuple[int, int]:
    """``(start, end)`` of the one place ``needle`` names in ``text``: verbatim, else resolved
    (:func:`resolve_text`, appended to ``resolutions``); EditError with the closest candidate
    lines when it occurs more than once or nowhere."""
    if not needle.strip():
        raise EditError(f"{what} is empty")
    if text.count(needle) == 1:
        start = text.index(needle)
        return start, start + len(needle)
    if text.count(needle) == 0:
        found = resolve_text(text, needle, similarity=similarity, what=what, part=part)
        if found is not None:
            if resolutions is not None:
                resolutions.append(found[2])
            return found[0], found[1]
    start = count_and_closest(text, needle, file, what)
    return start, start + len(needle)


def count_and_closest(text: str, needle: str, file: str, what: str) -> int:
    """The offset of the single occurrence of ``needle``; EditError if 0 or >1."""
    if not needle.strip():
        raise EditError(f"{what} is empty")
    count = text.count(needle)
    if count == 1:
        return text.index(needle)
    if count == 0:
        raise EditError(
            f"{what} occurs 0 times in {file} and no single line matches it closely enough{closest_hint(text, needle)}"
            "; copy one of these lines exactly"
        )
    lines = []
    start = 0
    for _ in range(count):
        pos = text.index(needle, start)
        number = str(text.count("\n", 0, pos) + 1)
        if number not in lines:
            lines.append(number)
        start = pos + 1
    raise EditError(
        f"{what} occurs {count} times in {file} (on line{'s' if len(lines) > 1 else ''} {', '.join(lines[:8])}); "
        "include more surrounding text so that it occurs exactly once"
    )


def closest_hint(text: str, needle: str) -> str:
    """``'; closest text (line N, 87% similar): ...'`` for the best window of lines."""
    lines = text.splitlines()
    want = needle.strip("\n").splitlines() or [needle]
    width = max(1, len(want))
    target = "\n".join(line.strip() for line in want)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    scored = []
    for start in range(0, max(1, len(lines) - width + 1)):
        window = "\n".join(line.strip() for line in lines[start : start + width])
        if not window.strip():
            continue
        matcher.set_seq1(window)
        if matcher.real_quick_ratio() < 0.4 or matcher.quick_ratio() < 0.4:
            continue
        ratio = matcher.ratio()
        if ratio >= 0.4:
            scored.append((ratio, -start))
    scored.sort(reverse=True)
    hints = []
    for ratio, neg_start in scored[:3]:
        start = -neg_start
        window = "\n".join(lines[start : start + width])
        where = f"line {start + 1}" if width == 1 else f"lines {start + 1}-{min(len(lines), start + width)}"
        hints.append(f"({where}, {round(ratio * 100)}% similar): {_short(window, 300)!r}")
    if not hints:
        return ""
    return "; closest text " + hints[0] + "".join(f"; next closest {h}" for h in hints[1:])


# ---------------------------------------------------------------------- application
def _line_start(text: str, offset: int) -> int:
    return text.rfind("\n", 0, offset) + 1


def _line_after(text: str, end: int) -> int:
    """Offset of the start of the line after the one containing ``text[end-1]``."""
    if end > 0 and text[end - 1] == "\n":
        return end
    newline = text.find("\n", end)
    return len(text) if newline < 0 else newline + 1


def insertion_offset(
    text: str,
    anchor: str,
    position: str,
    file: str,
    *,
    similarity: float = ANCHOR_SIMILARITY,
    resolutions: list[Resolution] | None = None,
) -> tuple[int, int, int]:
    """``(offset, anchor_start, anchor_end)`` for an insert edit."""
    start, end = locate(
        text, anchor, file, "the anchor text", similarity=similarity, resolutions=resolutions, part=True
    )
    offset = _line_start(text, start) if position == "before" else _line_after(text, end)
    return offset, start, end


def _splice(text: str, offset: int, insert: str) -> str:
    before = text[:offset]
    if before and not before.endswith("\n"):
        before += "\n"  # inserting after a last line that had no newline
    return before + insert + text[offset:]


def _append_block(lines: list[str], at: int, last: int | None, block: str) -> list[str]:
    """Insert ``block`` (ends with newline) at line index ``at``; ``last`` is the last
    non-blank line before it (None when there is none besides a heading)."""
    prev = lines[last] if last is not None else None
    first = block.split("\n", 1)[0]
    continues_list = prev is not None and _LIST_ITEM_RE.match(prev) and _LIST_ITEM_RE.match(first)
    head = lines[:at]
    if head and not head[-1].endswith("\n"):
        head[-1] += "\n"
    pieces = []
    if head and head[-1].strip() and not continues_list:
        pieces.append("\n")
    pieces.append(block)
    tail = lines[at:]
    if tail and tail[0].strip():
        pieces.append("\n")
    return [*head, "".join(pieces), *tail]


def apply_edit(
    files: dict[str, str],
    edit: Any,
    *,
    similarity: float = ANCHOR_SIMILARITY,
    resolutions: list[Resolution] | None = None,
) -> dict[str, str]:
    """Apply one edit to ``files`` (relative path -> text, LF) and return the new mapping.

    Raises :class:`EditError` with the reason when the edit cannot be applied.
    The file path is assumed to be validated already (see :mod:`t2s.patches.guardrails`).
    An anchor or ``old`` text that is not in the file verbatim is resolved when one place
    matches it unambiguously (:func:`locate`); each such resolution is appended to
    ``resolutions`` for the report.
    """
    op = edit.op
    file = edit.file
    out = dict(files)
    if op == "create_reference":
        if file in files:
            raise EditError(f"{file} already exists; use append_to_reference, replace or insert to change it")
        content = normalise_text(edit.content).strip("\n")
        if not content.strip():
            raise EditError("the new file's content is empty")
        out[file] = content + "\n"
        return out
    if file not in files:
        existing = ", ".join(sorted(files)) or "none"
        hint = " (create it first with create_reference)" if file.startswith("references/") else ""
        raise EditError(f"{file} does not exist{hint}; editable files: {existing}")
    text = files[file]
    if op == "replace":
        old = normalise_text(edit.old)
        new = normalise_text(edit.new)
        if old == new:
            raise EditError("`new` is identical to `old`, so the edit changes nothing")
        found: list[Resolution] = []
        start, end = locate(text, old, file, "the text to replace", similarity=similarity, resolutions=found)
        if found:
            new = _keep_line_prefix(text[start:end], old, new)
            if resolutions is not None:
                resolutions += found
        if text[start:end] == new:
            raise EditError("`new` is identical to the text it would replace, so the edit changes nothing")
        out[file] = text[:start] + new + text[end:]
    elif op == "insert":
        insert = normalise_text(edit.text)
        if not insert.strip():
            raise EditError("the text to insert is empty")
        offset, _, _ = insertion_offset(
            text, normalise_text(edit.anchor), edit.position, file, similarity=similarity, resolutions=resolutions
        )
        out[file] = _splice(text, offset, _ensure_newline(insert))
    elif op == "append_to_section":
        block = normalise_text(edit.text).strip("\n")
        if not block.strip():
            raise EditError("the text to append is empty")
        lines = text.splitlines(keepends=True)
        heading = find_heading(lines, edit.heading, file)
        end = section_end(lines, heading)
        last = end - 1
        while last > heading.line and not lines[last].strip():
            last -= 1
        at = last + 1
        if last == heading.line:
            out[file] = "".join(_append_block(lines, at, None, block + "\n"))
        else:
            out[file] = "".join(_append_block(lines, at, last, block + "\n"))
    elif op == "append_to_reference":
        if not file.startswith("references/"):
            raise EditError(
                "append_to_reference only edits files under references/; use append_to_section for SKILL.md"
            )
        block = normalise_text(edit.text).strip("\n")
        if not block.strip():
            raise EditError("the text to append is empty")
        lines = text.splitlines(keepends=True)
        last = len(lines) - 1
        while last >= 0 and not lines[last].strip():
            last -= 1
        out[file] = "".join(_append_block(lines, last + 1, last if last >= 0 else None, block + "\n"))
    elif op == "add_section":
        level, title = parse_heading_ref(edit.heading)
        if not title:
            raise EditError("the heading is empty")
        if "\n" in title:
            raise EditError("the heading must be a single line")
        level = level or 2
        body = normalise_text(edit.body).strip("\n")
        if not body.strip():
            raise EditError("the section body is empty")
        lines = text.splitlines(keepends=True)
        for section in headings(lines):
            if _norm_title(section.title) == _norm_title(title):
                raise EditError(
                    f"a section '{'#' * section.level} {section.title}' already exists in {file} "
                    f"(line {section.line + 1}); use append_to_section to add to it"
                )
        block = f"{'#' * level} {title}\n\n{body}\n"
        if edit.after is None:
            at = len(lines)
        else:
            anchor = find_heading(lines, edit.after, file)
            at = section_end(lines, anchor)
        pieces = lines[:at]
        if pieces and not pieces[-1].endswith("\n"):
            pieces[-1] += "\n"
        prefix = "\n" if pieces and pieces[-1].strip() else ""
        tail = lines[at:]
        suffix = "\n" if tail and tail[0].strip() else ""
        out[file] = "".join(pieces) + prefix + block + suffix + "".join(tail)
    else:  # pragma: no cover - the discriminated union rules this out
        raise EditError(f"unknown op {op!r}; use one of {', '.join(OPS)}")
    return out
