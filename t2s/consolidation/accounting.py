"""Nothing is lost in a merge: every input lesson is kept, folded or dropped with a
reason (:func:`account`), support is computed from the inputs, never taken from the
model, and the finished candidate holds every patch exactly once, or review left it out
(:func:`check_every_patch_accounted`).
"""

from __future__ import annotations

from collections.abc import Sequence

from t2s.consolidation.models import MergeInput, MergerAnswer, PatchesLost
from t2s.gitstore.store import GitStore
from t2s.patches.results import RenderResult
from t2s.record.lessons import TOPIC_RE, Lesson, support_of
from t2s.record.provenance import KEYS


def account(
    answer: MergerAnswer, inputs: list[MergeInput], min_support: int, name: str
) -> tuple[list[Lesson], dict[str, str], list[str]]:
    """Check that every input lesson is accounted for and compute supports.

    Returns ``(merged_lessons, folded, problems)``; problems are messages for the model.
    """
    by_id = {lesson.id: lesson for item in inputs for lesson in item.lessons}
    seen: dict[str, str] = {}
    problems: list[str] = []
    merged: list[Lesson] = []
    folded: dict[str, str] = {}
    for index, out in enumerate(answer.lessons, start=1):
        lesson_id = f"{name}.{index}"
        if not out.sources:
            problems.append(f"lesson {index} has no sources; every lesson must come from input lessons")
        for source in out.sources:
            if source not in by_id:
                problems.append(f"lesson {index} cites unknown source {source!r}")
            elif source in seen:
                problems.append(f"input lesson {source} is used twice ({seen[source]} and lesson {index})")
            else:
                seen[source] = f"lesson {index}"
        known = [by_id[s] for s in out.sources if s in by_id]
        support = support_of(known)
        placement = out.placement
        topic = out.topic.strip()
        if len(support) < min_support and placement == "skill":
            problems.append(
                f'lesson {index} has support {len(support)} (< {min_support}): set placement "reference", '
                f"give it a topic and put it in references/<topic>.md, not in SKILL.md"
            )
        if placement == "reference" and not TOPIC_RE.match(topic):
            problems.append(
                f"lesson {index} is placed in a reference but its topic {topic!r} is not a slug of a-z, 0-9 and hyphens"
            )
        merged.append(
            Lesson(
                id=lesson_id,
                text=out.text.strip(),
                support=support,
                topic=topic,
                sources=list(out.sources),
                placement=placement,
            )
        )
        if len(out.sources) > 1:
            for source in out.sources:
                folded[source] = lesson_id
    for dropped in answer.dropped:
        if dropped.lesson not in by_id:
            problems.append(f"dropped lesson {dropped.lesson!r} is not an input lesson")
        elif dropped.lesson in seen:
            problems.append(f"input lesson {dropped.lesson} is both kept ({seen[dropped.lesson]}) and dropped")
        elif not dropped.reason.strip():
            problems.append(f"dropped lesson {dropped.lesson} needs a reason")
        else:
            seen[dropped.lesson] = "dropped"
    for lesson_id in by_id:
        if lesson_id not in seen:
            problems.append(
                f"input lesson {lesson_id} is not accounted for: put it in some lesson's sources or in dropped with a reason"
            )
    return merged, folded, problems


def _reference_problems(merged: list[Lesson], result: RenderResult, s0_texts: dict[str, str]) -> list[str]:
    problems = []
    present = set(s0_texts) | set(result.files)
    for index, lesson in enumerate(merged, start=1):
        if lesson.placement == "reference" and f"references/{lesson.topic}.md" not in present:
            problems.append(
                f"lesson {index} is placed in references/{lesson.topic}.md but your edits do not create or extend that file"
            )
    return problems


def _patch_number(item: MergeInput) -> str:
    return item.label.split()[-1]


def _chain_patches(store: GitStore, head: str, s0: str) -> list[str]:
    """The patches the sequential chain from ``s0`` to ``head`` says it merged, from
    the ``T2S-Patch`` trailers of its commits (what a reader of the history sees)."""
    return store.trailer_values(head, [s0], KEYS["patch"])


def check_every_patch_accounted(
    run: str, inputs: Sequence[MergeInput], excluded: dict[str, str], merged: Sequence[str]
) -> None:
    """Every patch branch of the run is either in the candidate exactly once or left
    out with a reason; otherwise :class:`PatchesLost` (and the candidate does not move).

    ``merged`` lists the patch numbers the finished candidate holds, found from git
    (ancestry or trailers), not from the plan that was meant to merge them.
    """
    numbers = [_patch_number(i) for i in inputs]
    missing = [n for n in numbers if n not in merged]
    twice = sorted({n for n in merged if merged.count(n) > 1})
    unknown = sorted({n for n in merged if n not in numbers})
    problems = []
    if missing:
        problems.append(f"patch(es) {', '.join(missing)} are not in the candidate")
    if twice:
        problems.append(f"patch(es) {', '.join(twice)} were merged more than once")
    if unknown:
        problems.append(f"the candidate holds patch(es) {', '.join(unknown)} that were not inputs")
    if problems:
        raise PatchesLost(
            f"merge of run {run!r} refused: {'; '.join(problems)} "
            f"({len(numbers)} patches in, {len(excluded)} left out by review)",
            hint="this is a bug in t2s; the candidate branch was not moved",
        )
