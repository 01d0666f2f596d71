"""One merge: the merger is shown the group's lessons and diffs against S0, answers with
consolidated lessons and edits; its answer is accounted, rendered and checked, and
sent back with the exact problems a bounded number of times.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from t2s.consolidation.accounting import _reference_problems, account, resolve_ids
from t2s.consolidation.models import MergeInput, MergerAnswer, MergeReport
from t2s.errors import T2SError
from t2s.gitstore.store import HeldObjects
from t2s.llm.client import sampling
from t2s.llm.errors import LLMError
from t2s.patches.context import PatchContext
from t2s.patches.examples import example_values, skill_examples
from t2s.patches.overlaps import find_overlaps
from t2s.patches.results import RenderResult
from t2s.patches.retries import edit_format_prompt
from t2s.prompts import load, render
from t2s.record.provenance import Provenance

#: The stand-in text of the examples (a placeholder: refused when echoed).
_MERGED = "<the merged lesson, general and procedural>"


def example_answer(inputs: list[MergeInput], s0_texts: dict[str, str]) -> str:
    """A whole answer for this group, as the task's example: its accounting covers every
    lesson id and its edit locates a real heading, so a model that copies it is told only
    that its placeholder texts are placeholders (the corpus's merger copied an example
    without `edits` and never got past the missing field)."""
    ids = [lesson.id for item in inputs for lesson in item.lessons]
    heading = skill_examples(s0_texts)["heading"]
    return json.dumps(
        {
            "lessons": [
                {"text": _MERGED, "sources": ids, "placement": "skill", "topic": "verification"},
            ],
            "conflicts": [],
            "dropped": [],
            "edits": [{"op": "append_to_section", "heading": heading, "text": f"- {_MERGED}"}],
        },
        ensure_ascii=False,
    )


def render_messages(
    *, run: str, name: str, level: int, s0_texts: dict[str, str], inputs: list[MergeInput], min_support: int
) -> list[dict[str, str]]:
    system = render(
        load("merger_system.md"),
        min_support=min_support,
        edit_format=edit_format_prompt(s0_texts),
        **example_values(s0_texts),
    )
    s0_files = "\n\n".join(f"### {path}\n\n````markdown\n{text}````" for path, text in sorted(s0_texts.items()))
    blocks = []
    for item in inputs:
        lessons = "\n".join(
            f"- `{lesson.id}` (support {len(lesson.support)}: {', '.join(lesson.support)}): {lesson.text}"
            for lesson in item.lessons
        )
        blocks.append(f"### {item.label}\n\nLessons:\n{lessons}\n\nDiff against S0:\n\n```diff\n{item.diff}```")
    lessons_json = json.dumps(
        [
            {"id": lesson.id, "support": lesson.support, "topic": lesson.topic, "text": lesson.text}
            for i in inputs
            for lesson in i.lessons
        ],
        indent=1,
    )
    user = render(
        load("merger_task.md"),
        group=name,
        level=level,
        run=run,
        count=len(inputs),
        s0_files=s0_files,
        inputs="\n\n".join(blocks),
        lessons_json=lessons_json,
        min_support=min_support,
        example_answer=example_answer(inputs, s0_texts),
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass
class MergeJob:
    """Everything one merge needs; ``ask`` is the merger model call."""

    run: str
    name: str
    level: int
    group: int
    inputs: list[MergeInput]
    context: PatchContext
    min_support: int
    retries: int
    ask: Callable[..., Any]  # (messages, transcript) -> MergerAnswer
    model: str = ""
    #: Which sample of this merge to ask for (see :data:`t2s.llm.client.SAMPLE`).
    sample: int = 1
    strategy: Literal["parallel", "sequential"] = "parallel"
    parents: list[str] = field(default_factory=list)
    #: Where the merge's new objects wait to be written (None: written at once).
    hold: HeldObjects | None = None


async def run_merge(job: MergeJob) -> tuple[MergeReport, str | None]:
    """Ask the merger until its answer accounts for every lesson and its edits apply.

    Returns the report and the resulting tree (None when the merge failed). The calls are
    sample ``job.sample`` (a retry of a failed merge asks for new answers).
    """
    with sampling(job.sample):
        return await _run_merge(job)


async def _run_merge(job: MergeJob) -> tuple[MergeReport, str | None]:
    s0_texts = job.context.texts()
    messages = render_messages(
        run=job.run, name=job.name, level=job.level, s0_texts=s0_texts, inputs=job.inputs, min_support=job.min_support
    )
    base = MergeReport(
        run=job.run,
        name=job.name,
        level=job.level,
        group=job.group,
        strategy=job.strategy,
        status="failed",
        inputs=[{"label": i.label, "ref": i.ref, "commit": i.commit} for i in job.inputs],
        model=job.model,
        sample=job.sample,
    )
    problems: list[str] = []
    # what the merger was asked and answered, attempt by attempt (kept with the report)
    base.transcript = [dict(m) for m in messages]
    for attempt in range(1, job.retries + 2):
        try:
            answer: MergerAnswer = await job.ask(messages, base.transcript)
        except T2SError as err:
            if err.__class__.__name__ == "BudgetExceeded":
                raise
            # Only answers that never parsed are the model's failure; an endpoint error, a
            # replay cache miss... are not, and no git fallback covers them.
            endpoint = not (isinstance(err, LLMError) and err.kind == "unusable-answer")
            update = {"reason": f"merger call failed: {err.message}", "attempts": attempt, "endpoint_error": endpoint}
            return base.model_copy(update=update), None
        answer, _ = resolve_ids(answer, job.inputs)  # "patch 0004" -> its one lesson (account says the rest)
        merged, folded, problems = account(answer, job.inputs, job.min_support, job.name)
        overlaps = find_overlaps(answer.edits, s0_texts)
        problems += [f"overlapping edits: {o}" for o in overlaps]
        if not problems and not answer.edits:
            # Everything accounted for and nothing new to write (all lessons dropped,
            # or, in the sequential baseline, already in the skill): the base tree stands.
            report = base.model_copy(
                update={
                    "status": "merged",
                    "lessons": merged,
                    "folded": folded,
                    "conflicts": answer.conflicts,
                    "dropped": answer.dropped,
                    "attempts": attempt,
                    "diff": "",
                }
            )
            return report, job.context.store.tree_of(job.context.s0)
        result: RenderResult | None = None
        if not problems:
            result = await job.context.render_async(answer.edits, hold=job.hold)
            if not result.ok:
                problems += [f.render() for f in result.failures]
            else:
                problems += _reference_problems(merged, result, s0_texts)
        if not problems and result is not None:
            report = base.model_copy(
                update={
                    "status": "merged",
                    "lessons": merged,
                    "folded": folded,
                    "conflicts": answer.conflicts,
                    "dropped": answer.dropped,
                    "attempts": attempt,
                    "diff": result.diff,
                    "anchors_resolved": list(result.resolutions),
                }
            )
            return report, result.tree
        feedback = {"role": "user", "content": _feedback(problems, attempt, job.retries + 1)}
        messages = [*messages, {"role": "assistant", "content": answer.model_dump_json()}, feedback]
        base.transcript.append(feedback)
    reason = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
    return base.model_copy(
        update={"reason": f"no valid merge after {job.retries + 1} attempts: {reason}", "attempts": job.retries + 1}
    ), None


def _feedback(problems: list[str], attempt: int, attempts: int) -> str:
    lines = [
        f"Your merge was not accepted (attempt {attempt} of {attempts}). Nothing was committed. Fix these and answer again with the complete JSON object:"
    ]
    lines += [f"- {p}" for p in problems]
    return "\n".join(lines)


def render_report(
    report: MergeReport, excluded: dict[str, str] | None = None, by_validation: Collection[str] = ()
) -> tuple[str, str]:
    """Subject and body of a merge commit: the human-readable merge report. Of the
    ``excluded`` patches, those in ``by_validation`` were left out by the validation gate."""
    subject = f"t2s merge {report.name}: {len(report.lessons)} lessons from {len(report.inputs)} inputs"
    lines = [f"Merged by {report.fallback}: {report.reason}", ""] if report.fallback else []
    lines += ["Inputs:"]
    lines += [f"- {i['label']} ({i['commit'][:12]})" for i in report.inputs]
    lines += ["", "Lessons kept:"]
    for lesson in report.lessons:
        where = "SKILL.md" if lesson.placement != "reference" else f"references/{lesson.topic}.md"
        lines.append(
            f"- {lesson.id} [support {len(lesson.support)}, {where}] {lesson.text} (from {', '.join(lesson.sources)})"
        )
    if report.folded:
        lines += ["", "Duplicates folded:"]
        by_target: dict[str, list[str]] = {}
        for source, target in report.folded.items():
            by_target.setdefault(target, []).append(source)
        lines += [f"- {', '.join(sources)} -> {target}" for target, sources in by_target.items()]
    if report.conflicts:
        lines += ["", "Conflicts:"]
        lines += [f"- {' vs '.join(c.lessons)}: {c.resolution}" for c in report.conflicts]
    if report.dropped:
        lines += ["", "Dropped:"]
        lines += [f"- {d.lesson}: {d.reason}" for d in report.dropped]
    review = {n: r for n, r in (excluded or {}).items() if n not in by_validation}
    validation = {n: r for n, r in (excluded or {}).items() if n in by_validation}
    if review:
        lines += ["", "Excluded by review:"]
        lines += [f"- patch {number}: {reason}" for number, reason in sorted(review.items())]
    if validation:
        lines += ["", "Left out by validation:"]
        lines += [f"- patch {number}: {reason}" for number, reason in sorted(validation.items())]
    return subject, "\n".join(lines)


def _trailers(report: MergeReport, patches: Sequence[str] = ()) -> list[tuple[str, str]]:
    return Provenance.for_merge(
        run=report.run,
        level=report.level,
        group=report.name,
        support=report.support,
        model=report.model,
        strategy="sequential" if report.strategy == "sequential" else None,
        fallback=report.fallback,
        patches=patches,
    ).trailers()


def merger_ask(llm, *, phase: str = "merge"):
    """The merger model call: structured output validated as :class:`MergerAnswer`."""

    async def ask(messages: list[dict[str, str]], transcript: list[dict[str, Any]] | None = None) -> MergerAnswer:
        return await llm.structured(
            "merger", messages, MergerAnswer, phase=phase, instruct=False, transcript=transcript
        )

    return ask
