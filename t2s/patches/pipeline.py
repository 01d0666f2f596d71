"""From model-written edits to a validated unified diff, a tree and a patch branch.

Analysts and the merger write *edits* (:mod:`t2s.patches.edits`), never diffs. This module

1. applies a list of edits to S0's text in memory, in order (:func:`render_edits`),
   reporting every edit that does not apply as an :class:`EditFailure` whose reason
   a model can act on;
2. runs the guardrails in code: only ``SKILL.md`` and ``references/*.md`` inside the
   skill, safe file names, no symlinks, new references linked from SKILL.md, the
   frontmatter ``name`` unchanged, no new lint findings, size limits, no empty
   patches, and the leak guard (:func:`find_leaks`);
3. renders a git-style unified diff against S0, checks it parses with ``unidiff``
   and applies with ``git apply --check --cached`` on a private index, and computes
   the resulting tree (:class:`PatchContext`);
4. offers a bounded retry loop (:func:`edits_with_retries`) that feeds the failure
   message back to the model and ends in a :class:`Patch` or a :class:`Rejected`
   record, never in silence;
5. commits a patch as one commit on S0 with a create-only branch ref
   (:func:`commit_patch`).

Only :mod:`t2s.gitstore.store` runs git.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import inspect
import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Annotated, Any, Awaitable, Callable, Iterable, Literal, Mapping, Sequence, Union

import unidiff
from pydantic import BaseModel, Field, TypeAdapter, ValidationError


from t2s.patches.edits import (
    Edit,
    EditError,
    EditList,
    apply_edit,
    find_heading,
    insertion_offset,
    normalise_text,
    parse_heading_ref,
    section_end,
)
from t2s.prompts import load as load_prompt
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore, HeldObjects, Trailers
from t2s.skill.format import (
    REFERENCES_DIR,
    SKILL_FILE,
    Finding,
    Limits,
    SkillFormatError,
    lint_files,
    links,
    parse_skill_md,
)

#: New reference files: ``references/<topic>.md``.
REFERENCE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\.md$")
_EDIT_ADAPTER = TypeAdapter(Edit)
_ODD_CHARS_RE = re.compile(r"[\x00-\x1f\x7f\\:*?\"<>|]")


# ---------------------------------------------------------------------- records
class EditFailure(BaseModel):
    """Why one edit (``index`` 1-based) or the patch as a whole (``index`` None) failed."""

    index: int | None = None
    op: str = "patch"
    file: str = ""
    reason: str

    def render(self) -> str:
        where = f" on {self.file}" if self.file else ""
        if self.index is None:
            return f"patch{where}: {self.reason}"
        return f"edit {self.index} ({self.op}){where}: {self.reason}"


class RenderResult(BaseModel):
    """The outcome of rendering one list of edits against S0."""

    ok: bool
    edits: list[Edit] = Field(default_factory=list)
    #: Git-style unified diff against S0 (repo-relative ``a/``/``b/`` paths); "" on failure.
    diff: str = ""
    #: Changed or new files after the edits, relative to the skill folder.
    files: dict[str, str] = Field(default_factory=dict)
    #: Repo-relative paths the diff touches.
    paths: list[str] = Field(default_factory=list)
    added: int = 0
    removed: int = 0
    failures: list[EditFailure] = Field(default_factory=list)
    #: The tree of S0 with the diff applied (set by :class:`PatchContext`).
    tree: str | None = None

    def feedback(self, attempt: int | None = None, max_attempts: int | None = None) -> str:
        return feedback_message(self.failures, attempt=attempt, max_attempts=max_attempts)


class Patch(BaseModel):
    """An accepted patch: edits, the diff they render to, and where it was committed."""

    status: Literal["patch"] = "patch"
    edits: list[Edit]
    diff: str
    added: int
    removed: int
    files: list[str]
    attempts: int = 1
    tree: str | None = None
    commit: str | None = None
    ref: str | None = None

    @property
    def ok(self) -> bool:
        return True

    @classmethod
    def from_render(cls, result: RenderResult, attempts: int = 1) -> "Patch":
        if not result.ok:
            raise ValueError("a failed render is not a patch")
        return cls(
            edits=result.edits,
            diff=result.diff,
            added=result.added,
            removed=result.removed,
            files=result.paths,
            attempts=attempts,
            tree=result.tree,
        )


class Rejected(BaseModel):
    """A patch that never applied: recorded with its reason, never dropped silently."""

    status: Literal["rejected"] = "rejected"
    reason: str
    failures: list[EditFailure] = Field(default_factory=list)
    attempts: int = 0
    #: The edits of the last attempt (for review).
    edits: list[Edit] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return False


PatchResult = Annotated[Union[Patch, Rejected], Field(discriminator="status")]


def feedback_message(
    failures: Sequence[EditFailure], *, attempt: int | None = None, max_attempts: int | None = None
) -> str:
    """The message that goes back to the model after a failed attempt."""
    count = len(failures)
    head = f"Your edits were not applied ({count} problem{'s' if count != 1 else ''})"
    if attempt is not None and max_attempts is not None:
        head += f"; attempt {attempt} of {max_attempts}"
    lines = [head + ". Nothing was changed. Fix these and send the complete list of edits again:"]
    lines += [f"- {failure.render()}" for failure in failures]
    if any(f.index is not None for f in failures):
        lines.append(
            "Edits are applied in order to the current files; locate text by copying it exactly "
            "(anchors and `old` must occur exactly once)."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------- paths
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
        raise EditError(f"refusing path {file!r}: absolute paths are not allowed; paths are relative to the skill folder")
    if _ODD_CHARS_RE.search(file) or file != file.strip():
        raise EditError(f"refusing path {file!r}: it contains characters not allowed in a skill file name")
    parts = file.split("/")
    if ".." in parts:
        raise EditError(f"refusing path {file!r}: '..' would leave the skill folder")
    prefix = skill_dir.rstrip("/").split("/")
    if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
        parts = parts[len(prefix):]
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
    if path not in set(existing) or creating:
        if not REFERENCE_NAME_RE.match(parts[1]):
            raise EditError(
                f"refusing path {file!r}: a reference file name must match [a-z0-9][a-z0-9-_]*.md "
                "(lower case, digits, '-' and '_')"
            )
    return path


# ---------------------------------------------------------------------- diff
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


def replay_hunks(old: str, patched: "unidiff.PatchedFile") -> str | None:
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


# ---------------------------------------------------------------------- render
def _decode(data: str | bytes) -> str | None:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_crlf(text: str) -> bool:
    return "\r\n" in text and text.count("\r\n") == text.count("\n")


def _coerce_edits(edits: Any) -> list[Any]:
    if isinstance(edits, EditList):
        return list(edits.edits)
    if isinstance(edits, dict) and "edits" in edits:
        return list(edits["edits"])
    return list(edits)


def _parse_one(index: int, item: Any) -> tuple[Any | None, EditFailure | None]:
    if isinstance(item, BaseModel) and hasattr(item, "op"):
        return item, None
    try:
        return _EDIT_ADAPTER.validate_python(item), None
    except ValidationError as err:
        op = str(item.get("op", "?")) if isinstance(item, dict) else "?"
        file = str(item.get("file", "")) if isinstance(item, dict) else ""
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'edit'}: {e['msg']}" for e in err.errors()[:5]
        )
        return None, EditFailure(index=index, op=op, file=file, reason=f"not a valid edit ({problems})")


def _finding_key(finding: Finding) -> tuple[str, str, str]:
    return finding.file, finding.rule, re.sub(r"\d+", "#", finding.message)


def render_edits(
    s0_files: Mapping[str, str | bytes],
    edits: Any,
    *,
    skill_dir: str,
    strict: bool = True,
    limits: Limits = Limits(),
    symlinks: Iterable[str] = (),
    forbidden_values: Iterable[Any] = (),
    forbidden_ids: Iterable[str] = (),
) -> RenderResult:
    """Apply ``edits`` to S0's files in memory and render a unified diff against S0.

    ``s0_files`` maps paths relative to the skill folder (``skills/<name>``, given as
    ``skill_dir``) to their text or bytes. ``edits`` is a list of edit models or
    dicts (or ``{"edits": [...]}``). Every problem becomes an :class:`EditFailure`;
    the result is ``ok`` only when there are none. No git is run here; see
    :class:`PatchContext` for the ``git apply`` check and the tree.
    """
    skill_dir = skill_dir.strip("/")
    folder = PurePosixPath(skill_dir).name
    items = _coerce_edits(edits)
    failures: list[EditFailure] = []
    parsed: list[Any] = []
    for index, item in enumerate(items, start=1):
        edit, failure = _parse_one(index, item)
        if failure:
            failures.append(failure)
        parsed.append(edit)
    if not items:
        failures.append(EditFailure(reason="the list of edits is empty, so the patch changes nothing"))

    symlinks = set(symlinks)
    texts: dict[str, str] = {}
    crlf: set[str] = set()
    undecodable: set[str] = set()
    for path, data in s0_files.items():
        text = _decode(data)
        if text is None:
            undecodable.add(path)
            continue
        if _is_crlf(text):
            crlf.add(path)
            text = text.replace("\r\n", "\n")
        texts[path] = text
    editable = {p: t for p, t in texts.items() if p == SKILL_FILE or p.startswith(REFERENCES_DIR + "/")}
    current = dict(editable)
    created: list[str] = []

    for index, edit in enumerate(parsed, start=1):
        if edit is None:
            continue
        op = edit.op
        try:
            path = check_edit_path(
                edit.file,
                skill_dir=skill_dir,
                existing=current,
                symlinks=symlinks,
                creating=op == "create_reference",
            )
            if path in undecodable:
                raise EditError(f"{path} is not UTF-8 text and cannot be edited")
            if op == "create_reference" and path in symlinks:
                raise EditError(f"{path} is a symlink")
            edit_here = edit.model_copy(update={"file": path})
            current = apply_edit(current, edit_here)
            if op == "create_reference":
                created.append(path)
        except EditError as err:
            failures.append(EditFailure(index=index, op=op, file=str(edit.file), reason=err.reason))

    result_edits = [e for e in parsed if e is not None]
    if failures:
        return RenderResult(ok=False, edits=result_edits, failures=failures)

    changed = {p: t for p, t in current.items() if editable.get(p) != t}
    if not changed:
        return RenderResult(
            ok=False,
            edits=result_edits,
            failures=[EditFailure(reason="the edits change nothing (empty patch)")],
        )

    failures += _guardrails(
        texts, current, changed, created, folder=folder, strict=strict, limits=limits,
        s0_files=s0_files, symlinks=symlinks,
    )

    out_files = {p: (t.replace("\n", "\r\n") if p in crlf else t) for p, t in changed.items()}
    order = sorted(out_files, key=lambda p: (p != SKILL_FILE, p))
    diff = "".join(
        unified_diff(f"{skill_dir}/{p}", (texts[p].replace("\n", "\r\n") if p in crlf else texts[p]) if p in texts else None, out_files[p])
        for p in order
    )
    leaks = find_leaks(added_text(diff), forbidden_values=forbidden_values, forbidden_ids=forbidden_ids)
    failures += [EditFailure(reason=leak) for leak in leaks]

    added = removed = 0
    try:
        patch_set = unidiff.PatchSet(diff)
        added, removed = patch_set.added, patch_set.removed
        parsed_paths = sorted(f.path for f in patch_set)
        if parsed_paths != sorted(f"{skill_dir}/{p}" for p in order):
            failures.append(EditFailure(reason=f"internal: the diff names {parsed_paths}, expected {order}"))
        # Replay the parsed hunks on S0's text: the diff must say exactly what the edits did.
        for patched in patch_set:
            rel = patched.path[len(skill_dir) + 1:]
            old = texts.get(rel)
            old = (old.replace("\n", "\r\n") if rel in crlf else old) if old is not None else ""
            if replay_hunks(old, patched) != out_files.get(rel):  # pragma: no cover - a bug in unified_diff
                failures.append(EditFailure(file=rel, reason="internal: the rendered diff does not reproduce the edited text"))
    except unidiff.UnidiffParseError as err:  # pragma: no cover - a bug in unified_diff
        failures.append(EditFailure(reason=f"internal: the rendered diff does not parse: {err}"))

    return RenderResult(
        ok=not failures,
        edits=result_edits,
        diff=diff if not failures else "",
        files=out_files,
        paths=[f"{skill_dir}/{p}" for p in order],
        added=added,
        removed=removed,
        failures=failures,
    )


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
            failures.append(EditFailure(file=SKILL_FILE, reason=f"the frontmatter no longer parses (line {err.line}): {err.message}"))
            explained.add((SKILL_FILE, "frontmatter"))
        else:
            if s0_doc_name is not None and doc.name != s0_doc_name:
                failures.append(EditFailure(
                    file=SKILL_FILE,
                    reason=f"the frontmatter name must stay {s0_doc_name!r}; the edits change it to {doc.name!r}",
                ))
                explained.add((SKILL_FILE, "name"))

    # new references must be linked from SKILL.md
    targets = set()
    for _, target in links(skill_text):
        target_path = target.split("#", 1)[0]
        normal = PurePosixPath(target_path).as_posix()
        targets.add(normal[2:] if normal.startswith("./") else normal)
    for path in created:
        if path not in targets:
            failures.append(EditFailure(
                file=path,
                reason=f"{path} is new but SKILL.md does not link to it; add an edit that links it, "
                f"e.g. append_to_section with '- [{PurePosixPath(path).stem}]({path}): when to read it'",
            ))
            explained.add((path, "unlinked-reference"))
            explained.add((path, "broken-link"))

    # size limits on the files this patch touches
    for path, text in changed.items():
        limit = limits.max_skill_lines if path == SKILL_FILE else limits.max_reference_lines
        count = len(text.splitlines())
        before = len(s0_texts.get(path, "").splitlines())
        if count > limit and count > before:
            advice = "move detail into a references/ file" if path == SKILL_FILE else "split it into another reference file"
            failures.append(EditFailure(file=path, reason=f"{path} would have {count} lines; at most {limit} ({advice})"))

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
        failures.append(EditFailure(file=finding.file, reason=f"new lint finding at line {finding.line}: {finding.rule}: {finding.message}"))
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
def _findings_of(folder: str, files: tuple[tuple[str, bytes], ...], strict: bool, limits: Limits, symlinks: frozenset[str]) -> Counter:
    return Counter(_finding_key(f) for f in lint_files(folder, dict(files), strict=strict, limits=limits, symlinks=symlinks))


# ---------------------------------------------------------------------- git
class PatchContext:
    """Everything needed to render edits against one frozen S0 of one skill.

    ``render(edits)`` runs :func:`render_edits` and then checks the diff with
    ``git apply --check --cached`` on a private index and computes the tree.
    ``render_async(edits)`` does the same for many concurrent callers (a merge
    level), whose git checks share one process.
    """

    def __init__(
        self,
        store: GitStore,
        s0: str,
        skill_dir: str,
        *,
        strict: bool = True,
        limits: Limits = Limits(),
        forbidden_values: Iterable[Any] = (),
        forbidden_ids: Iterable[str] = (),
    ):
        self.store = store
        self.s0 = store.resolve(s0)
        self.skill_dir = skill_dir.strip("/")
        self.strict = strict
        self.limits = limits
        self.forbidden_values = list(forbidden_values)
        self.forbidden_ids = list(forbidden_ids)
        if not store.subtree(self.s0, self.skill_dir):
            raise UsageError(f"{self.skill_dir} does not exist at {s0}")
        prefix = self.skill_dir + "/"
        entries = store.list_tree(self.s0, self.skill_dir)
        self.symlinks = {e.path[len(prefix):] for e in entries if e.mode == "120000"}
        self.files: dict[str, bytes] = {
            rel: data for rel, data in store.read_files(self.s0, self.skill_dir).items() if rel not in self.symlinks
        }
        self._checks: _BatchedApplyCheck | None = None

    def texts(self) -> dict[str, str]:
        """S0's editable files as text (what the model is shown)."""
        out = {}
        for path, data in self.files.items():
            if path == SKILL_FILE or path.startswith(REFERENCES_DIR + "/"):
                text = _decode(data)
                if text is not None:
                    out[path] = text
        return out

    def render(self, edits: Any) -> RenderResult:
        result = self._render_edits(edits)
        if not result.ok:
            return result
        return self._finish(result, self.store.apply_check(self.s0, result.diff))

    async def render_async(self, edits: Any, *, hold: HeldObjects | None = None) -> RenderResult:
        """:meth:`render` for concurrent callers: the git checks of all renders waiting
        at the same moment run as one ``git apply`` (a process each cost more than the
        rest of a merge). The Python work runs on the caller's thread: threads would
        only queue for the GIL. With ``hold``, the tree's new objects are only
        computed (see :meth:`GitStore.write_held`)."""
        result = self._render_edits(edits)
        if not result.ok:
            return result
        if self._checks is None:
            self._checks = _BatchedApplyCheck(self.store, self.s0)
        return self._finish(result, await self._checks.check(result.diff), hold)

    def _render_edits(self, edits: Any) -> RenderResult:
        return render_edits(
            self.files,
            edits,
            skill_dir=self.skill_dir,
            strict=self.strict,
            limits=self.limits,
            symlinks=self.symlinks,
            forbidden_values=self.forbidden_values,
            forbidden_ids=self.forbidden_ids,
        )

    def _finish(self, result: RenderResult, reason: str | None, hold: HeldObjects | None = None) -> RenderResult:
        # Git must agree that the diff applies to S0 (`git apply --check --cached` on a
        # private index); render_edits already replayed its hunks onto S0's text, so
        # the tree is written from the edited files themselves.
        if reason is not None:
            return result.model_copy(update={
                "ok": False,
                "diff": "",
                "failures": [EditFailure(reason=f"the rendered diff does not apply to S0: {reason}")],
            })
        changes = {f"{self.skill_dir}/{rel}": text.encode("utf-8") for rel, text in result.files.items()}
        tree = self.store.build_tree(self.s0, changes, hold=hold)
        return result.model_copy(update={"tree": tree})

    def build(self, edits: Any) -> Patch | Rejected:
        """One attempt, no retries: a :class:`Patch` or a :class:`Rejected` record."""
        result = self.render(edits)
        if result.ok:
            return Patch.from_render(result)
        return _rejected(result, attempts=1)


class _BatchedApplyCheck:
    """Group commit for ``git apply --check``: the first caller runs its check at once;
    callers arriving meanwhile wait and go together in the next ``git apply``."""

    def __init__(self, store: GitStore, base: str):
        self.store = store
        self.base = base
        self._waiting: list[tuple[str, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None

    async def check(self, diff: str) -> str | None:
        loop = asyncio.get_running_loop()
        if self._drainer is not None and self._drainer.get_loop() is not loop:
            # left over from an event loop that has ended: nobody waits there any more
            self._drainer = None
            self._waiting = [(d, f) for d, f in self._waiting if f.get_loop() is loop]
        future = loop.create_future()
        self._waiting.append((diff, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    reasons = await asyncio.to_thread(self.store.apply_check_many, self.base, [d for d, _ in batch])
                except BaseException as err:  # every waiter hears about it, none hangs
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(err)
                    if not isinstance(err, Exception):
                        raise
                    continue
                for (_, future), reason in zip(batch, reasons):
                    if not future.done():
                        future.set_result(reason)
        finally:
            self._drainer = None


def commit_patch(
    store: GitStore,
    *,
    s0: str,
    tree: str,
    ref: str,
    subject: str,
    body: str = "",
    trailers: Trailers = (),
) -> str:
    """One commit on S0 with ``tree``; ``ref`` is created (create-only, CAS). Returns the commit.

    Raises :class:`t2s.errors.RefConflict` when ``ref`` already exists.
    """
    parent = store.resolve(s0)
    if store.tree_of(parent) == tree:
        raise UsageError(f"refusing an empty patch: the tree equals S0's ({parent[:12]})")
    commit = store.commit(tree, [parent], subject, body, trailers)
    store.create_ref(ref, commit)
    return commit


def edit_format_prompt() -> str:
    """The compact description of the edit formats and rules that prompts include.

    It holds literal braces (JSON examples): insert it as a value, never ``.format()`` it.
    """
    return load_prompt("edit_format.md")


# ---------------------------------------------------------------------- retries
def _rejected(result: RenderResult, attempts: int) -> Rejected:
    failures = list(result.failures)
    summary = "; ".join(f.render() for f in failures[:3])
    if len(failures) > 3:
        summary += f"; and {len(failures) - 3} more"
    what = "attempt" if attempts == 1 else "attempts"
    return Rejected(
        reason=f"no valid patch after {attempts} {what}: {summary}",
        failures=failures,
        attempts=attempts,
        edits=result.edits,
    )


AskEdits = Callable[[Union[str, None]], Awaitable[Any]]
RenderEdits = Callable[[Any], Union[RenderResult, Awaitable[RenderResult]]]


async def edits_with_retries(ask: AskEdits, render: RenderEdits, *, max_retries: int = 2) -> Patch | Rejected:
    """Ask for edits, render them, and on failure ask again with the failure message.

    ``ask(None)`` is the first request; ``ask(message)`` a retry, where ``message``
    says which edits failed and why. ``ask`` returns edits (models, dicts, or an
    :class:`~t2s.patches.edits.EditList`); a :class:`pydantic.ValidationError` it raises
    counts as a failed attempt. ``render`` is usually :meth:`PatchContext.render`
    (sync renders run in a worker thread). After ``1 + max_retries`` failed
    attempts the result is a :class:`Rejected` with the last failures. Other
    exceptions from ``ask`` (budget exhausted, network) propagate.
    """
    max_attempts = 1 + max(0, max_retries)
    feedback: str | None = None
    last: RenderResult | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            edits = await ask(feedback)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5])
            last = RenderResult(ok=False, failures=[EditFailure(op="parse", reason=f"the reply is not a valid list of edits ({problems})")])
        else:
            if inspect.iscoroutinefunction(render):
                last = await render(edits)
            else:
                last = await asyncio.to_thread(render, edits)
                if inspect.isawaitable(last):
                    last = await last
        if last.ok:
            return Patch.from_render(last, attempts=attempt)
        feedback = last.feedback(attempt, max_attempts)
    assert last is not None
    return _rejected(last, attempts=max_attempts)


# ---------------------------------------------------------------------- leak guard
#: Values too common to be evidence of a leaked answer.
COMMON_WORDS = frozenset(
    """true false none null nan n/a yes no total sum average mean median count name names date
    value values data table sheet sheet1 sheet2 column columns row rows cell cells result results
    answer answers error errors output input number numbers text item items other unknown blank
    empty left right first last high low yes. january february march april may june july august
    september october november december monday tuesday wednesday thursday friday saturday sunday""".split()
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
    seen: set[str] = set()
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
                line = text[text.rfind("\n", 0, match.start()) + 1:]
                line = line.split("\n", 1)[0].strip()
                if len(line) > 160:
                    line = line[:157] + "..."
                what = "a skill must not name held-out tasks" if kind.startswith("held") else (
                    "skills carry general lessons, not the answers of particular tasks"
                )
                reasons.append(f"the patch contains the {kind} {needle.label!r} ({what}): {line!r}")
    return reasons


# ---------------------------------------------------------------------- overlaps
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
            if text is not None and text.count(probe) == 1:
                start = text.index(probe)
                span = (start, start + len(probe))
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
                    start = sum(len(l) for l in lines[: heading.line])
                    span = (start, start + len(lines[heading.line]))
                    end = section_end(lines, heading)
                    point = sum(len(l) for l in lines[:end])
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
    for size in range(min(len(a), len(b)) - 1, minimum - 1, -1):
        if a.endswith(b[:size]) or b.endswith(a[:size]):
            return True
    return False


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
        for b in regions[i + 1:]:
            if a is None or b is None or a.file != b.file:
                continue
            ea, eb = parsed[a.index - 1], parsed[b.index - 1]
            where = f" near line {a.line or b.line}" if (a.line or b.line) else ""
            if ea == eb:
                out.append(f"edits {name(a)} and {name(b)} are identical on {a.file}{where}; keep one")
                continue
            if a.op == b.op == "create_reference":
                out.append(f"edits {name(a)} and {name(b)} both create {a.file}; merge them into one file")
                continue
            if a.op == b.op == "add_section" and parse_heading_ref(ea.heading)[1].casefold() == parse_heading_ref(eb.heading)[1].casefold():
                out.append(f"edits {name(a)} and {name(b)} both add a section '{parse_heading_ref(ea.heading)[1]}' to {a.file}; merge them")
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
                        "the texts they replace overlap" if other.replaces
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
