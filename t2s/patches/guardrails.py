"""Guardrails in code, not in prompts: only ``SKILL.md`` and ``references/*.md`` inside
the skill, safe file names, no symlinks, new references linked from SKILL.md, the
frontmatter ``name`` unchanged, no new lint findings, size limits.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

from t2s.patches.edits import (
    EditError,
)
from t2s.patches.results import EditFailure
from t2s.skill.format import (
    REFERENCES_DIR,
    SKILL_FILE,
    Finding,
    Limits,
    SkillFormatError,
    links,
    lint_files,
    parse_skill_md,
)

#: New reference files: ``references/<topic>.md``.
REFERENCE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\.md$")


_ODD_CHARS_RE = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")


def check_edit_path(
    file: str,
    *,
    skill_dir: str,
    existing: Iterable[str],
    symlinks: Iterable[str] = (),
    creating: bool = False,
) -> str:
    """The validated skill-relative path an edit may touch, or :class:`EditError`.

    Allowed: ``SKILL.md`` and ``references/<name>.md`` directly inside the skill (new
    reference names must match ``[a-z0-9][a-z0-9-_]*\\.md``). A leading
    ``skills/<name>/`` is accepted and stripped. Absolute paths, ``..``, backslashes,
    control or shell-special characters, and paths through symlinks are refused.
    """
    if not isinstance(file, str) or not file.strip():
        raise EditError("the file path is empty; use 'SKILL.md' or 'references/<topic>.md'")
    if "\\" in file:
        raise EditError(f"refusing path {file!r}: backslashes are not allowed; use 'references/<topic>.md'")
    if file.startswith("/") or re.match(r"^[A-Za-z]:", file):
        raise EditError(
            f"refusing path {file!r}: absolute paths are not allowed; paths are relative to the skill folder"
        )
    if _ODD_CHARS_RE.search(file) or file != file.strip():
        raise EditError(f"refusing path {file!r}: it contains characters not allowed in a skill file name")
    parts = file.split("/")
    if ".." in parts:
        raise EditError(f"refusing path {file!r}: '..' would leave the skill folder")
    prefix = skill_dir.rstrip("/").split("/")
    if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
        parts = parts[len(prefix) :]
    if any(part in ("", ".") for part in parts):
        raise EditError(f"refusing path {file!r}: empty or '.' path components are not allowed")
    path = "/".join(parts)
    links_ = set(symlinks)
    for depth in range(1, len(parts) + 1):
        if "/".join(parts[:depth]) in links_:
            raise EditError(f"refusing path {file!r}: {'/'.join(parts[:depth])} is a symlink")
    if path == SKILL_FILE:
        if creating:
            raise EditError("SKILL.md already exists; create_reference only creates files under references/")
        return path
    allowed = "only 'SKILL.md' and 'references/<topic>.md' may be edited"
    if parts[0] == "scripts":
        raise EditError(f"refusing path {file!r}: scripts/ is never edited; {allowed}")
    if len(parts) != 2 or parts[0] != REFERENCES_DIR or not parts[1].endswith(".md"):
        raise EditError(f"refusing path {file!r}: {allowed}")
    if (path not in set(existing) or creating) and not REFERENCE_NAME_RE.match(parts[1]):
        raise EditError(
            f"refusing path {file!r}: a reference file name must match [a-z0-9][a-z0-9-_]*.md "
            "(lower case, digits, '-' and '_')"
        )
    return path


def _finding_key(finding: Finding) -> tuple[str, str, str]:
    return finding.file, finding.rule, re.sub(r"\d+", "#", finding.message)


def _guardrails(
    s0_texts: dict[str, str],
    after: dict[str, str],
    changed: dict[str, str],
    created: list[str],
    *,
    folder: str,
    strict: bool,
    limits: Limits,
    s0_files: Mapping[str, str | bytes],
    symlinks: set[str],
) -> list[EditFailure]:
    failures: list[EditFailure] = []
    explained: set[tuple[str, str]] = set()

    # frontmatter: still parses, same name
    s0_doc_name = _doc_name(s0_texts[SKILL_FILE]) if SKILL_FILE in s0_texts else None
    skill_text = after.get(SKILL_FILE, "")
    if SKILL_FILE in changed:
        try:
            doc = parse_skill_md(skill_text)
        except SkillFormatError as err:
            failures.append(
                EditFailure(
                    file=SKILL_FILE, reason=f"the frontmatter no longer parses (line {err.line}): {err.message}"
                )
            )
            explained.add((SKILL_FILE, "frontmatter"))
        else:
            if s0_doc_name is not None and doc.name != s0_doc_name:
                failures.append(
                    EditFailure(
                        file=SKILL_FILE,
                        reason=f"the frontmatter name must stay {s0_doc_name!r}; the edits change it to {doc.name!r}",
                    )
                )
                explained.add((SKILL_FILE, "name"))

    # new references must be linked from SKILL.md
    targets = set()
    for _, target in links(skill_text):
        target_path = target.split("#", 1)[0]
        normal = PurePosixPath(target_path).as_posix()
        targets.add(normal[2:] if normal.startswith("./") else normal)
    for path in created:
        if path not in targets:
            failures.append(
                EditFailure(
                    file=path,
                    reason=f"{path} is new but SKILL.md does not link to it; add an edit that links it, "
                    f"e.g. append_to_section with '- [{PurePosixPath(path).stem}]({path}): when to read it'",
                )
            )
            explained.add((path, "unlinked-reference"))
            explained.add((path, "broken-link"))

    # size limits on the files this patch touches
    for path, text in changed.items():
        limit = limits.max_skill_lines if path == SKILL_FILE else limits.max_reference_lines
        count = len(text.splitlines())
        before = len(s0_texts.get(path, "").splitlines())
        if count > limit and count > before:
            advice = (
                "move detail into a references/ file" if path == SKILL_FILE else "split it into another reference file"
            )
            failures.append(
                EditFailure(file=path, reason=f"{path} would have {count} lines; at most {limit} ({advice})")
            )

    # no new lint findings
    def as_bytes(data: str | bytes) -> bytes:
        return data.encode("utf-8") if isinstance(data, str) else data

    base = {p: as_bytes(d) for p, d in s0_files.items() if p not in symlinks}
    new = dict(base)
    new.update({p: t.encode("utf-8") for p, t in changed.items()})
    before_findings = _findings_of(folder, tuple(sorted(base.items())), strict, limits, frozenset(symlinks))
    seen: Counter = Counter()
    for finding in lint_files(folder, new, strict=strict, limits=limits, symlinks=symlinks):
        key = _finding_key(finding)
        seen[key] += 1
        if seen[key] <= before_findings[key]:
            continue
        if finding.rule == "size" or (finding.file, finding.rule) in explained:
            continue
        if finding.rule == "frontmatter" and (SKILL_FILE, "frontmatter") in explained:
            continue
        failures.append(
            EditFailure(
                file=finding.file, reason=f"new lint finding at line {finding.line}: {finding.rule}: {finding.message}"
            )
        )
    return failures


# Every render of a merge level or an analysis run checks against the same S0:
# its name and lint findings are computed once, not once per patch.
@functools.lru_cache(maxsize=32)
def _doc_name(skill_md: str) -> str | None:
    try:
        return parse_skill_md(skill_md).name
    except SkillFormatError:
        return None


@functools.lru_cache(maxsize=32)
def _findings_of(
    folder: str, files: tuple[tuple[str, bytes], ...], strict: bool, limits: Limits, symlinks: frozenset[str]
) -> Counter:
    return Counter(
        _finding_key(f) for f in lint_files(folder, dict(files), strict=strict, limits=limits, symlinks=symlinks)
    )
