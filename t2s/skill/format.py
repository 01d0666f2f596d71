"""Agent Skills: parse ``SKILL.md``, lint a skill folder, keep unknown frontmatter intact.

A skill is a folder ``<name>/`` with ``SKILL.md`` (YAML frontmatter + Markdown body) and
optional ``references/*.md`` that SKILL.md links to. Lint works on a mapping of
relative paths to bytes, so the same rules check a folder on disk and a skill at any
git revision.

Strict mode follows the public Agent Skills specification; lenient mode accepts
unknown frontmatter keys (for example Claude Code's ``disable-model-invocation``).
Parsing never re-serialises YAML: the frontmatter text is kept as written, so a skill
round-trips byte for byte.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from t2s.errors import UsageError

SKILL_FILE = "SKILL.md"
REFERENCES_DIR = "references"
ALLOWED_KEYS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# [text](target) and ![alt](target); the target stops at whitespace or ')'.
LINK_RE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
#: libyaml's safe loader when PyYAML was built with it (lint runs on every patch render).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SCHEME_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


@dataclass(frozen=True)
class Limits:
    max_skill_lines: int = 500
    max_reference_lines: int = 300


@dataclass(frozen=True)
class Finding:
    """One lint problem, located at ``file:line`` (file relative to the skill folder)."""

    file: str
    line: int
    rule: str
    message: str

    def render(self, prefix: str = "") -> str:
        return f"{prefix}{self.file}:{self.line}: {self.rule}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SkillDoc:
    """A parsed SKILL.md. ``frontmatter`` is the raw YAML text, exactly as written."""

    frontmatter: str
    body: str
    meta: dict[str, Any] = field(default_factory=dict)
    #: 1-based line number where the body starts in the file.
    body_line: int = 1

    def render(self) -> str:
        return f"---\n{self.frontmatter}---\n{self.body}"

    @property
    def name(self) -> str:
        return str(self.meta.get("name", ""))

    @property
    def description(self) -> str:
        return str(self.meta.get("description", ""))


class SkillFormatError(UsageError):
    """SKILL.md cannot be parsed at all; carries the line where parsing failed."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.line = line


def split_frontmatter(text: str) -> tuple[str, str, int]:
    """``(frontmatter_yaml, body, body_line)``; the YAML keeps its own bytes."""
    if not text.startswith("---\n") and not text.startswith("---\r\n"):
        raise SkillFormatError("SKILL.md must start with a '---' frontmatter line", 1)
    lines = text.splitlines(keepends=True)
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n") == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    raise SkillFormatError("frontmatter is not closed by a '---' line", 1)


def parse_skill_md(text: str) -> SkillDoc:
    """Parse SKILL.md text; raises :class:`SkillFormatError` with a line number."""
    frontmatter, body, body_line = split_frontmatter(text)
    try:
        meta = _load_yaml(frontmatter) if frontmatter.strip() else {}
    except yaml.YAMLError as err:
        # The context mark is where the broken construct starts: the line to fix.
        mark = getattr(err, "context_mark", None) or getattr(err, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problem = getattr(err, "problem", None) or str(err)
        raise SkillFormatError(f"frontmatter is not valid YAML: {problem}", line) from None
    if not isinstance(meta, dict):
        raise SkillFormatError("frontmatter must be a YAML mapping of keys to values", 2)
    return SkillDoc(frontmatter=frontmatter, body=body, meta=dict(meta), body_line=body_line)


@functools.lru_cache(maxsize=64)
def _load_yaml(text: str) -> Any:
    # Patch renders lint every edited SKILL.md, whose frontmatter rarely changes.
    return yaml.load(text, Loader=_YAML_LOADER)


def skill_body(text: str) -> str:
    """The Markdown body of SKILL.md without its frontmatter (what an agent reads)."""
    try:
        return split_frontmatter(text)[1].lstrip("\n")
    except SkillFormatError:
        return text


def reference_paths(files: Mapping[str, bytes]) -> list[str]:
    """The ``references/*.md`` files of a skill, sorted."""
    prefix = REFERENCES_DIR + "/"
    return sorted(p for p in files if p.startswith(prefix) and "/" not in p[len(prefix) :] and p.endswith(".md"))


@functools.lru_cache(maxsize=256)
def links(text: str) -> tuple[tuple[int, str], ...]:
    """``(line, target)`` for every Markdown link or image in ``text``.

    Memoised: every patch render lints the skill's unchanged files again."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in LINK_RE.finditer(line):
            found.append((number, match.group(1)))
    return tuple(found)


# ---------------------------------------------------------------------- lint
def lint_files(
    folder_name: str,
    files: Mapping[str, bytes],
    *,
    strict: bool = True,
    limits: Limits = Limits(),
    symlinks: frozenset[str] | set[str] = frozenset(),
) -> list[Finding]:
    """Every finding for the skill whose folder is ``folder_name`` and whose files are ``files``."""
    findings: list[Finding] = []
    for path in sorted(symlinks):
        findings.append(Finding(path, 1, "symlink", "symlinks are not allowed inside a skill"))
    raw = files.get(SKILL_FILE)
    if raw is None:
        return [*findings, Finding(SKILL_FILE, 1, "missing-skill-md", "the skill folder has no SKILL.md")]
    text = _decode(raw, SKILL_FILE, findings)
    if text is None:
        return findings
    try:
        doc = parse_skill_md(text)
    except SkillFormatError as err:
        return [*findings, Finding(SKILL_FILE, err.line, "frontmatter", err.message)]
    findings += _lint_frontmatter(folder_name, doc, strict)
    findings += _lint_sizes(files, text, limits)
    findings += _lint_links(files, text)
    return sorted(findings, key=lambda f: (f.file != SKILL_FILE, f.file, f.line, f.rule))


def _decode(raw: bytes, path: str, findings: list[Finding]) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        findings.append(Finding(path, 1, "encoding", f"not UTF-8 text ({err.reason} at byte {err.start})"))
        return None


def _key_line(doc: SkillDoc, key: str) -> int:
    for number, line in enumerate(doc.frontmatter.splitlines(), start=2):
        if re.match(rf"^{re.escape(key)}\s*:", line):
            return number
    return 2


def _lint_frontmatter(folder_name: str, doc: SkillDoc, strict: bool) -> list[Finding]:
    meta = doc.meta
    out: list[Finding] = []

    def add(key: str, rule: str, message: str) -> None:
        out.append(Finding(SKILL_FILE, _key_line(doc, key), rule, message))

    if strict:
        for key in meta:
            if key not in ALLOWED_KEYS:
                add(
                    str(key),
                    "unknown-key",
                    f"{key!r} is not an Agent Skills key (allowed: {', '.join(ALLOWED_KEYS)}); use --lenient to keep it",
                )
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        add("name", "name", "frontmatter needs a non-empty string 'name'")
    else:
        if len(name) > 64:
            add("name", "name", f"name is {len(name)} characters; at most 64")
        if not NAME_RE.match(name):
            add("name", "name", f"name {name!r} must use a-z, 0-9 and single hyphens, not at either end")
        if folder_name and name != folder_name:
            add("name", "name", f"name {name!r} must equal the skill's folder name {folder_name!r}")
    description = meta.get("description")
    if not isinstance(description, str) or not description.strip():
        add("description", "description", "frontmatter needs a non-empty string 'description'")
    else:
        if len(description) > 1024:
            add("description", "description", f"description is {len(description)} characters; at most 1024")
        if "<" in description or ">" in description:
            add("description", "description", "description must not contain '<' or '>'")
    if "compatibility" in meta:
        value = meta["compatibility"]
        if not isinstance(value, str) or not 1 <= len(value) <= 500:
            add("compatibility", "compatibility", "compatibility must be a string of 1 to 500 characters")
    if "license" in meta and not isinstance(meta["license"], str):
        add("license", "license", "license must be a string")
    if "metadata" in meta:
        value = meta["metadata"]
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            add("metadata", "metadata", "metadata must map string keys to string values (quote numbers)")
    if "allowed-tools" in meta:
        value = meta["allowed-tools"]
        ok = isinstance(value, str) or (not strict and isinstance(value, list))
        if not ok:
            add("allowed-tools", "allowed-tools", "allowed-tools must be a space-delimited string")
    return out


def _lint_sizes(files: Mapping[str, bytes], skill_text: str, limits: Limits) -> list[Finding]:
    out = []
    count = len(skill_text.splitlines())
    if count > limits.max_skill_lines:
        out.append(
            Finding(
                SKILL_FILE,
                limits.max_skill_lines + 1,
                "size",
                f"SKILL.md has {count} lines; at most {limits.max_skill_lines} (move detail into references/)",
            )
        )
    for path in reference_paths(files):
        count = len(files[path].decode("utf-8", errors="replace").splitlines())
        if count > limits.max_reference_lines:
            out.append(
                Finding(
                    path,
                    limits.max_reference_lines + 1,
                    "size",
                    f"{path} has {count} lines; at most {limits.max_reference_lines}",
                )
            )
    return out


def _lint_links(files: Mapping[str, bytes], skill_text: str) -> list[Finding]:
    out = []
    linked_from_skill: set[str] = set()
    texts = {SKILL_FILE: skill_text}
    for path in reference_paths(files):
        texts[path] = files[path].decode("utf-8", errors="replace")
    for path, text in texts.items():
        base = PurePosixPath(path).parent
        for line, target in links(text):
            if SCHEME_RE.match(target) or target.startswith("#"):
                continue
            target_path = target.split("#", 1)[0]
            if target_path.startswith("/"):
                out.append(
                    Finding(
                        path,
                        line,
                        "link-outside",
                        f"link {target!r} is an absolute path; links must stay inside the skill",
                    )
                )
                continue
            resolved = _normalise(base / target_path)
            if resolved is None:
                out.append(Finding(path, line, "link-outside", f"link {target!r} points outside the skill folder"))
            elif resolved not in files and not any(f.startswith(resolved + "/") for f in files):
                out.append(
                    Finding(path, line, "broken-link", f"link {target!r} does not resolve to a file in the skill")
                )
            elif path == SKILL_FILE:
                linked_from_skill.add(resolved)
    for path in reference_paths(files):
        if path not in linked_from_skill:
            out.append(
                Finding(path, 1, "unlinked-reference", f"{path} is not linked from SKILL.md, so agents never find it")
            )
    return out


def _normalise(path: PurePosixPath) -> str | None:
    """Resolve ``.`` and ``..`` lexically; None if the path climbs out of the folder."""
    parts: list[str] = []
    for part in path.parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


# ---------------------------------------------------------------------- sources
def read_skill_dir(path: Path) -> tuple[dict[str, bytes], set[str]]:
    """The files of a skill folder on disk, and the symlinks among them (not followed)."""
    path = Path(path)
    if not (path / SKILL_FILE).is_file() and not path.is_dir():
        raise UsageError(f"{path}: not a skill folder")
    files: dict[str, bytes] = {}
    symlinks: set[str] = set()
    for item in sorted(path.rglob("*")):
        rel = item.relative_to(path).as_posix()
        if any(part.startswith(".") for part in PurePosixPath(rel).parts):
            continue
        if item.is_symlink():
            symlinks.add(rel)
        elif item.is_file():
            files[rel] = item.read_bytes()
    return files, symlinks


def lint_dir(path: Path, *, strict: bool = True, limits: Limits = Limits()) -> list[Finding]:
    files, symlinks = read_skill_dir(path)
    return lint_files(Path(path).resolve().name, files, strict=strict, limits=limits, symlinks=symlinks)


def lint_rev(store, rev: str, skill_dir: str, *, strict: bool = True, limits: Limits = Limits()) -> list[Finding]:
    """Lint the skill in folder ``skill_dir`` of commit or tree ``rev`` (nothing is checked out)."""
    commit = store.tree_of(rev)
    if not store.subtree(commit, skill_dir):
        raise UsageError(f"{skill_dir} does not exist at {rev}")
    prefix = skill_dir.rstrip("/") + "/"
    entries = store.list_tree(commit, skill_dir)
    symlinks = {e.path[len(prefix) :] for e in entries if e.mode == "120000"}
    files = {rel: data for rel, data in store.read_files(commit, skill_dir).items() if rel not in symlinks}
    return lint_files(PurePosixPath(skill_dir).name, files, strict=strict, limits=limits, symlinks=symlinks)
