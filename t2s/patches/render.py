"""Edits to text: a list of model-written edits applied to S0's files in memory, in
order, each failure explained so the model can act on it; the guardrails and the leak
guard judge the result, and a unified diff is rendered and replayed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import (
    Any,
)

import unidiff
from pydantic import BaseModel, TypeAdapter, ValidationError

from t2s.patches.diff import added_text, replay_hunks, unified_diff
from t2s.patches.edits import (
    ANCHOR_SIMILARITY,
    Edit,
    EditError,
    EditList,
    Resolution,
    apply_edit,
)
from t2s.patches.guardrails import _guardrails, check_edit_path
from t2s.patches.leaks import find_leaks
from t2s.patches.placeholders import edit_placeholder
from t2s.patches.results import EditFailure, RenderResult
from t2s.skill.format import (
    REFERENCES_DIR,
    SKILL_FILE,
    Limits,
)

_EDIT_ADAPTER = TypeAdapter(Edit)


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
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'edit'}: {e['msg']}" for e in err.errors()[:5])
        return None, EditFailure(index=index, op=op, file=file, reason=f"not a valid edit ({problems})")


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
    anchor_similarity: float = ANCHOR_SIMILARITY,
) -> RenderResult:
    """Apply ``edits`` to S0's files in memory and render a unified diff against S0.

    ``s0_files`` maps paths relative to the skill folder (``skills/<name>``, given as
    ``skill_dir``) to their text or bytes. ``edits`` is a list of edit models or
    dicts (or ``{"edits": [...]}``). Every problem becomes an :class:`EditFailure`;
    the result is ``ok`` only when there are none. No git is run here; see
    :class:`PatchContext` for the ``git apply`` check and the tree. Anchors and replaced
    texts that are not verbatim in the file are resolved when one place matches them
    unambiguously (``anchor_similarity``: the least fuzzy similarity); the result lists
    each resolution.
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
    resolved_notes: list[str] = []

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
            placeholder = edit_placeholder(edit)
            if placeholder is not None:
                raise EditError(placeholder)
            if op == "create_reference" and path in symlinks:
                raise EditError(f"{path} is a symlink")
            edit_here = edit.model_copy(update={"file": path})
            found: list[Resolution] = []
            current = apply_edit(current, edit_here, similarity=anchor_similarity, resolutions=found)
            resolved_notes += [f"edit {index} ({op}) on {path}: {r.render()}" for r in found]
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
        texts,
        current,
        changed,
        created,
        folder=folder,
        strict=strict,
        limits=limits,
        s0_files=s0_files,
        symlinks=symlinks,
    )

    out_files = {p: (t.replace("\n", "\r\n") if p in crlf else t) for p, t in changed.items()}
    order = sorted(out_files, key=lambda p: (p != SKILL_FILE, p))
    diff = "".join(
        unified_diff(
            f"{skill_dir}/{p}",
            (texts[p].replace("\n", "\r\n") if p in crlf else texts[p]) if p in texts else None,
            out_files[p],
        )
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
            rel = patched.path[len(skill_dir) + 1 :]
            old = texts.get(rel)
            old = (old.replace("\n", "\r\n") if rel in crlf else old) if old is not None else ""
            if replay_hunks(old, patched) != out_files.get(rel):  # pragma: no cover - a bug in unified_diff
                failures.append(
                    EditFailure(file=rel, reason="internal: the rendered diff does not reproduce the edited text")
                )
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
        resolutions=resolved_notes,
    )
