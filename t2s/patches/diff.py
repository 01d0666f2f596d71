"""Unified diffs of one file, git style, and a check that a diff's hunks replay onto the
text they were made from (what ``unidiff`` parses is what was meant).
"""

from __future__ import annotations

import difflib
import re

import unidiff


def unified_diff(path: str, old: str | None, new: str, *, context: int = 3) -> str:
    """A git-style diff of one file (``old=None``: a new file). Handles a missing final newline."""
    a_lines = old.splitlines(keepends=True) if old else []
    b_lines = new.splitlines(keepends=True)
    body = difflib.unified_diff(
        a_lines,
        b_lines,
        fromfile="/dev/null" if old is None else f"a/{path}",
        tofile=f"b/{path}",
        n=context,
    )
    out = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        out.append("new file mode 100644\n")
    for line in body:
        out.append(line)
        if not line.endswith("\n"):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def replay_hunks(old: str, patched: unidiff.PatchedFile) -> str | None:
    """``old`` with the hunks of one parsed file applied, or None if they do not fit."""
    lines = old.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for hunk in patched:
        start = max(hunk.source_start - 1, 0) if hunk.source_length else hunk.source_start
        if start < pos:
            return None
        out.extend(lines[pos:start])
        pos = start
        parsed: list[list[str]] = []
        for line in hunk:
            if line.line_type == "\\":  # "\ No newline at end of file" ends the previous line
                if parsed and parsed[-1][1].endswith("\n"):
                    parsed[-1][1] = parsed[-1][1][:-1]
            else:
                parsed.append([line.line_type, line.value])
        for kind, value in parsed:
            if kind in (" ", "-"):
                if pos >= len(lines) or lines[pos] != value:
                    return None
                pos += 1
                if kind == " ":
                    out.append(value)
            elif kind == "+":
                out.append(value)
    out.extend(lines[pos:])
    return "".join(out)


def added_text(diff: str) -> str:
    """The added lines of a unified diff (without the ``+``), one per line."""
    lines = []
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++ "):
            lines.append(line[1:])
    return "\n".join(lines)


def _looks_like_diff(text: str) -> bool:
    return bool(re.search(r"^@@ -\d+(,\d+)? \+\d+(,\d+)? @@", text, re.M)) and bool(re.search(r"^\+\+\+ ", text, re.M))
