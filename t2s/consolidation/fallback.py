"""A candidate from every run: when the merger could not merge a group, git can, if the
group's diffs do not conflict. The group's octopus commit then holds the inputs' diffs
applied together, their lessons carried unchanged (no consolidation), and the trailer
``T2S-Merge-Fallback: git``.

Diffs that only add lines may still fail to apply together: two lessons appended to the
same section move each other's context. No line is removed, so nothing contradicts:
their *union* (every addition at its place in S0, in input order, as ``git merge-file
--union`` resolves) is the merge, marked ``T2S-Merge-Fallback: union``. Only groups
whose diffs truly conflict (one changes or removes what another touches) stay unmerged.
"""

from __future__ import annotations

from collections.abc import Sequence

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from t2s.consolidation.models import MergeInput, MergeReport
from t2s.gitstore.store import GitStore
from t2s.record.lessons import Lesson

#: The value of ``T2S-Merge-Fallback`` and of :attr:`MergeReport.fallback`.
GIT_FALLBACK = "git"
#: The fallback of diffs that only add lines, at places git cannot tell apart.
UNION_FALLBACK = "union"


def combined_tree(store: GitStore, base: str, diffs: Sequence[str]) -> str | None:
    """The tree of ``base`` with every diff (each against ``base``) applied in turn by
    ``git apply``, or None when one does not apply on top of the others (a conflict)."""
    tree: str | None = store.tree_of(base)
    for diff in diffs:
        if not diff.strip():
            continue
        assert tree is not None
        tree, _ = store.try_apply(tree, diff)
        if tree is None:
            return None
    return tree


def fallback_tree(store: GitStore, base: str, diffs: Sequence[str]) -> tuple[str | None, str]:
    """Git's merge of ``diffs`` (each against ``base``), else the union of their additions
    when none removes a line; ``(None, "")`` for a true conflict. The second item names
    the fallback (:data:`GIT_FALLBACK` or :data:`UNION_FALLBACK`)."""
    tree = combined_tree(store, base, diffs)
    if tree is not None:
        return tree, GIT_FALLBACK
    tree = union_tree(store, base, diffs)
    return (tree, UNION_FALLBACK) if tree is not None else (None, "")


def _insertions(diff: str) -> dict[str, list[tuple[int, str]]] | None:
    """Per file, ``(lines of the original before it, added line)`` for each added line,
    or None when the diff removes a line, renames, or cannot be read."""
    try:
        patch = PatchSet(diff)
    except UnidiffParseError:
        return None
    found: dict[str, list[tuple[int, str]]] = {}
    for patched in patch:
        if patched.removed or patched.is_removed_file or patched.is_rename or patched.is_binary_file:
            return None
        rows = found.setdefault(patched.path, [])
        for hunk in patched:
            before = hunk.source_start - 1 if hunk.source_length else hunk.source_start
            for line in hunk:
                if line.is_context:
                    before += 1
                elif line.is_added:
                    if not line.value.endswith("\n"):
                        return None  # "no newline at end of file": leave it to git
                    rows.append((before, line.value))
    return found


def union_tree(store: GitStore, base: str, diffs: Sequence[str]) -> str | None:
    """``base`` with every line each diff adds, at its place in ``base`` (the additions of
    one place in input order), or None when a diff removes or changes a line."""
    per_diff = [_insertions(diff) for diff in diffs if diff.strip()]
    if not per_diff or any(found is None for found in per_diff):
        return None
    changes: dict[str, bytes] = {}
    for path in sorted({path for found in per_diff for path in found or {}}):
        original = store.read_blob(base, path)
        lines = original.decode().splitlines(keepends=True) if original is not None else []
        if lines and not lines[-1].endswith("\n"):
            return None
        added: dict[int, list[str]] = {}
        for found in per_diff:
            for before, text in (found or {}).get(path, []):
                added.setdefault(before, []).append(text)
        out = list(added.get(0, []))
        for number, line in enumerate(lines, start=1):
            out += [line, *added.get(number, [])]
        changes[path] = "".join(out).encode()
    return store.build_tree(base, changes)


_HOW = {
    GIT_FALLBACK: "merged by git",
    UNION_FALLBACK: "merged as the union of their additions (none removes a line; git could not apply them together)",
}


def fallback_report(failed: MergeReport, inputs: list[MergeInput], diff: str, how: str = GIT_FALLBACK) -> MergeReport:
    """The report of git's merge of a group whose LLM merge ``failed``: every input lesson
    kept as it was (renumbered for this merge, its source recorded)."""
    lessons: list[Lesson] = []
    for item in inputs:
        for lesson in item.lessons:
            lessons.append(
                lesson.model_copy(update={"id": f"{failed.name}.{len(lessons) + 1}", "sources": [lesson.id]})
            )
    return failed.model_copy(
        update={
            "status": "merged",
            "fallback": how,
            "lessons": lessons,
            "folded": {},
            "conflicts": [],
            "dropped": [],
            "diff": diff,
            "reason": f"{_HOW[how]}, without consolidation: the merger failed ({failed.reason})",
        }
    )
