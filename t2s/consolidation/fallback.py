"""A candidate from every run: when the merger could not merge a group, git can, if the
group's diffs do not conflict. The group's octopus commit then holds the inputs' diffs
applied together, their lessons carried unchanged (no consolidation), and the trailer
``T2S-Merge-Fallback: git``. Only groups whose diffs truly conflict stay unmerged.
"""

from __future__ import annotations

from collections.abc import Sequence

from t2s.consolidation.models import MergeInput, MergeReport
from t2s.gitstore.store import GitStore
from t2s.record.lessons import Lesson

#: The value of ``T2S-Merge-Fallback`` and of :attr:`MergeReport.fallback`.
GIT_FALLBACK = "git"


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


def fallback_report(failed: MergeReport, inputs: list[MergeInput], diff: str) -> MergeReport:
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
            "fallback": GIT_FALLBACK,
            "lessons": lessons,
            "folded": {},
            "conflicts": [],
            "dropped": [],
            "diff": diff,
            "reason": f"merged by git, without consolidation: the merger failed ({failed.reason})",
        }
    )
