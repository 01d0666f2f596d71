"""Consolidation: merge levels as octopus merges resolved by an LLM merger.

The accepted patch branches of a run are grouped into balanced groups of at most
``fan_in``; each group becomes one octopus merge commit whose parents are the group's
heads (in order) and whose tree is S0 plus the merger's consolidated diff. Levels
repeat until one commit remains: the candidate.

Support (the number of distinct trajectories behind a lesson) is computed here from
the inputs, never taken from the model. Every input lesson must be accounted for
(kept, folded into another, or dropped with a reason); a merger answer that loses
one is sent back. A merge that still fails is recorded and its inputs are carried up
to the next level unmerged, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

from pydantic import BaseModel, Field, ValidationError

from t2s.patches.edits import Edit
from t2s.errors import T2SError, UsageError
from t2s.gitstore.store import ZERO_SHA, GitStore, HeldObjects, RefUpdate
from t2s.record.lessons import MERGES_DIR, TOPIC_RE, Lesson, PatchRecord, support_of
from t2s.record import refs
from t2s.record.refs import candidate_branch, merge_branch
from t2s.record.notes import REVIEW_NOTES, ReviewNote
from t2s.patches.context import PatchContext
from t2s.patches.results import RenderResult
from t2s.patches.retries import edit_format_prompt
from t2s.patches.overlaps import find_overlaps
from t2s.prompts import load, render
from t2s.record.runs import RunRecord, parse_record
from t2s.record.provenance import KEYS, Provenance



# ---------------------------------------------------------------------- grouping
def balanced_groups(items: Sequence[Any], fan_in: int) -> list[list[Any]]:
    """Split ``items`` (order kept) into the fewest groups of at most ``fan_in``,
    with sizes differing by at most one (so there is no runt group)."""
    if fan_in < 2:
        raise UsageError(f"fan-in must be at least 2 (got {fan_in})")
    count = len(items)
    if count == 0:
        return []
    groups = -(-count // fan_in)
    base, extra = divmod(count, groups)
    out, start = [], 0
    for index in range(groups):
        size = base + (1 if index < extra else 0)
        out.append(list(items[start:start + size]))
        start += size
    return out


# ---------------------------------------------------------------------- models
class MergedLessonOut(BaseModel):
    text: str = Field(description="The consolidated lesson, general and procedural.")
    sources: list[str] = Field(description="Ids of the input lessons this lesson covers.")
    placement: Literal["skill", "reference"] = Field("skill", description="SKILL.md, or a reference file for rare lessons.")
    topic: str = Field("", description="Short slug (a-z, 0-9, hyphens); names references/<topic>.md for rare lessons.")


class ConflictOut(BaseModel):
    lessons: list[str]
    resolution: str


class DroppedOut(BaseModel):
    lesson: str
    reason: str


class MergerAnswer(BaseModel):
    """What the merger model returns for one group."""

    lessons: list[MergedLessonOut]
    conflicts: list[ConflictOut] = Field(default_factory=list)
    dropped: list[DroppedOut] = Field(default_factory=list)
    edits: list[Edit]


class MergeInput(BaseModel):
    """One head going into a merge: a patch branch or a lower-level merge."""

    ref: str
    commit: str
    label: str
    lessons: list[Lesson]
    diff: str = ""


class MergeReport(BaseModel):
    """The record of one merge, stored as ``merges/L<l>-<nn>.json`` and in the commit message."""

    schema_version: int = 1
    run: str
    name: str
    level: int
    group: int
    strategy: Literal["parallel", "sequential"] = "parallel"
    status: Literal["merged", "failed"]
    inputs: list[dict[str, str]]
    lessons: list[Lesson] = Field(default_factory=list)
    folded: dict[str, str] = Field(default_factory=dict)
    conflicts: list[ConflictOut] = Field(default_factory=list)
    dropped: list[DroppedOut] = Field(default_factory=list)
    reason: str = ""
    attempts: int = 0
    model: str = ""
    commit: str | None = None
    branch: str | None = None
    diff: str = ""

    @property
    def support(self) -> int:
        return len(support_of(self.lessons))


class MergeSummary(BaseModel):
    run: str
    strategy: str
    levels: list[list[str]] = Field(default_factory=list)
    candidate: str | None = None
    candidate_ref: str | None = None
    merged: int = 0
    failed: int = 0
    reused: int = 0
    excluded: dict[str, str] = Field(default_factory=dict)
    inputs: int = 0


class MergeFailed(T2SError):
    """The merge tree could not be reduced to one candidate."""


def no_inputs_hint(record: RunRecord) -> str:
    """Why a run has nothing to merge, from its stages: errored work names its cause."""
    stages = record.manifest().stages
    for stage, noun in (("analyze", "analyses"), ("rollout", "trajectories")):
        summary = stages[stage].summary if stage in stages else {}
        if summary.get("errored"):
            total = summary.get("selected", summary.get("total", 0))
            cause = (summary.get("errors") or [{}])[0].get("phrase", "")
            return (f"{summary['errored']} of {total} {noun} errored{': ' + cause if cause else ''}; "
                    f"run `t2s {stage} --run {record.run}` again once that is fixed")
    if "analyze" not in stages:
        return "run `t2s analyze` first"
    return f"no analysis was accepted: see `t2s review --run {record.run}`"


# ---------------------------------------------------------------------- inputs
def load_patch_inputs(store: GitStore, record: RunRecord, s0: str, skill_dir: str) -> tuple[list[MergeInput], dict[str, str]]:
    """The run's accepted patch branches as merge inputs, and the ones a reviewer rejected."""
    prefix = refs.run_branches(record.run) + "patch/"
    inputs: list[MergeInput] = []
    excluded: dict[str, str] = {}
    reviewed = store.list_notes(REVIEW_NOTES)
    records = record.read_folder("patches")
    for ref, commit in store.refs(prefix).items():
        number = ref[len(prefix):]
        if commit in reviewed:
            try:
                verdict = ReviewNote.model_validate_json(store.read_note(REVIEW_NOTES, commit) or "")
            except ValidationError:  # merging a patch whose verdict cannot be read could merge a rejected one
                raise UsageError(f"the review note on patch {number} ({commit[:12]}) is not a t2s verdict",
                                 hint=f"record the verdict again: `t2s approve {refs.short(ref)}` "
                                      "or `t2s reject ... -m REASON`") from None
            if verdict.verdict == "reject":
                excluded[number] = verdict.comment or "rejected in review"
                continue
        raw = records.get(f"patches/{number}.json")
        patch = parse_record(PatchRecord, raw, f"{record.ref}:patches/{number}.json") if raw is not None else None
        lessons = _patch_lessons(store, patch, number, commit)
        # The recorded diff is the one that was validated and committed; recompute
        # only for branches without a record (or whose commit moved since).
        fresh = patch is not None and patch.commit == commit and patch.diff
        diff = patch.diff if fresh else store.diff(s0, commit, skill_dir)
        inputs.append(MergeInput(ref=ref, commit=commit, label=f"patch {number}", lessons=lessons, diff=diff))
    return inputs, excluded


def _patch_lessons(store: GitStore, patch: PatchRecord | None, number: str, commit: str) -> list[Lesson]:
    if patch is not None and patch.lessons:
        return [
            lesson.model_copy(update={
                "id": lesson.id or f"p{number}.{index}",
                "support": lesson.support or [patch.trajectory],
            })
            for index, lesson in enumerate(patch.lessons, start=1)
        ]
    # A branch without a record (made by hand or imported): its subject is the lesson.
    message = store.commit_message(commit)
    subject = message.splitlines()[0]
    trajectory = Provenance.of(message).trajectory or f"patch-{number}"
    return [Lesson(id=f"p{number}.1", text=subject, support=[trajectory])]


def merge_input(report: MergeReport) -> MergeInput:
    """A finished merge as an input of the next level (its diff against S0 is recorded)."""
    return MergeInput(
        ref=report.branch or "", commit=report.commit or "", label=f"merge {report.name}",
        lessons=report.lessons, diff=report.diff,
    )


# ---------------------------------------------------------------------- prompts
def render_messages(*, run: str, name: str, level: int, s0_texts: dict[str, str], inputs: list[MergeInput], min_support: int) -> list[dict[str, str]]:
    system = render(load("merger_system.md"), min_support=min_support, edit_format=edit_format_prompt())
    s0_files = "\n\n".join(f"### {path}\n\n````markdown\n{text}````" for path, text in sorted(s0_texts.items()))
    blocks = []
    for item in inputs:
        lessons = "\n".join(
            f"- `{lesson.id}` (support {len(lesson.support)}: {', '.join(lesson.support)}): {lesson.text}"
            for lesson in item.lessons
        )
        blocks.append(f"### {item.label}\n\nLessons:\n{lessons}\n\nDiff against S0:\n\n```diff\n{item.diff}```")
    lessons_json = json.dumps(
        [{"id": l.id, "support": l.support, "topic": l.topic, "text": l.text} for i in inputs for l in i.lessons],
        indent=1,
    )
    user = render(
        load("merger_task.md"),
        group=name, level=level, run=run, count=len(inputs), s0_files=s0_files,
        inputs="\n\n".join(blocks), lessons_json=lessons_json, min_support=min_support,
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# ---------------------------------------------------------------------- validation
def account(answer: MergerAnswer, inputs: list[MergeInput], min_support: int, name: str) -> tuple[list[Lesson], dict[str, str], list[str]]:
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
                f"lesson {index} has support {len(support)} (< {min_support}): set placement \"reference\", "
                f"give it a topic and put it in references/<topic>.md, not in SKILL.md"
            )
        if placement == "reference" and not TOPIC_RE.match(topic):
            problems.append(f"lesson {index} is placed in a reference but its topic {topic!r} is not a slug of a-z, 0-9 and hyphens")
        merged.append(Lesson(id=lesson_id, text=out.text.strip(), support=support, topic=topic, sources=list(out.sources), placement=placement))
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
            problems.append(f"input lesson {lesson_id} is not accounted for: put it in some lesson's sources or in dropped with a reason")
    return merged, folded, problems


def _reference_problems(merged: list[Lesson], result: RenderResult, s0_texts: dict[str, str]) -> list[str]:
    problems = []
    present = set(s0_texts) | set(result.files)
    for index, lesson in enumerate(merged, start=1):
        if lesson.placement == "reference" and f"references/{lesson.topic}.md" not in present:
            problems.append(f"lesson {index} is placed in references/{lesson.topic}.md but your edits do not create or extend that file")
    return problems


# ---------------------------------------------------------------------- one merge
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
    ask: Callable[[list[dict[str, str]]], Any]
    model: str = ""
    strategy: Literal["parallel", "sequential"] = "parallel"
    parents: list[str] = field(default_factory=list)
    #: Where the merge's new objects wait to be written (None: written at once).
    hold: HeldObjects | None = None


async def run_merge(job: MergeJob) -> tuple[MergeReport, str | None]:
    """Ask the merger until its answer accounts for every lesson and its edits apply.

    Returns the report and the resulting tree (None when the merge failed).
    """
    s0_texts = job.context.texts()
    messages = render_messages(run=job.run, name=job.name, level=job.level, s0_texts=s0_texts, inputs=job.inputs, min_support=job.min_support)
    base = MergeReport(
        run=job.run, name=job.name, level=job.level, group=job.group, strategy=job.strategy, status="failed",
        inputs=[{"label": i.label, "ref": i.ref, "commit": i.commit} for i in job.inputs], model=job.model,
    )
    problems: list[str] = []
    for attempt in range(1, job.retries + 2):
        try:
            answer: MergerAnswer = await job.ask(messages)
        except T2SError as err:
            if err.__class__.__name__ == "BudgetExceeded":
                raise
            return base.model_copy(update={"reason": f"merger call failed: {err.message}", "attempts": attempt}), None
        merged, folded, problems = account(answer, job.inputs, job.min_support, job.name)
        overlaps = find_overlaps(answer.edits, s0_texts)
        problems += [f"overlapping edits: {o}" for o in overlaps]
        if not problems and not answer.edits:
            # Everything accounted for and nothing new to write (all lessons dropped,
            # or, in the sequential baseline, already in the skill): the base tree stands.
            report = base.model_copy(update={
                "status": "merged", "lessons": merged, "folded": folded, "conflicts": answer.conflicts,
                "dropped": answer.dropped, "attempts": attempt, "diff": "",
            })
            return report, job.context.store.tree_of(job.context.s0)
        result: RenderResult | None = None
        if not problems:
            result = await job.context.render_async(answer.edits, hold=job.hold)
            if not result.ok:
                problems += [f.render() for f in result.failures]
            else:
                problems += _reference_problems(merged, result, s0_texts)
        if not problems and result is not None:
            report = base.model_copy(update={
                "status": "merged", "lessons": merged, "folded": folded, "conflicts": answer.conflicts,
                "dropped": answer.dropped, "attempts": attempt, "diff": result.diff,
            })
            return report, result.tree
        messages = messages + [
            {"role": "assistant", "content": answer.model_dump_json()},
            {"role": "user", "content": _feedback(problems, attempt, job.retries + 1)},
        ]
    reason = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
    return base.model_copy(update={"reason": f"no valid merge after {job.retries + 1} attempts: {reason}", "attempts": job.retries + 1}), None


def _feedback(problems: list[str], attempt: int, attempts: int) -> str:
    lines = [f"Your merge was not accepted (attempt {attempt} of {attempts}). Nothing was committed. Fix these and answer again with the complete JSON object:"]
    lines += [f"- {p}" for p in problems]
    return "\n".join(lines)


def render_report(report: MergeReport, excluded: dict[str, str] | None = None) -> tuple[str, str]:
    """Subject and body of a merge commit: the human-readable merge report."""
    subject = f"t2s merge {report.name}: {len(report.lessons)} lessons from {len(report.inputs)} inputs"
    lines = ["Inputs:"]
    lines += [f"- {i['label']} ({i['commit'][:12]})" for i in report.inputs]
    lines += ["", "Lessons kept:"]
    for lesson in report.lessons:
        where = "SKILL.md" if lesson.placement != "reference" else f"references/{lesson.topic}.md"
        lines.append(f"- {lesson.id} [support {len(lesson.support)}, {where}] {lesson.text} (from {', '.join(lesson.sources)})")
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
    if excluded:
        lines += ["", "Excluded by review:"]
        lines += [f"- patch {number}: {reason}" for number, reason in sorted(excluded.items())]
    return subject, "\n".join(lines)


def _trailers(report: MergeReport, patches: Sequence[str] = ()) -> list[tuple[str, str]]:
    return Provenance.for_merge(
        run=report.run, level=report.level, group=report.name, support=report.support, model=report.model,
        strategy="sequential" if report.strategy == "sequential" else None, patches=patches,
    ).trailers()


# ---------------------------------------------------------------------- the tree
def _plan_levels(count: int, fan_in: int) -> list[list[list[int]]]:
    """The merge tree over ``count`` heads if every merge succeeds: per level, its
    groups as indices into the level below."""
    plan = []
    while count > 1:
        groups = balanced_groups(list(range(count)), fan_in)
        plan.append(groups)
        count = len(groups)
    return plan


@contextlib.contextmanager
def _startup_heap_frozen():
    """Keep the garbage collector off the objects alive when merging starts.

    A merge level allocates many short-lived objects, which sets off full collections;
    each rescans the whole heap (about 50 ms on a large one, measured with
    bench/merge_scale.py) while every merge of the level waits.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass
class _Finished:
    """The merge reports and branches a run had when merging started."""

    reports: dict[str, bytes]
    branches: dict[str, str]
    _parsed: dict[str, MergeReport] = field(default_factory=dict)

    def report(self, name: str) -> MergeReport | None:
        """The recorded report of merge ``name``, if an earlier run finished it."""
        if name not in self._parsed:
            raw = self.reports.get(f"{MERGES_DIR}/{name}.json")
            if raw is None:
                return None
            self._parsed[name] = parse_record(MergeReport, raw, f"{MERGES_DIR}/{name}.json of the run record")
        return self._parsed[name]

    def made_from_others(self, name: str, parents: list[str]) -> bool:
        report = self.report(name)
        return report is not None and [i["commit"] for i in report.inputs] != parents


@dataclass
class MergeSettings:
    fan_in: int = 5
    min_support: int = 2
    retries: int = 2
    concurrency: int = 4
    retry_failed: bool = False


class Merger:
    """Drives the levels of one run's merge tree (or the sequential baseline)."""

    def __init__(self, store: GitStore, record: RunRecord, context: PatchContext, ask, settings: MergeSettings, *, model: str = "", progress: Callable[[str], None] | None = None):
        self.store = store
        self.record = record
        self.context = context
        self.ask = ask
        self.settings = settings
        self.model = model
        self.progress = progress or (lambda message: None)
        self.s0 = context.s0
        self.skill_dir = context.skill_dir
        self._loaded: tuple[list[MergeInput], dict[str, str]] | None = None

    def load_inputs(self) -> tuple[list[MergeInput], dict[str, str]]:
        """The run's patch branches to merge and the ones review left out; reading
        them first lets bad records fail before anything is recorded."""
        if self._loaded is None:
            self._loaded = load_patch_inputs(self.store, self.record, self.s0, self.skill_dir)
        return self._loaded

    async def parallel(self) -> MergeSummary:
        inputs, excluded = self.load_inputs()
        summary = MergeSummary(run=self.record.run, strategy="parallel", excluded=excluded, inputs=len(inputs))
        if not inputs:
            raise MergeFailed(f"run {self.record.run!r} has no accepted patch branches to merge", hint=no_inputs_hint(self.record))
        items = inputs
        levels_done = 0
        semaphore = asyncio.Semaphore(max(1, self.settings.concurrency))
        # A level is recorded while later merges wait for the merger: they need only
        # its commits. Levels still land in order, each in one transaction, and all
        # before the candidate moves (or an error propagates).
        recording: asyncio.Future | None = None
        # What an earlier run finished, for resume (this run's own merges are not looked up).
        finished = _Finished(self.record.read_folder(MERGES_DIR), self.store.refs(refs.run_branches(self.record.run) + "merge/"))
        with _startup_heap_frozen():
            try:
                while len(items) > 1:
                    items, levels_done, recording = await self._merge_tree(
                        items, levels_done, excluded, summary, semaphore, recording, finished)
            finally:
                if recording is not None:
                    await recording
        candidate = items[0]
        reachable = set(self.store.rev_list(candidate.commit, [self.s0]))
        check_every_patch_accounted(self.record.run, inputs, excluded,
                                    [_patch_number(i) for i in inputs if i.commit in reachable])
        summary.candidate = candidate.commit
        summary.candidate_ref = candidate_branch(self.record.run)
        self._move_candidate(candidate.commit)
        return summary

    async def _merge_tree(self, items: list[MergeInput], levels_done: int, excluded: dict[str, str],
                          summary: MergeSummary, semaphore: asyncio.Semaphore, recording: asyncio.Future | None,
                          finished: "_Finished") -> tuple[list[MergeInput], int, asyncio.Future | None]:
        """Merge ``items`` up the tree planned for them; returns ``(heads, levels done, recording)``.

        A merge starts as soon as its own inputs exist, not when their whole level is
        done, so a level's model calls overlap the end of the level below. The plan
        assumes every merge succeeds; a failed merge carries its inputs up, which
        regroups every level above it, so those levels are abandoned (nothing of them
        is recorded) and the heads of the next level go back for a new plan.
        """
        plan = _plan_levels(len(items), self.settings.fan_in)
        heads = len(items)
        for offset, groups in enumerate(plan):
            self.progress(f"level {levels_done + offset + 1}: {heads} heads -> {len(groups)} merges")
            heads = len(groups)
        failed_at: list[int] = []  # plan levels where a merge failed
        # A level's trees and commits are computed at once and their files created when
        # the level is recorded, off this busy thread (creating files is slow on some
        # disks). Nothing reads them before: every merge renders against S0.
        held: list[HeldObjects] = [[] for _ in plan]
        nodes: list[list[asyncio.Future]] = []

        def abandoned(at: int) -> bool:
            return bool(failed_at) and min(failed_at) < at

        async def node(at: int, index: int, group: list[int]):
            if at == 0:
                inputs = [items[i] for i in group]
            else:
                below = [await nodes[at - 1][i] for i in group]
                if abandoned(at):
                    return None
                inputs = [merge_input(report) for report, _ in below]
                if finished.made_from_others(f"L{levels_done + at + 1}-{index + 1:02d}", [i.commit for i in inputs]):
                    # An earlier run merged other inputs under this name (its tree was
                    # regrouped). That is an error only if this plan holds, which is
                    # known once the level below is complete.
                    await asyncio.gather(*nodes[at - 1], return_exceptions=True)
                    if abandoned(at):
                        return None
            async with semaphore:
                if abandoned(at):
                    return None
                root = at == len(plan) - 1  # the root merge's report says which patches review left out
                result = await self._merge_group(levels_done + at + 1, index + 1, inputs, excluded if root else {},
                                                 finished, held[at])
            if result[0].status != "merged":
                failed_at.append(at)
            return result

        for at, groups in enumerate(plan):  # every task exists before any runs
            nodes.append([asyncio.ensure_future(node(at, index, group)) for index, group in enumerate(groups)])
        current = items
        try:
            for at, groups in enumerate(plan):
                results = await asyncio.gather(*nodes[at])
                level = levels_done + at + 1
                next_items, recording = self._close_level(
                    level, [[current[i] for i in group] for group in groups], results, summary, recording, held[at])
                if failed_at:
                    if len(next_items) == len(current):
                        await recording  # the failures are recorded before the error says to look at them
                        raise MergeFailed(
                            f"level {level} merged nothing ({len(current)} heads remain); see merges/ in the run record",
                            hint="inspect with `t2s review`, then rerun `t2s merge --retry-failed`",
                        )
                    return next_items, level, recording
                current = next_items
            return current, levels_done + len(plan), recording
        finally:
            unfinished = [task for level_nodes in nodes for task in level_nodes if not task.done()]
            for task in unfinished:  # merges planned on a grouping that no longer holds
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    def _close_level(self, level: int, groups: list[list[MergeInput]], results: list[tuple[MergeReport, bool]],
                     summary: MergeSummary, recording: asyncio.Future | None,
                     held: HeldObjects) -> tuple[list[MergeInput], asyncio.Future]:
        """Count a finished level, start recording it, and give the next level's heads."""
        fresh = [report for report, reused in results if not reused]
        recording = asyncio.ensure_future(self._record_after(recording, level, fresh, held))
        next_items: list[MergeInput] = []
        for group, (report, reused) in zip(groups, results):
            summary.reused += reused
            if report.status == "merged":
                summary.merged += 1
                next_items.append(merge_input(report))
            else:
                summary.failed += 1
                next_items.extend(group)  # carried up unmerged, never lost
        summary.levels.append([report.name for report, _ in results])
        return next_items, recording

    async def _merge_group(
        self, level: int, group: int, inputs: list[MergeInput], excluded: dict[str, str],
        finished: "_Finished", held: HeldObjects,
    ) -> tuple[MergeReport, bool]:
        name = f"L{level}-{group:02d}"
        ref = merge_branch(self.record.run, level, group)
        existing = self._existing(name, ref, [i.commit for i in inputs], finished)
        if existing is not None:
            return existing, True
        job = MergeJob(
            run=self.record.run, name=name, level=level, group=group, inputs=inputs, context=self.context,
            min_support=self.settings.min_support, retries=self.settings.retries, ask=self.ask, model=self.model,
            hold=held,
        )
        report, tree = await run_merge(job)
        if tree is not None:
            subject, body = render_report(report, excluded)
            parents = [i.commit for i in inputs]
            commit = self.store.commit(tree, parents, subject, body, _trailers(report), hold=held)
            report = report.model_copy(update={"commit": commit, "branch": ref})
        self.progress(f"{name}: {report.status}" + (f" ({report.reason})" if report.reason else ""))
        return report, False

    async def _record_after(self, previous: asyncio.Future | None, level: int, reports: list[MergeReport], held: HeldObjects) -> None:
        """Record a level once the level before it is recorded (if that failed, so does this)."""
        if previous is not None:
            await previous
        await asyncio.to_thread(self._persist_level, level, reports, held)

    def _persist_level(self, level: int, reports: list[MergeReport], held: HeldObjects) -> None:
        """Write a level's objects, then record its reports and create its merge
        branches in one transaction."""
        self.store.write_held(held)
        if not reports:
            return
        files = {f"{MERGES_DIR}/{r.name}.json": r for r in reports}
        updates = [RefUpdate(r.branch, r.commit, ZERO_SHA) for r in reports if r.status == "merged"]
        merged = sum(1 for r in reports if r.status == "merged")
        self.record.write(files, f"t2s merge level {level}: {merged} merged, {len(reports) - merged} failed",
                          refs=updates)

    def _existing(self, name: str, ref: str, parents: list[str], finished: _Finished) -> MergeReport | None:
        """A merge an earlier run finished from exactly these parents, reused on resume."""
        report = finished.report(name)
        if report is None:
            if ref in finished.branches:
                raise UsageError(f"{ref} exists but the run record has no report for it",
                                 hint=f"`t2s merge --run {self.record.run} --rebuild` sets the old merge tree aside and merges again")
            return None
        if finished.made_from_others(name, parents):
            raise UsageError(
                f"merge {name} of run {self.record.run!r} was made from other inputs",
                hint=(f"the run's patches changed since it was merged (a review verdict?): "
                      f"`t2s merge --run {self.record.run} --rebuild` sets the old merge tree aside and merges again"),
            )
        if report.status == "failed" and self.settings.retry_failed:
            return None
        return report

    def _move_candidate(self, commit: str) -> None:
        ref = candidate_branch(self.record.run)
        old = self.store.rev_parse(ref)
        if old != commit:
            self.store.update_refs([RefUpdate(ref, commit, old or ZERO_SHA)])

    async def sequential(self, batch: int) -> MergeSummary:
        """The paper's baseline: each batch of patches edits the current skill in turn."""
        if batch < 1:
            raise UsageError(f"--batch must be at least 1 (got {batch})")
        inputs, excluded = self.load_inputs()
        if not inputs:
            raise MergeFailed(f"run {self.record.run!r} has no accepted patch branches to merge", hint=no_inputs_hint(self.record))
        summary = MergeSummary(run=self.record.run, strategy="sequential", excluded=excluded, inputs=len(inputs))
        current = self.s0
        carried: list[Lesson] = []
        for index, start in enumerate(range(0, len(inputs), batch), start=1):
            chunk = inputs[start:start + batch]
            name = f"S{index:03d}"
            ref = refs.sequential_branch(self.record.run, index)
            group_inputs = list(chunk)
            if carried:
                group_inputs.insert(0, MergeInput(ref="", commit=current, label="current skill", lessons=carried, diff=self.store.diff(self.s0, current, self.skill_dir)))
            context = PatchContext(self.store, current, self.skill_dir, strict=self.context.strict, limits=self.context.limits)
            job = MergeJob(
                run=self.record.run, name=name, level=index, group=1, inputs=group_inputs, context=context,
                min_support=self.settings.min_support, retries=self.settings.retries, ask=self.ask,
                model=self.model, strategy="sequential",
            )
            report, tree = await run_merge(job)
            if tree is None:
                summary.failed += 1
                self.record.write({f"{MERGES_DIR}/{name}.json": report}, f"t2s sequential {name}: failed")
                raise MergeFailed(f"sequential step {name} failed: {report.reason}")
            subject, body = render_report(report)
            patches = [_patch_number(i) for i in chunk]
            commit = self.store.commit(tree, [current], subject, body, _trailers(report, patches))
            report = report.model_copy(update={"commit": commit, "branch": ref})
            old = self.store.rev_parse(ref)
            self.store.update_refs([RefUpdate(ref, commit, old or ZERO_SHA)])
            self.record.write({f"{MERGES_DIR}/{name}.json": report}, f"t2s sequential {name}: merged")
            summary.merged += 1
            summary.levels.append([name])
            current, carried = commit, report.lessons
            self.progress(f"{name}: merged {len(chunk)} patches")
        check_every_patch_accounted(self.record.run, inputs, excluded, _chain_patches(self.store, current, self.s0))
        ref = refs.sequential_candidate(self.record.run)
        old = self.store.rev_parse(ref)
        self.store.update_refs([RefUpdate(ref, current, old or ZERO_SHA)])
        summary.candidate, summary.candidate_ref = current, ref
        return summary


# ---------------------------------------------------------------------- accounting
class PatchesLost(MergeFailed):
    """A merge would have produced a candidate that does not hold every patch."""


def _patch_number(item: MergeInput) -> str:
    return item.label.split()[-1]


def _chain_patches(store: GitStore, head: str, s0: str) -> list[str]:
    """The patches the sequential chain from ``s0`` to ``head`` says it merged, from
    the ``T2S-Patch`` trailers of its commits (what a reader of the history sees)."""
    return store.trailer_values(head, [s0], KEYS["patch"])


def check_every_patch_accounted(run: str, inputs: Sequence[MergeInput], excluded: dict[str, str],
                                merged: Sequence[str]) -> None:
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
        raise PatchesLost(f"merge of run {run!r} refused: {'; '.join(problems)} "
                          f"({len(numbers)} patches in, {len(excluded)} left out by review)",
                          hint="this is a bug in t2s; the candidate branch was not moved")


def set_aside_merges(store: GitStore, record: RunRecord) -> str | None:
    """Set a run's merge tree aside so the run can be merged again (``--rebuild``).

    In one transaction: the merge branches and the candidate branch are deleted, the
    old candidate is kept at ``refs/t2s/superseded/<run>/<nnn>`` (so every old merge
    commit stays reachable), and the merge reports move to ``superseded/<nnn>/`` in
    the run record. Returns ``<nnn>``, or None when there was nothing to set aside.
    Only what t2s wrote is touched; the response cache makes unchanged groups free.
    """
    branches = store.refs(refs.run_branches(record.run) + "merge/")
    reports = {path: data for path, data in record.read_folder(MERGES_DIR).items()
               if path.rsplit("/", 1)[-1].startswith("L")}  # S*.json belong to the sequential baseline
    candidate_ref = candidate_branch(record.run)
    candidate = store.rev_parse(candidate_ref)
    if not branches and not reports and not candidate:
        return None
    keep_prefix = refs.superseded(record.run)
    taken = {ref[len(keep_prefix):] for ref in store.refs(keep_prefix)}
    taken |= {path.split("/")[1] for path in record.list("superseded")}
    name = f"{max((int(n) for n in taken if n.isdigit()), default=0) + 1:03d}"
    updates = [RefUpdate(ref, ZERO_SHA, sha) for ref, sha in branches.items()]
    if candidate:
        updates += [RefUpdate(candidate_ref, ZERO_SHA, candidate), RefUpdate(keep_prefix + name, candidate, ZERO_SHA)]
    files: dict[str, bytes | None] = {path: None for path in reports}
    files.update({f"superseded/{name}/{path}": data for path, data in reports.items()})
    record.write(files, f"t2s merge {record.run}: merge tree set aside as superseded/{name}", refs=updates)
    return name


def merger_ask(llm, *, phase: str = "merge"):
    """The merger model call: structured output validated as :class:`MergerAnswer`."""

    async def ask(messages: list[dict[str, str]]) -> MergerAnswer:
        return await llm.structured("merger", messages, MergerAnswer, phase=phase, instruct=False)

    return ask


__all__ = [
    "MergeFailed",
    "MergeInput",
    "MergeReport",
    "MergeSettings",
    "MergeSummary",
    "Merger",
    "PatchesLost",
    "MergerAnswer",
    "balanced_groups",
    "check_every_patch_accounted",
    "merger_ask",
    "render_report",
    "set_aside_merges",
]
