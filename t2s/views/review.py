"""Review: a run's patches as a pull-request list, one patch's evidence, verdicts, PR bodies.

Everything here is read from git: the run record (``patches/*.json`` for every analyzed
trajectory, accepted or not; ``merges/*.json``; ``trajectories/*.json``), the patch
branches and their trailers, and the notes in ``refs/notes/t2s/review`` (human
verdicts, which ``t2s merge`` honours) and ``refs/notes/t2s/eval``. The only write is a
verdict note (:func:`record_verdict`).

A patch's *status* is one of:

- ``merged into L1-02``: the merge (lowest level) whose octopus parents include it;
- ``candidate``: the run's only patch, so the candidate itself;
- ``rejected: <reason>``: the analyst's patch was refused (no branch);
- ``rejected in review: <comment>``: a reviewer rejected it; merge leaves it out;
- ``unvalidated``: an agentic analysis whose fix never passed the checker;
- ``open``: a branch not merged yet;
- ``missing``: the record says accepted but the branch is gone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from t2s.agent.trajectory import load_trajectory
from t2s.consolidation.models import MergeReport
from t2s.errors import UsageError
from t2s.evaluation.summary import eval_table_markdown
from t2s.gitstore.store import GitStore, parse_trailers
from t2s.record import refs
from t2s.record.lessons import (
    MERGE_TRANSCRIPTS_DIR,
    MERGES_DIR,
    PATCHES_DIR,
    Lesson,
    PatchRecord,
    support_of,
)
from t2s.record.notes import EVAL_NOTES, REVIEW_NOTES, EvalNote, GateRecord, ReviewNote
from t2s.record.provenance import Provenance
from t2s.record.runs import RunManifest, RunRecord, list_runs
from t2s.tasks.base import CheckReport

State = Literal["merged", "rejected", "unvalidated", "open", "missing"]

_NUMBER_RE = re.compile(r"^\d{1,6}$")


# ---------------------------------------------------------------------- views
class PatchView(BaseModel):
    """One row of ``t2s review``: a patch and what became of it."""

    run: str
    patch: str
    task: str = ""
    trajectory: str = ""
    outcome: str = ""
    analyst: str = ""
    model: str = ""
    #: ``yes`` | ``no`` | ``n/a`` (single-call analysts have nothing to validate) | ``""``.
    validated: str = ""
    #: The analyst stage's verdict: ``accepted`` | ``rejected`` | ``unvalidated``, or
    #: ``""`` for a branch without a record (made by hand or imported).
    record_status: str = ""
    reason: str = ""
    lessons: list[Lesson] = Field(default_factory=list)
    failure_causes: list[str] = Field(default_factory=list)
    lines_added: int = 0
    lines_removed: int = 0
    branch: str | None = None
    commit: str | None = None
    #: The lowest-level successful merge that has this patch among its parents.
    merged_into: str | None = None
    #: Whether the run's candidate contains this patch.
    in_candidate: bool = False
    verdict: ReviewNote | None = None
    state: State = "open"
    status: str = ""
    trailers: dict[str, str] = Field(default_factory=dict)

    @property
    def short_branch(self) -> str:
        return refs.short(self.branch or "")

    @property
    def verdict_text(self) -> str:
        if self.verdict is None:
            return ""
        word = {"approve": "approved", "reject": "rejected"}[self.verdict.verdict]
        who = f" by {self.verdict.reviewer}" if self.verdict.reviewer else ""
        return f"{word}{who}" + (f": {self.verdict.comment}" if self.verdict.comment else "")


class ExcerptStep(BaseModel):
    index: int
    turn: int = 0
    tool: str
    arguments: str = ""
    observation: str = ""
    exit_code: int | None = None
    error: str | None = None
    failed: bool = False


class Excerpt(BaseModel):
    """The part of a trajectory around its failure (or its last steps)."""

    trajectory: str
    task: str = ""
    verdict: str = ""
    stop_reason: str = ""
    error: str | None = None
    instruction: str = ""
    steps_total: int = 0
    #: Index of the first failing step, if any step failed.
    focus: int | None = None
    why: str = ""
    steps: list[ExcerptStep] = Field(default_factory=list)
    check: str = ""

    def render(self) -> str:
        lines = [
            f"trajectory {self.trajectory} of task {self.task or '?'}: {self.verdict or '?'}"
            + (f", stop: {self.stop_reason}" if self.stop_reason else "")
            + f", {self.steps_total} step(s)"
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        if self.instruction:
            lines.append(f"instruction: {self.instruction}")
        if self.why:
            lines.append(f"showing {self.why}")
        for step in self.steps:
            mark = "  <-- failed" if step.failed else ""
            code = f" exit {step.exit_code}" if step.exit_code is not None else ""
            lines.append(f"--- step {step.index} (turn {step.turn}) {step.tool}{code}{mark}")
            if step.arguments:
                lines.append(step.arguments)
            if step.error:
                lines.append(f"error: {step.error}")
            if step.observation:
                lines.append("observation:")
                lines.append(step.observation)
        if self.check:
            lines.append("--- checker report")
            lines.append(self.check)
        return "\n".join(lines)


class PatchDetail(BaseModel):
    """Everything ``t2s show`` prints about one patch."""

    view: PatchView
    s0: str = ""
    skill_dir: str = ""
    diff: str = ""
    subject: str = ""
    excerpt: Excerpt | None = None
    #: Why there is no excerpt (no trajectory in the run record, unreadable...).
    excerpt_missing: str = ""
    gate: GateRecord | None = None


class CandidateView(BaseModel):
    """The run's candidate: the root of its merge tree and what went into it."""

    run: str
    ref: str
    commit: str
    s0: str
    skill_dir: str
    strategy: str = "parallel"
    root: str = ""
    lessons: list[Lesson] = Field(default_factory=list)
    levels: list[list[str]] = Field(default_factory=list)
    patches: list[PatchView] = Field(default_factory=list)
    left_out: list[PatchView] = Field(default_factory=list)
    diff: str = ""
    gate: GateRecord | None = None

    @property
    def support(self) -> int:
        return len(support_of(self.lessons))


# ---------------------------------------------------------------------- the run, loaded once
@dataclass
class RunData:
    """A run read in a handful of git calls: records, reports, branches, notes."""

    store: GitStore
    record: RunRecord
    manifest: RunManifest
    patches: dict[str, PatchRecord] = field(default_factory=dict)
    #: Merge reports by name (``L1-02``, ``S003``), as plain :class:`t2s.consolidation.models.MergeReport`.
    reports: dict[str, Any] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, ReviewNote] = field(default_factory=dict)
    candidate_ref: str | None = None
    candidate: str | None = None
    ledgers: dict[str, dict] = field(default_factory=dict)

    @property
    def run(self) -> str:
        return self.record.run

    @property
    def strategy(self) -> str:
        if self.candidate_ref and self.candidate_ref.endswith("/seq/candidate"):
            return "sequential"
        return "parallel"

    def tree_reports(self) -> list[Any]:
        """The merge reports of the candidate's strategy, by level then group."""
        prefix = "S" if self.strategy == "sequential" else "L"
        reports = [r for name, r in self.reports.items() if name.startswith(prefix)]
        return sorted(reports, key=lambda r: (r.level, r.group, r.name))

    @cached_property
    def validation_left_out(self) -> set[str]:
        """Commits below a merge that validation rejected (those not carried up in its
        place are left out of the candidate)."""
        by_commit = {r.commit: r for r in self.tree_reports() if r.status == "merged" and r.commit}
        stack = [
            r.commit for r in by_commit.values() if r.validation is not None and r.validation.verdict == "rejected"
        ]
        below: set[str] = set()
        while stack:
            commit = stack.pop()
            for item in by_commit[commit].inputs if commit in by_commit else []:
                if item.get("commit") and item["commit"] not in below:
                    below.add(item["commit"])
                    stack.append(item["commit"])
        return below


def load_run(store: GitStore, run: str) -> RunData:
    """Read a run's record, patch branches, merge reports and review notes."""

    record = RunRecord(store, run)
    manifest = record.manifest()
    head = record.head()
    data = RunData(store=store, record=record, manifest=manifest)
    for value in _read_json_dir(store, head, PATCHES_DIR).values():
        try:
            patch = PatchRecord.model_validate(value)
        except ValidationError:
            continue
        data.patches[patch.patch] = patch
    for value in _read_json_dir(store, head, MERGES_DIR).values():
        try:
            report = MergeReport.model_validate(value)
        except ValidationError:
            continue
        data.reports[report.name] = report
    data.ledgers = {
        path.rsplit("/", 1)[-1].removesuffix(".json"): value
        for path, value in _read_json_dir(store, head, "ledger").items()
        if isinstance(value, dict)
    }
    branches = store.refs(refs.run_branches(run))
    data.branches = {
        parsed.number: sha for ref, sha in branches.items() if (parsed := refs.parse_patch_branch(ref)) is not None
    }
    for ref in (refs.candidate_branch(run), refs.sequential_candidate(run)):
        if ref in branches:
            data.candidate_ref, data.candidate = ref, branches[ref]
            break
    commits = set(data.branches.values()) | {p.commit for p in data.patches.values() if p.commit}
    raw = store.read_objects(commits)
    for sha, body in raw.items():
        text = body.decode(errors="replace")
        data.messages[sha] = text.split("\n\n", 1)[1] if "\n\n" in text else ""
    notes = store.list_notes(REVIEW_NOTES)
    wanted = {c: notes[c] for c in commits if c in notes}
    blobs = store.read_objects(wanted.values())
    for commit, blob in wanted.items():
        try:
            data.verdicts[commit] = ReviewNote.model_validate_json(blobs.get(blob, b""))
        except ValidationError:
            continue
    return data


def _read_json_dir(store: GitStore, head: str | None, folder: str) -> dict[str, Any]:
    """``path -> parsed JSON`` for the ``*.json`` files under ``folder`` at ``head`` (batched)."""
    if not head or not store.subtree(head, folder):
        return {}
    entries = [e for e in store.list_tree(head, folder) if e.type == "blob" and e.path.endswith(".json")]
    blobs = store.read_objects(e.sha for e in entries)
    out: dict[str, Any] = {}
    for entry in entries:
        try:
            out[entry.path] = json.loads(blobs[entry.sha])
        except (KeyError, ValueError):
            continue
    return out


# ---------------------------------------------------------------------- rows
def review_rows(store: GitStore, run: str, data: RunData | None = None) -> list[PatchView]:
    """Every patch of ``run``: records (even rejected ones without a branch) and branches."""
    data = data or load_run(store, run)
    merged_into, in_candidate = _merge_index(data)
    numbers = sorted(set(data.patches) | set(data.branches))
    return [_view(data, number, merged_into, in_candidate) for number in numbers]


def _merge_index(data: RunData) -> tuple[dict[str, str], set[str]]:
    """commit -> lowest-level merge that took it; commits the candidate contains."""
    merged_into: dict[str, tuple[int, str]] = {}
    by_commit: dict[str, Any] = {}
    for report in data.tree_reports():
        if report.status != "merged" or not report.commit:
            continue
        by_commit[report.commit] = report
        for item in report.inputs:
            commit = item.get("commit", "")
            if commit and (commit not in merged_into or report.level < merged_into[commit][0]):
                merged_into[commit] = (report.level, report.name)
    reached: set[str] = set()
    stack = [data.candidate] if data.candidate else []
    while stack:
        commit = stack.pop()
        if commit in reached:
            continue
        reached.add(commit)
        report = by_commit.get(commit)
        if report is not None:
            stack.extend(i.get("commit", "") for i in report.inputs if i.get("commit"))
    return {c: name for c, (_, name) in merged_into.items()}, reached


def _view(data: RunData, number: str, merged_into: dict[str, str], in_candidate: set[str]) -> PatchView:
    patch = data.patches.get(number)
    commit = data.branches.get(number)
    branch = refs.patch_branch(data.run, number) if commit else None
    message = data.messages.get(commit, "") if commit else ""
    trailers = dict(parse_trailers(message))
    prov = Provenance.of(message)
    view = PatchView(run=data.run, patch=number, branch=branch, commit=commit, trailers=trailers)
    if patch is not None:
        view.task, view.trajectory, view.outcome = patch.task, patch.trajectory, patch.outcome
        view.analyst, view.model, view.record_status, view.reason = (
            patch.analyst,
            patch.model,
            patch.status,
            patch.reason,
        )
        view.lessons, view.failure_causes = list(patch.lessons), list(patch.failure_causes)
        view.lines_added, view.lines_removed = patch.lines_added, patch.lines_removed
        if patch.analyst == "agentic":
            view.validated = "yes" if patch.validated else "no"
        else:
            view.validated = "n/a"
    else:
        view.task = prov.task or ""
        view.trajectory = prov.trajectory or ""
        view.outcome = prov.outcome or ""
        view.analyst = prov.analyst or ""
        view.model = prov.model or ""
        subject = message.strip().splitlines()[:1]
        if subject:
            view.lessons = [
                Lesson(id=f"p{number}.1", text=subject[0], support=[view.trajectory] if view.trajectory else [])
            ]
        if commit:
            view.lines_added, view.lines_removed = count_lines(data.store.diff(data.manifest.s0, commit))
    if prov.validated is not None:
        view.validated = prov.validated
    view.verdict = data.verdicts.get(commit) if commit else None
    view.merged_into = merged_into.get(commit) if commit else None
    view.in_candidate = bool(commit and commit in in_candidate)
    view.state, view.status = _status(view)
    if view.state == "merged" and data.candidate and not view.in_candidate and commit in data.validation_left_out:
        # merged into a node that validation rejected, and not carried up: not in the candidate
        view.state, view.status = "rejected", f"left out: merged into {view.merged_into}, rejected by validation"
    return view


def state_counts(rows: list[PatchView]) -> str:
    """One line of patch counts by state, the same in every view ("2 merged, 1 rejected").
    A patch that is the candidate itself (nothing was merged) counts as "in the
    candidate", not "merged"."""
    counts: dict[str, int] = {}
    for row in rows:
        label = "in the candidate" if row.state == "merged" and not row.merged_into else row.state
        counts[label] = counts.get(label, 0) + 1
    return ", ".join(f"{n} {label}" for label, n in sorted(counts.items()))


def _status(view: PatchView) -> tuple[State, str]:
    rejected = view.verdict is not None and view.verdict.verdict == "reject"
    comment = (view.verdict.comment if view.verdict else "") or "rejected in review"
    if view.commit:
        if view.merged_into or view.in_candidate:
            where = f"merged into {view.merged_into}" if view.merged_into else "candidate"
            if rejected:
                where += f" (rejected in review after the merge: {comment})"
            return "merged", where
        if rejected:
            return "rejected", f"rejected in review: {comment}"
        if view.record_status == "unvalidated":
            return "unvalidated", "unvalidated"
        return "open", "open"
    if view.record_status == "rejected":
        return "rejected", f"rejected: {view.reason or 'no reason recorded'}"
    if view.record_status == "unvalidated":
        return "unvalidated", "unvalidated" + (f": {view.reason}" if view.reason else "")
    return (
        "missing",
        f"missing: the record says {view.record_status or 'accepted'} but branch {refs.short(refs.patch_branch(view.run, view.patch))} is gone",
    )


def count_lines(diff: str) -> tuple[int, int]:
    """Lines added and removed in a unified diff (file headers not counted)."""
    added = removed = 0
    for line in diff.splitlines():
        if line.startswith("+++") or line.startswith("---"):
            continue
        if line.startswith("+"):
            added += 1
        elif line.startswith("-"):
            removed += 1
    return added, removed


# ---------------------------------------------------------------------- naming a patch
def resolve_patch(store: GitStore, spec: str, run: str | None = None) -> tuple[str, str]:
    """``(run, number)`` for a patch given as ``0007``, ``t2s/r1/patch/0007``, a full ref
    or a commit. A bare number needs ``run`` only when several runs have that number."""
    found_run: str | None
    number: str | None
    spec = (spec or "").strip()
    if not spec:
        raise UsageError("name a patch: 0007, t2s/RUN/patch/0007, or a commit")
    parsed = refs.parse_patch_branch(spec)
    if parsed:
        found_run, number = parsed.run, parsed.number
        if run and run != found_run:
            raise UsageError(f"{spec} belongs to run {found_run!r}, not {run!r}")
        _require_patch(store, found_run, number)
        return found_run, number
    if _NUMBER_RE.match(spec):
        number = spec.zfill(4)
        if run:
            _require_patch(store, run, number)
            return run, number
        runs = [r for r in list_runs(store) if _has_patch(store, r, number)]
        if len(runs) == 1:
            return runs[0], number
        if not runs:
            raise UsageError(f"no run has a patch {number}", hint="list a run's patches with `t2s review --run NAME`")
        raise UsageError(f"patch {number} is ambiguous: runs {', '.join(runs)} all have one", hint="pass --run NAME")
    commit = store.rev_parse(f"{spec}^{{commit}}")
    if not commit:
        raise UsageError(f"{spec!r} names no patch: give a number (0007), a branch (t2s/r1/patch/0007) or a commit")
    prov = Provenance.of(store.commit_message(commit))
    found_run, number = prov.run, prov.patch
    if not (found_run and number and _has_patch(store, found_run, number)):
        found_run = number = None
        for ref, sha in store.refs(refs.BRANCHES).items():
            parsed = refs.parse_patch_branch(ref)
            if sha == commit and parsed and (run is None or parsed.run == run):
                found_run, number = parsed.run, parsed.number
                break
    if not (found_run and number):
        raise UsageError(
            f"{spec} ({commit[:12]}) is not a t2s patch commit",
            hint="list a run's patches with `t2s review --run NAME`",
        )
    if run and run != found_run:
        raise UsageError(f"{spec} belongs to run {found_run!r}, not {run!r}")
    return found_run, number


def _has_patch(store: GitStore, run: str, number: str) -> bool:
    try:
        RunRecord(store, run)
    except UsageError:
        return False
    return bool(
        store.rev_parse(refs.patch_branch(run, number))
        or store.rev_parse(refs.record_path(run, f"{PATCHES_DIR}/{number}.json"))
    )


def _require_patch(store: GitStore, run: str, number: str) -> None:
    if not RunRecord(store, run).exists():
        raise UsageError(f"run {run!r} does not exist")
    if not _has_patch(store, run, number):
        raise UsageError(f"run {run!r} has no patch {number}", hint=f"list its patches with `t2s review --run {run}`")


def resolve_candidate(store: GitStore, spec: str = "candidate", run: str | None = None) -> str:
    """The run a ``candidate`` (or ``t2s/r1/candidate``) names; the only run with one if
    ``run`` is not given."""
    named = refs.parse_candidate_branch(spec)
    if named:
        if run and run != named:
            raise UsageError(f"{spec} belongs to run {named!r}, not {run!r}")
        return named
    if run:
        return run
    runs = [
        r
        for r in list_runs(store)
        if store.rev_parse(refs.candidate_branch(r)) or store.rev_parse(refs.sequential_candidate(r))
    ]
    if len(runs) == 1:
        return runs[0]
    if not runs:
        raise UsageError("no run has a candidate yet", hint="run `t2s merge --run NAME` first")
    raise UsageError(f"several runs have a candidate ({', '.join(runs)})", hint="pass --run NAME")


def patch_view(store: GitStore, spec: str, run: str | None = None, data: RunData | None = None) -> PatchView:
    run, number = resolve_patch(store, spec, run)
    data = data or load_run(store, run)
    merged_into, in_candidate = _merge_index(data)
    return _view(data, number, merged_into, in_candidate)


# ---------------------------------------------------------------------- show
def patch_detail(store: GitStore, spec: str, run: str | None = None, *, context_steps: int = 2) -> PatchDetail:
    """Provenance, diff, lessons and a trajectory excerpt for one patch."""
    run, number = resolve_patch(store, spec, run)
    data = load_run(store, run)
    merged_into, in_candidate = _merge_index(data)
    view = _view(data, number, merged_into, in_candidate)
    detail = PatchDetail(view=view, s0=data.manifest.s0, skill_dir=data.manifest.skill_dir)
    record = data.patches.get(number)
    if view.commit:
        detail.diff = store.diff(data.manifest.s0, view.commit)
        detail.subject = (
            data.messages.get(view.commit, "").strip().splitlines()[0]
            if data.messages.get(view.commit, "").strip()
            else ""
        )
        note = _eval_note(store, view.commit)
        detail.gate = note.gate if note else None
    elif record is not None:
        detail.diff = record.diff
    trajectory_id = view.trajectory
    if not trajectory_id:
        detail.excerpt_missing = "no trajectory is named for this patch"
        return detail
    raw = data.record.read(f"trajectories/{trajectory_id}.json")
    if raw is None:
        detail.excerpt_missing = f"trajectory {trajectory_id} is not in the run record (an imported patch?)"
        return detail
    try:
        detail.excerpt = trajectory_excerpt(
            load_trajectory(raw, where=f"trajectories/{trajectory_id}.json"), context_steps=context_steps
        )
    except Exception as err:  # a malformed or newer trajectory must not stop a review
        detail.excerpt_missing = f"trajectory {trajectory_id} could not be read: {getattr(err, 'message', err)}"
    return detail


def _clip(text: str, limit: int) -> str:
    text = text.rstrip()
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + f"\n... ({len(text) - limit} characters left out) ...\n" + text[-half:]


def _step_failed(step: Any) -> bool:
    return bool(step.error) or bool(step.timed_out) or (step.exit_code is not None and step.exit_code != 0)


def trajectory_excerpt(traj: Any, *, context_steps: int = 2, max_chars: int = 1200) -> Excerpt:
    """The steps around the first failing step (tool error, non-zero exit, timeout), or
    the last steps before the end when none failed; plus the checker's report."""
    steps = list(traj.steps)
    focus = next((i for i, s in enumerate(steps) if _step_failed(s)), None)
    if focus is not None:
        chosen = steps[max(0, focus - context_steps) : focus + 2]
        failed = steps[focus]
        how = failed.error or ("timed out" if failed.timed_out else f"exit code {failed.exit_code}")
        why = f"the first failing step ({failed.index}: {how}) with {context_steps} step(s) before it"
    else:
        chosen = steps[-(context_steps + 1) :]
        why = f"the last {len(chosen)} step(s) before the end" if chosen else "no steps (the agent took no action)"
    out_steps = []
    for step in chosen:
        if len(step.arguments) == 1:
            arguments = str(next(iter(step.arguments.values())))
        else:
            arguments = "\n".join(f"{k}: {v}" for k, v in step.arguments.items())
        out_steps.append(
            ExcerptStep(
                index=step.index,
                turn=step.turn,
                tool=step.tool,
                arguments=_clip(arguments, max_chars),
                observation=_clip(step.observation or "", max_chars),
                exit_code=step.exit_code,
                error=step.error,
                failed=_step_failed(step),
            )
        )
    check = ""
    if traj.check:
        check = _clip(readable_check(traj.check), max_chars * 2)
    return Excerpt(
        trajectory=traj.id,
        task=traj.task_id,
        verdict=traj.verdict,
        stop_reason=traj.stop_reason,
        error=traj.error,
        instruction=_clip(traj.instruction or "", 400),
        steps_total=len(steps),
        focus=steps[focus].index if focus is not None else None,
        why=why,
        steps=out_steps,
        check=check,
    )


#: A merge's name: ``L2-01`` (a level of the tree) or ``S003`` (a sequential step).
MERGE_NAME_RE = re.compile(r"L\d+-\d+|S\d+")


def merge_transcript(store: GitStore, name: str, run: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The merger's conversation for merge ``name`` of ``run`` (the request, each raw
    answer, each feedback), as ``(run, messages)``; ``run`` may be left out when one
    run has such a merge."""
    runs = [run] if run else [r for r in list_runs(store) if RunRecord(store, r).read(f"{MERGES_DIR}/{name}.json")]
    if not runs:
        raise UsageError(f"no run has a merge {name}", hint="list the merges with `t2s review --run RUN`")
    if len(runs) > 1:
        raise UsageError(f"merge {name} is ambiguous: runs {', '.join(runs)} all have one", hint="pass --run NAME")
    record = RunRecord(store, runs[0])
    raw = record.read(f"{MERGE_TRANSCRIPTS_DIR}/{name}.json")
    if raw is None:
        raise UsageError(
            f"run {runs[0]!r} keeps no merger transcript for {name}",
            hint="merges made before t2s kept transcripts have none; `t2s merge --rebuild` makes them again",
        )
    return runs[0], json.loads(raw)


def eval_trajectory_excerpt(store: GitStore, rev: str, task: str, *, context_steps: int = 2) -> Excerpt:
    """The trajectory of ``task`` (a task id or trajectory id) in the noted evaluation
    of ``rev``, as ``t2s show`` prints it: a held-out regression read, not only counted."""
    commit = store.resolve(rev)
    note = _eval_note(store, commit)
    kept = [r for r in (note.evals if note else []) if r.trajectories]
    if not kept:
        raise UsageError(
            f"the eval note on {rev} keeps no trajectories",
            hint=f"`t2s eval {rev} --no-cache` evaluates it again and keeps them",
        )
    files = store.read_files(kept[-1].trajectories or "", "trajectories")
    names = [task, *(name[: -len(".json")] for name in sorted(files) if name.startswith(f"{task}"))]
    raw = next((files[f"{name}.json"] for name in names if f"{name}.json" in files), None)
    if raw is None:
        have = ", ".join(sorted(name[: -len(".json")] for name in files))
        raise UsageError(f"no trajectory of {task!r} in the evaluation of {rev}", hint=f"it has: {have}")
    return trajectory_excerpt(load_trajectory(raw, where=f"{kept[-1].trajectories}"), context_steps=context_steps)


def readable_check(check: dict[str, Any]) -> str:
    """The checker's report as a person reads it (:meth:`t2s.tasks.base.CheckReport.render`);
    the raw JSON only when it is no report this t2s knows."""
    try:
        return CheckReport.model_validate(check).render()
    except ValidationError:
        return json.dumps(check, indent=1, default=str)


def _eval_note(store: GitStore, commit: str) -> EvalNote | None:
    text = store.read_note(EVAL_NOTES, commit)
    if not text:
        return None
    try:
        return EvalNote.model_validate_json(text)
    except ValidationError:
        return None


# ---------------------------------------------------------------------- verdicts
def record_verdict(
    store: GitStore,
    spec: str,
    verdict: Literal["approve", "reject"],
    comment: str = "",
    *,
    run: str | None = None,
    reviewer: str | None = None,
) -> tuple[PatchView, ReviewNote]:
    """Write a :class:`ReviewNote` on the patch's commit in ``refs/notes/t2s/review``
    (replacing an earlier verdict). ``t2s merge`` leaves rejected patches out."""
    comment = (comment or "").strip()
    if verdict == "reject" and not comment:
        raise UsageError("a rejection needs a reason", hint='t2s reject PATCH -m "why"')
    view = patch_view(store, spec, run)
    if not view.commit:
        raise UsageError(
            f"patch {view.patch} of run {view.run!r} has no branch to review ({view.status})",
            hint="only patches with a branch (t2s/RUN/patch/NNNN) get verdicts",
        )
    note = ReviewNote(verdict=verdict, comment=comment, reviewer=reviewer or store.identity())
    store.add_note(REVIEW_NOTES, view.commit, note.model_dump_json())
    view.verdict = note
    view.state, view.status = _status(view)
    return view, note


# ---------------------------------------------------------------------- candidate
def candidate_view(store: GitStore, run: str, data: RunData | None = None) -> CandidateView:
    data = data or load_run(store, run)
    if not data.candidate:
        raise UsageError(f"run {run!r} has no candidate yet", hint=f"run `t2s merge --run {run}` first")
    rows = review_rows(store, run, data)
    reports = data.tree_reports()
    root = next((r for r in reports if r.commit == data.candidate and r.status == "merged"), None)
    levels: dict[int, list[str]] = {}
    for report in reports:
        levels.setdefault(report.level, []).append(report.name)
    view = CandidateView(
        run=run,
        ref=data.candidate_ref or "",
        commit=data.candidate,
        s0=data.manifest.s0,
        skill_dir=data.manifest.skill_dir,
        strategy=data.strategy,
        root=root.name if root else "",
        lessons=list(root.lessons) if root else [lesson for r in rows if r.in_candidate for lesson in r.lessons],
        levels=[levels[k] for k in sorted(levels)],
        patches=[r for r in rows if r.in_candidate],
        left_out=[r for r in rows if not r.in_candidate],
        diff=store.diff(data.manifest.s0, data.candidate),
    )
    note = _eval_note(store, data.candidate)
    view.gate = note.gate if note else None
    return view


# ---------------------------------------------------------------------- Markdown
def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "-"


def _fence(text: str, lang: str = "diff") -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"{fence}{lang}\n{body}{fence}"


def _lesson_lines(lessons: list[Lesson]) -> list[str]:
    lines = []
    for lesson in lessons:
        where = ""
        if lesson.placement == "reference":
            where = f", in references/{lesson.topic}.md"
        elif lesson.placement == "skill":
            where = ", in SKILL.md"
        elif lesson.topic:
            where = f", topic `{lesson.topic}`"
        support = ", ".join(f"`{t}`" for t in lesson.support) or "none recorded"
        lines.append(
            f"- **{lesson.id}** (support {len(lesson.support)}: {support}{where}): {' '.join(lesson.text.split())}"
        )
    return lines or ["- (none recorded)"]


def _eval_markdown(gate: GateRecord | None) -> list[str]:
    if gate is None:
        return [f"Not evaluated yet (no gate in `{EVAL_NOTES}`; run `t2s gate`)."]

    verdict = "passed" if gate.passed else "failed"
    lines = [f"Gate **{verdict}** on suite `{gate.suite or '?'}` split `{gate.split}`.", "", eval_table_markdown(gate)]
    if gate.regressed:
        lines += ["", "Regressed: " + ", ".join(f"`{t}`" for t in gate.regressed)]
    if gate.improved:
        lines += ["", "Improved: " + ", ".join(f"`{t}`" for t in gate.improved)]
    return lines


def patch_markdown(detail: PatchDetail) -> str:
    """A pull-request description for one patch."""
    v = detail.view
    title = v.lessons[0].text if v.lessons else (detail.subject or f"patch {v.patch}")
    rows = [
        ("run", f"`{v.run}`"),
        ("patch", f"`{v.patch}`" + (f" on `{v.short_branch}` (`{v.commit[:12]}`)" if v.commit else " (no branch)")),
        ("base (S0)", f"`{detail.s0[:12]}`"),
        ("task", f"`{v.task}`" if v.task else "-"),
        ("trajectory", (f"`{v.trajectory}`" if v.trajectory else "-") + (f" ({v.outcome})" if v.outcome else "")),
        ("analyst", (v.analyst or "-") + (f" (model `{v.model}`)" if v.model else "")),
        ("validated", v.validated or "-"),
        ("status", v.status),
        ("review", v.verdict_text or "no verdict yet"),
        ("change", f"+{v.lines_added} -{v.lines_removed} lines"),
    ]
    lines = [f"## t2s patch {v.patch} (run {v.run}): {_cell(title)}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_cell(val)} |" for k, val in rows]
    lines += ["", "### Lessons", "", *_lesson_lines(v.lessons)]
    if v.failure_causes:
        lines += ["", "### Failure causes", ""] + [f"- {' '.join(c.split())}" for c in v.failure_causes]
    lines += ["", "### Diff", "", _fence(detail.diff) if detail.diff else "(no diff recorded)"]
    lines += ["", "### Evaluation", "", *_eval_markdown(detail.gate)]
    lines += ["", f"<sub>Generated by `t2s pr-body {refs.short(refs.patch_branch(v.run, v.patch))}`.</sub>"]
    return "\n".join(lines) + "\n"


def candidate_markdown(view: CandidateView) -> str:
    """A pull-request description for a run's candidate."""
    shape = " -> ".join(f"{len(names)} at L{i}" for i, names in enumerate(view.levels, start=1)) or "no merges"
    rows = [
        ("run", f"`{view.run}`"),
        ("candidate", f"`{refs.short(view.ref)}` (`{view.commit[:12]}`)"),
        ("base (S0)", f"`{view.s0[:12]}`"),
        ("skill", f"`{view.skill_dir}`"),
        ("merge tree", f"{len(view.patches)} patches -> {shape} ({view.strategy})"),
        ("support", f"{view.support} distinct trajectories"),
    ]
    lines = [
        f"## t2s candidate for run {view.run}: {len(view.lessons)} lessons from {len(view.patches)} patches",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {_cell(val)} |" for k, val in rows]
    lines += ["", "### Lessons (support = distinct trajectories behind a lesson)", "", *_lesson_lines(view.lessons)]
    lines += ["", "### Patches", ""]
    for p in view.patches:
        lines.append(
            f"- `{p.patch}` task `{p.task or '-'}`, trajectory `{p.trajectory or '-'}` ({p.outcome or '?'}), "
            f"{p.analyst or '?'} analyst, validated {p.validated or '-'}: {p.status}"
        )
    if not view.patches:
        lines.append("- (none)")
    if view.left_out:
        lines += ["", "### Left out", ""]
        lines += [f"- `{p.patch}` ({p.task or '-'}): {p.status}" for p in view.left_out]
    lines += ["", "### Evaluation against the baseline", "", *_eval_markdown(view.gate)]
    lines += ["", "### Diff", "", _fence(view.diff) if view.diff else "(the candidate equals S0)"]
    lines += ["", f"<sub>Generated by `t2s pr-body candidate --run {view.run}`.</sub>"]
    return "\n".join(lines) + "\n"


def pr_body(store: GitStore, spec: str, run: str | None = None) -> str:
    """Markdown for ``t2s pr-body PATCH|candidate``."""
    if spec == "candidate" or refs.parse_candidate_branch(spec):
        name = resolve_candidate(store, spec, run)
        return candidate_markdown(candidate_view(store, name))
    return patch_markdown(patch_detail(store, spec, run))


__all__ = [
    "CandidateView",
    "Excerpt",
    "PatchDetail",
    "PatchView",
    "RunData",
    "candidate_markdown",
    "candidate_view",
    "count_lines",
    "load_run",
    "patch_detail",
    "patch_markdown",
    "patch_view",
    "pr_body",
    "record_verdict",
    "resolve_candidate",
    "resolve_patch",
    "review_rows",
    "trajectory_excerpt",
]
