"""``t2s blame``: from a line of the evolved SKILL.md back to the trajectories behind it.

``git blame`` on the candidate names the commit that introduced the line: a patch
commit when the merger kept the analyst's wording, otherwise the merge commit that
wrote it. From there the merge reports in the run record lead down through the
lessons each merged lesson consolidated, to patch branches, trajectories and tasks.
"""

from __future__ import annotations

import difflib
import re

from pydantic import BaseModel, Field

from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.lessons import MERGES_DIR, PatchRecord
from t2s.record.provenance import Provenance
from t2s.record.refs import candidate_branch, patch_branch
from t2s.record.runs import RunRecord

MATCH_THRESHOLD = 0.35


class Origin(BaseModel):
    """One lesson in the chain, with where it came from."""

    lesson: str
    text: str
    support: list[str] = Field(default_factory=list)
    kind: str  # "merge" | "patch"
    where: str  # merge name or patch number
    branch: str = ""
    commit: str = ""
    trajectory: str = ""
    task: str = ""
    children: list[Origin] = Field(default_factory=list)


class BlameResult(BaseModel):
    run: str
    line: int
    text: str
    #: The commit git blame names for the line (the first merge or patch that had it).
    commit: str
    #: The candidate's merge (or patch) whose lessons explain the line, or "S0".
    introduced_by: str
    origins: list[Origin] = Field(default_factory=list)
    trajectories: list[str] = Field(default_factory=list)
    tasks: list[str] = Field(default_factory=list)
    patches: list[str] = Field(default_factory=list)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


class _Tracer:
    def __init__(self, store: GitStore, record: RunRecord):
        self.store = store
        self.record = record
        self._reports: dict[str, dict] = {}
        self._patches: dict[str, PatchRecord | None] = {}

    def report(self, name: str) -> dict:
        if name not in self._reports:
            self._reports[name] = self.record.read_json(f"{MERGES_DIR}/{name}.json") or {}
        return self._reports[name]

    def patch(self, number: str) -> PatchRecord | None:
        if number not in self._patches:
            self._patches[number] = self.record.read_model(f"patches/{number}.json", PatchRecord)
        return self._patches[number]

    def trace(self, lesson_id: str) -> Origin | None:
        """The origin tree of lesson ``lesson_id`` (``L1-02.3`` or ``p0007.1``)."""
        owner, _, _index = lesson_id.rpartition(".")
        if owner.startswith("p"):
            return self._patch_origin(owner[1:], lesson_id)
        report = self.report(owner)
        lesson = next((item for item in report.get("lessons", []) if item["id"] == lesson_id), None)
        if lesson is None:
            return None
        children = [c for c in (self.trace(source) for source in lesson.get("sources", [])) if c]
        return Origin(
            lesson=lesson_id,
            text=lesson["text"],
            support=lesson.get("support", []),
            kind="merge",
            where=owner,
            branch=report.get("branch") or "",
            commit=report.get("commit") or "",
            children=children,
        )

    def _patch_origin(self, number: str, lesson_id: str) -> Origin | None:
        record = self.patch(number)
        if record is None:
            return Origin(
                lesson=lesson_id, text="", kind="patch", where=number, branch=patch_branch(self.record.run, number)
            )
        lesson = next((item for item in record.lessons if item.id == lesson_id), None)
        if lesson is None and record.lessons:
            index = int(lesson_id.rpartition(".")[2] or 1) - 1
            lesson = record.lessons[min(index, len(record.lessons) - 1)]
        return Origin(
            lesson=lesson_id,
            text=lesson.text if lesson else "",
            support=[record.trajectory],
            kind="patch",
            where=number,
            branch=record.branch or patch_branch(self.record.run, number),
            commit=record.commit or "",
            trajectory=record.trajectory,
            task=record.task,
        )

    def best_lessons(self, lessons: list[dict], line: str) -> list[dict]:
        """The merged lessons a line most likely expresses (all of them if none matches)."""
        scored = [
            (difflib.SequenceMatcher(None, _norm(lesson["text"]), _norm(line)).ratio(), lesson) for lesson in lessons
        ]
        if not scored:
            return []
        best = max(score for score, _ in scored)
        if best < MATCH_THRESHOLD:
            return lessons
        return [lesson for score, lesson in scored if score >= best - 0.05]


def blame(store: GitStore, run: str, *, line: int | None = None, text: str | None = None) -> BlameResult:
    record = RunRecord(store, run)
    manifest = record.manifest()
    candidate = candidate_branch(run)
    if not store.rev_parse(candidate):
        raise UsageError(f"run {run!r} has no candidate yet", hint=f"run `t2s merge --run {run}`")
    lines = store.blame(candidate, f"{manifest.skill_dir}/SKILL.md")
    number = _pick_line(lines, line, text)
    commit, content = lines[number - 1]
    result = BlameResult(run=run, line=number, text=content, commit=commit, introduced_by="S0")
    if store.is_ancestor(commit, manifest.s0):
        return result  # the line was already in S0: the run did not write it
    # Start from the candidate's own report: git blame stops at whichever merge first
    # had the line, but the candidate's lessons carry the full, cross-group support.
    root = store.resolve(candidate)
    prov = Provenance.of(store.commit_message(root))
    tracer = _Tracer(store, record)
    if prov.kind == "merge" and prov.merge_group:
        name = prov.merge_group
        result.introduced_by = f"merge {name}"
        report = tracer.report(name)
        for lesson in tracer.best_lessons(report.get("lessons", []), content):
            origin = tracer.trace(lesson["id"])
            if origin:
                result.origins.append(origin)
    elif prov.kind == "patch" and prov.patch:
        number_ = prov.patch
        result.introduced_by = f"patch {number_}"
        record_ = tracer.patch(number_)
        ids = [lesson.id for lesson in record_.lessons] if record_ else [f"p{number_}.1"]
        result.origins = [o for o in (tracer.trace(i) for i in ids) if o]
    _collect(result)
    return result


def _pick_line(lines: list[tuple[str, str]], line: int | None, text: str | None) -> int:
    if line is not None and text is None:
        if not 1 <= line <= len(lines):
            raise UsageError(f"line {line} is out of range: the candidate's SKILL.md has {len(lines)} lines")
        return line
    if text is None or line is not None:
        raise UsageError("give a LINE number or --text TEXT (one of them)")
    needle = text.lower()
    for index, (_, content) in enumerate(lines, start=1):
        if needle in content.lower():
            return index
    raise UsageError(f"no line of the candidate's SKILL.md contains {text!r}")


def _collect(result: BlameResult) -> None:
    trajectories, tasks, patches = set(), set(), set()

    def walk(origin: Origin) -> None:
        if origin.kind == "patch":
            patches.add(origin.where)
            if origin.trajectory:
                trajectories.add(origin.trajectory)
            if origin.task:
                tasks.add(origin.task)
        for child in origin.children:
            walk(child)

    for origin in result.origins:
        walk(origin)
    result.trajectories, result.tasks, result.patches = sorted(trajectories), sorted(tasks), sorted(patches)


def render_tree(result: BlameResult) -> list[str]:
    """The origin tree as indented text lines."""
    out = []

    def walk(origin: Origin, depth: int) -> None:
        pad = "  " * depth
        if origin.kind == "merge":
            out.append(
                f"{pad}{origin.lesson} [support {len(origin.support)}] in merge {origin.where} ({origin.commit[:12]}): {origin.text}"
            )
        else:
            out.append(
                f"{pad}{origin.lesson} patch {origin.where} ({refs.short(origin.branch)}) <- trajectory {origin.trajectory or '?'}, task {origin.task or '?'}: {origin.text}"
            )
        for child in origin.children:
            walk(child, depth + 1)

    for origin in result.origins:
        walk(origin, 0)
    return out
