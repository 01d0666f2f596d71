"""Nothing is lost in a merge: every input lesson is kept, folded or dropped with a
reason (:func:`account`), support is computed from the inputs, never taken from the
model, and the finished candidate holds every patch exactly once, or review left it out
(:func:`check_every_patch_accounted`).
"""

from __future__ import annotations

from collections.abc import Sequence

from t2s.consolidation.models import MergeInput, MergerAnswer, PatchesLost
from t2s.gitstore.store import GitStore
from t2s.patches.placeholders import placeholder_problem
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
    answer, problems = resolve_ids(answer, inputs)
    for index, out in enumerate(answer.lessons, start=1):
        lesson_id = f"{name}.{index}"
        if not out.sources:
            problems.append(f"lesson {index} has no sources; every lesson must come from input lessons")
        text_problem = placeholder_problem(out.text, f"the text of lesson {index}")
        if text_problem:
            problems.append(text_problem)
        for source in out.sources:
            if source not in by_id:
                problems.append(f"lesson {index} cites unknown source {source!r} ({_valid_ids(by_id)})")
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
            problems.append(f"dropped lesson {dropped.lesson!r} is not an input lesson ({_valid_ids(by_id)})")
        elif dropped.lesson in seen:
            problems.append(f"input lesson {dropped.lesson} is both kept ({seen[dropped.lesson]}) and dropped")
        elif not dropped.reason.strip() or placeholder_problem(dropped.reason):
            problems.append(f"dropped lesson {dropped.lesson} needs a reason (not a placeholder)")
        else:
            seen[dropped.lesson] = "dropped"
    for lesson_id in by_id:
        if lesson_id not in seen:
            problems.append(
                f"input lesson {lesson_id} is not accounted for: put it in some lesson's sources or in dropped with a reason"
            )
    return merged, folded, problems


def _valid_ids(by_id: dict[str, Lesson]) -> str:
    return "input lesson ids: " + ", ".join(by_id)


def _names(item: MergeInput) -> set[str]:
    """What a model may call an input instead of its lessons' ids: its label
    ("patch 0004", "merge L1-01"), the label's number or name, the trajectories behind it."""
    label = item.label.strip().casefold()
    last = label.split()[-1] if label else ""
    names = {label, last, f"p{last}"}
    if last.isdigit():
        names |= {str(int(last)), f"patch {int(last)}", f"p{int(last)}", f"patch #{last}", f"patch #{int(last)}"}
    if len(item.lessons) and all(len(lesson.support) == 1 for lesson in item.lessons):
        names |= {t.casefold() for lesson in item.lessons for t in lesson.support}
    return names


def _resolve_one(ref: str, inputs: list[MergeInput], by_id: set[str]) -> tuple[str | None, str | None]:
    """``(lesson id, None)`` when ``ref`` names exactly one input lesson; ``(None, problem)``
    when it names an input with several; ``(None, None)`` when it names nothing known."""
    if ref in by_id:
        return ref, None
    key = " ".join(ref.strip().strip("`'\"").split()).casefold()
    same = [lesson_id for lesson_id in by_id if lesson_id.casefold() == key]
    if len(same) == 1:
        return same[0], None
    lessons = [lesson.id for item in inputs if key in _names(item) for lesson in item.lessons]
    if len(lessons) == 1:
        return lessons[0], None
    if lessons:
        return (
            None,
            f"{ref!r} is not a lesson id: it names {len(lessons)} lessons ({', '.join(lessons)}); cite those ids",
        )
    return None, None


def resolve_ids(answer: MergerAnswer, inputs: list[MergeInput]) -> tuple[MergerAnswer, list[str]]:
    """The answer with references to a patch, merge or trajectory ("patch 0004") replaced
    by its lesson's id when that is unambiguous (it has exactly one lesson), and the
    problems of references that name several lessons."""
    by_id = {lesson.id for item in inputs for lesson in item.lessons}
    problems: list[str] = []

    def fix(ref: str) -> str:
        resolved, problem = _resolve_one(ref, inputs, by_id)
        if problem and problem not in problems:
            problems.append(problem)
        return resolved or ref

    lessons = [out.model_copy(update={"sources": [fix(s) for s in out.sources]}) for out in answer.lessons]
    dropped = [d.model_copy(update={"lesson": fix(d.lesson)}) for d in answer.dropped]
    conflicts = [c.model_copy(update={"lessons": [fix(x) for x in c.lessons]}) for c in answer.conflicts]
    return answer.model_copy(update={"lessons": lessons, "dropped": dropped, "conflicts": conflicts}), problems


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
