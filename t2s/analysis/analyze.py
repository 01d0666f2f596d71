"""``t2s analyze``: every trajectory of a run becomes a validated patch on its own branch.

For each trajectory of run ``<run>`` not analyzed yet (in sorted id order) a patch
number ``nnnn`` is assigned *before* the parallel work starts (max existing + 1, ...),
so numbering is deterministic and a resumed run continues where it stopped. Then, with
at most ``concurrency`` analyses in flight:

1. the analyst is chosen: passed -> :class:`~t2s.analysis.analysts.SuccessAnalyst`; failed ->
   the agentic error analyst (or the single-call one with ``--analyst single-call``, or
   when the trajectory's task is not in the suite, e.g. an import without a task, or the
   suite can lay out no analyst workspace for it: ``Suite.has_analyst_workspace``);
2. the leak guard gets the task's distinctive gold values (the answer cells of the gold
   workbook minus values visible in the instruction and input) and the held-out
   split's task ids;
3. the analyst's edits are rendered against S0 with retries (:mod:`t2s.patches`);
4. the outcome is recorded in the run record as ``patches/<nnnn>.json`` (a
   :class:`~t2s.record.lessons.PatchRecord`) and ``analyses/<trajectory>.json`` (transcript and
   report) in one commit, and an accepted patch becomes branch
   ``refs/heads/t2s/<run>/patch/<nnnn>``: one commit on S0 with provenance trailers.

Statuses: ``accepted`` (a branch), ``unvalidated`` (an agentic report whose fix never
passed: no branch unless ``include_unvalidated``, then one with ``T2S-Validated: no``),
``rejected`` (no branch; the reason is recorded). A budget cap stops new work cleanly:
finished analyses stay recorded and running the command again continues.

An analysis that *errored* (the analyst's endpoint failed or t2s could not run it, see
:mod:`t2s.faults`) is no verdict: it gets no patch record, only
``analyses/<trajectory>.json`` with status ``errored`` and the cause, and the next run
analyses the trajectory again (unless ``retry_errored=False``). A patch record that an
older t2s wrote as ``rejected`` because the analyst call failed counts as errored too.
After ``max(3, concurrency)`` analyses in a row errored because the endpoint failed, no
new analysis starts (the rest stay for the next run, as after a budget stop).
"""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel

from t2s.agent.trajectory import Trajectory, artifacts_prefix, load_trajectory
from t2s.analysis.analysts import (
    AnalysisInput,
    AnalystOutcome,
    lesson_leaks,
    lesson_topic,
)
from t2s.analysis.executors import AnalysisExecutor, LocalAnalyses
from t2s.errors import T2SError, UsageError
from t2s.faults import (
    Breaker,
    CauseCount,
    ErrorCause,
    WorkErrored,
    describe,
    tally,
)
from t2s.llm.client import LLM, default_cache_path
from t2s.llm.errors import BudgetExceeded, CacheMiss
from t2s.patches.context import PatchContext, commit_patch
from t2s.patches.leaks import distinctive_values
from t2s.patches.results import Patch, Rejected
from t2s.record.lessons import PATCHES_DIR, Lesson, PatchRecord
from t2s.record.provenance import Provenance
from t2s.record.refs import patch_branch
from t2s.record.runs import RunRecord, SpendWriter, StageProgress
from t2s.record.shards import Shard, collect_run
from t2s.rollouts.rollout import load_rollout_suite
from t2s.skill.repo import limits_of, require_clean_skill

STAGE = "analyze"
LEDGER_PATH = "ledger/analyze.json"
ANALYSES_DIR = "analyses"
MODES = ("error", "success", "combined")

#: Trajectory verdicts each mode analyses.
MODE_VERDICTS = {"error": ("failed",), "success": ("passed",), "combined": ("failed", "passed")}


@dataclass
class AnalyzeSettings:
    mode: str = "combined"
    analyst: str = "agentic"
    max_turns: int = 12
    edit_retries: int = 2
    include_unvalidated: bool = False
    concurrency: int = 4
    exec_timeout: float = 60.0
    protocol: str | None = None
    #: Run the analysts' code without the sandbox where none can be had
    #: (``--unsafe-no-sandbox``; None: ``$T2S_UNSAFE_NO_SANDBOX``).
    unsafe_no_sandbox: bool | None = None

    @classmethod
    def from_config(cls, config, **overrides: Any) -> AnalyzeSettings:
        section = config.analyze
        values = dict(
            mode=section.mode,
            analyst=section.analyst,
            max_turns=section.max_turns,
            edit_retries=section.edit_retries,
            include_unvalidated=section.include_unvalidated,
            concurrency=section.concurrency,
            exec_timeout=config.rollout.exec_timeout,
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        if settings.mode not in MODES:
            raise UsageError(f"--mode {settings.mode!r} (modes: {', '.join(MODES)})")
        if settings.analyst not in ("agentic", "single-call"):
            raise UsageError(f"--analyst {settings.analyst!r} (analysts: agentic, single-call)")
        for name in ("concurrency", "max_turns"):
            if getattr(settings, name) < 1:
                raise UsageError(f"{name} must be at least 1 (got {getattr(settings, name)})")
        if settings.edit_retries < 0:
            raise UsageError(f"edit_retries must be at least 0 (got {settings.edit_retries})")
        return settings


@dataclass
class AnalyzeSummary:
    """What an analyze stage did: the mode and analyst, how many trajectories were
    selected, analyzed (now or before), accepted, unvalidated, rejected (by reason) or
    errored, the branches made, tokens, wall time, notes, and one row per patch."""

    run: str
    mode: str
    analyst: str
    s0: str = ""
    #: Trajectories this mode selects.
    selected: int = 0
    #: Selected trajectories with a record (from any invocation).
    analyzed: int = 0
    #: Analyzed by this invocation.
    new: int = 0
    #: Already recorded before this invocation (not analyzed again).
    skipped: int = 0
    validated: int = 0
    accepted: int = 0
    unvalidated: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    #: Branches created (accepted patches, plus unvalidated ones when included).
    branches: int = 0
    #: Trajectories the mode leaves out, by verdict (errored, unlabelled, ...).
    not_selected: dict[str, int] = field(default_factory=dict)
    #: Selected trajectories whose analysis errored (no verdict; retried on the next run).
    errored: int = 0
    #: Their causes, one row per cause (:class:`t2s.faults.CauseCount` as a dict).
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: Selected but not analyzed because the budget stopped new work.
    remaining: int = 0
    stopped: str | None = None
    tokens: int = 0
    new_tokens: int = 0
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    patches: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (what ``t2s analyze --json`` prints)."""
        return asdict(self)

    def errored_work(self) -> WorkErrored | None:
        """The error to end the command with when analyses errored, else None."""
        if not self.errored:
            return None

        causes = [CauseCount.model_validate(row) for row in self.errors]
        return WorkErrored(
            describe(causes, self.errored, self.selected, "analyses"),
            causes=causes,
            hint="fix the cause and run the same command again: errored analyses are run again",
        )


# ---------------------------------------------------------------------- leak guard inputs
def forbidden_values_for(traj: Trajectory, task, suite) -> list[str]:
    """Distinctive gold values of the trajectory's task that its instruction and input do not show."""
    if task is None or suite is None:
        return []
    try:
        case = task.case(traj.case or 1)
    except T2SError:
        case = task.cases[0] if task.cases else None
    if case is None:
        return []
    try:  # the suite knows its gold values and what the agent sees (t2s.tasks.Suite)
        gold = suite.gold_values(task, case.index)
        visible = [task.instruction, traj.instruction, *suite.visible_texts(task, case.index)]
    except T2SError:
        return []
    return distinctive_values(gold, visible=[v for v in visible if v])


# ---------------------------------------------------------------------- records
def _reject_kind(reason: str, result: Any) -> str:
    """A short category for the summary table."""
    texts = [reason] + ([f.reason for f in result.failures] if isinstance(result, Rejected) else [])
    joined = "\n".join(texts)
    if "held-out task id" in joined or "task-specific value" in joined:
        return "leak"
    if "refusing path" in joined:
        return "unsafe path"
    if reason.startswith("analyst answer unusable"):
        return "unusable answer"
    if reason.startswith(("analyst call failed", "analysis failed")):
        return "analyst error"
    if reason.startswith("branch"):
        return "branch conflict"
    return "edits never applied"


def _commit_text(record: PatchRecord, traj: Trajectory) -> tuple[str, str]:
    subject = " ".join(record.lessons[0].text.split()) if record.lessons else f"t2s patch {record.patch}"
    if len(subject) > 200:
        subject = subject[:197].rstrip() + "..."
    lines = ["Lessons:"]
    lines += [f"- {lesson.id} [{lesson.topic}] {' '.join(lesson.text.split())}" for lesson in record.lessons]
    if record.failure_causes:
        lines += ["", "Failure causes:"]
        lines += [f"- {' '.join(c.split())}" for c in record.failure_causes]
    validated = {True: "yes, a fixed output passed the checker", False: "no"}[record.validated]
    lines += [
        "",
        f"Analyzed trajectory {traj.id} of task {traj.task_id or '?'} ({traj.verdict}) "
        f"with the {record.analyst} analyst; validated: "
        f"{validated if record.analyst == 'agentic' else 'n/a'}.",
    ]
    return subject, "\n".join(lines)


def _trailers(record: PatchRecord, run: str) -> list[tuple[str, str]]:
    validated = ("yes" if record.validated else "no") if record.analyst == "agentic" else "n/a"
    return Provenance.for_patch(
        run=run,
        patch=record.patch,
        task=record.task,
        trajectory=record.trajectory,
        outcome=record.outcome,
        analyst=record.analyst,
        validated=validated,
        model=record.model,
    ).trailers()


def build_record(
    number: str, traj: Trajectory, outcome: AnalystOutcome, context: PatchContext, model: str
) -> PatchRecord:
    """The PatchRecord of one finished analysis (before any branch is made)."""
    report = outcome.report
    lessons: list[Lesson] = []
    causes: list[str] = []
    if report is not None:
        causes = list(report.failure_causes)
        for k, lesson in enumerate(report.lessons, start=1):
            lessons.append(
                Lesson(id=f"p{number}.{k}", text=lesson.text.strip(), support=[traj.id], topic=lesson_topic(lesson))
            )
    record = PatchRecord(
        patch=number,
        trajectory=traj.id,
        task=traj.task_id,
        outcome=traj.verdict,
        analyst=outcome.analyst,
        model=outcome.model or model,
        validated=outcome.validated,
        status="rejected",
        failure_causes=causes,
        lessons=lessons,
    )
    result = outcome.result
    if outcome.error or report is None:
        record.reason = outcome.error or "the analyst gave no report"
        return record
    if result is not None:
        record.attempts = result.attempts
        record.edits = [e.model_dump(mode="json") if isinstance(e, BaseModel) else e for e in result.edits]
    if isinstance(result, Rejected) or result is None:
        record.reason = result.reason if result is not None else "no edits"
        return record
    record.diff = result.diff
    record.lines_added, record.lines_removed = result.added, result.removed
    record.anchors_resolved = list(result.resolutions)
    leaks = lesson_leaks(report, context)
    if leaks:
        record.reason = "a lesson leaks: " + "; ".join(leaks)
        return record
    if outcome.analyst == "agentic" and not outcome.validated:
        record.status = "unvalidated"
        record.reason = "no fixed output passed the checker before the report was submitted"
    else:
        record.status = "accepted"
    return record


def analysis_json(
    record: PatchRecord, traj: Trajectory, outcome: AnalystOutcome, *, kind: str = "", notes: list[str] | None = None
) -> dict[str, Any]:
    result = outcome.result
    return {
        "schema_version": 1,
        "trajectory": traj.id,
        "task": traj.task_id,
        "outcome": traj.verdict,
        "patch": record.patch,
        "analyst": outcome.analyst,
        "model": record.model,
        "protocol": outcome.protocol,
        "status": record.status,
        "validated": outcome.validated,
        "reason": record.reason,
        "reject_kind": kind,
        "report": outcome.report.model_dump(mode="json") if outcome.report is not None else None,
        "edit_failures": [f.model_dump(mode="json") for f in result.failures] if isinstance(result, Rejected) else [],
        "evaluations": outcome.evaluations,
        "turns": outcome.turns,
        "calls": outcome.calls,
        "tokens": {"prompt": outcome.prompt_tokens, "completion": outcome.completion_tokens, "total": outcome.tokens},
        "wall_s": outcome.wall_s,
        "notes": list(outcome.notes) + list(notes or []),
        "transcript": outcome.transcript,
    }


def errored_analysis_json(
    traj: Trajectory, outcome: AnalystOutcome, *, notes: list[str] | None = None
) -> dict[str, Any]:
    """``analyses/<id>.json`` of an analysis that errored: why, and what it cost."""
    return {
        "schema_version": 1,
        "trajectory": traj.id,
        "task": traj.task_id,
        "outcome": traj.verdict,
        "patch": None,
        "analyst": outcome.analyst,
        "model": outcome.model,
        "protocol": outcome.protocol,
        "status": "errored",
        "reason": outcome.error,
        "error_cause": outcome.error_cause.model_dump() if outcome.error_cause else None,
        "turns": outcome.turns,
        "calls": outcome.calls,
        "tokens": {"prompt": outcome.prompt_tokens, "completion": outcome.completion_tokens, "total": outcome.tokens},
        "wall_s": outcome.wall_s,
        "notes": list(outcome.notes) + list(notes or []),
        "transcript": outcome.transcript,
    }


def legacy_errored(patch: PatchRecord) -> bool:
    """A record an older t2s wrote as ``rejected`` although the analyst call failed (an
    error, not a verdict). A model whose answer never validated stays rejected."""
    reason = patch.reason
    return patch.status == "rejected" and (
        (reason.startswith("analyst call failed:") and "never matched" not in reason)
        or reason.startswith("analysis failed:")
    )


# ---------------------------------------------------------------------- the run
def _existing_records(record: RunRecord) -> dict[str, PatchRecord]:
    """trajectory id -> its patch record."""
    out: dict[str, PatchRecord] = {}
    for path in record.list(PATCHES_DIR):
        if path.endswith(".json"):
            data = record.read_model(path, PatchRecord)
            if data is not None:  # listed at the record's head: always there
                out[data.trajectory] = data
    return out


def _load_suite(store, config, manifest, suite) -> tuple[Any, str | None]:
    if suite is not None:
        return suite, None

    ref = manifest.suite or config.rollout.suite or None
    if not ref and len(config.suites) != 1:
        return (
            None,
            "no suite configured: gold values are not policed and failed trajectories get the single-call analyst",
        )
    try:
        return load_rollout_suite(config, store, ref), None
    except T2SError as err:
        return (
            None,
            f"suite unavailable ({err.message}): gold values are not policed and failed trajectories get the single-call analyst",
        )


def _task_of(suite, traj: Trajectory):
    if suite is None or not traj.task_id:
        return None
    try:
        return suite.task(traj.task_id)
    except T2SError:
        return None


def _heldout_ids(suite, config) -> list[str]:
    if suite is None:
        return []
    try:
        splits = suite.splits()
    except T2SError:
        return []
    return list(splits.get(config.rollout.heldout_split, []))


async def analyze_run_async(
    store,
    config,
    llm,
    *,
    run: str,
    settings: AnalyzeSettings | None = None,
    suite: Any = None,
    progress: StageProgress | None = None,
    retry_errored: bool = True,
    shard: Shard | None = None,
    executor: AnalysisExecutor | None = None,
) -> AnalyzeSummary:
    """Analyze every selected, not yet analyzed trajectory of run ``run`` (see the module
    doc); ``retry_errored=False`` leaves trajectories whose analysis errored alone.
    ``shard`` analyzes only its trajectories, into its own part of the record
    (:mod:`t2s.record.shards`); a sharded rollout of the run is collected first.
    ``executor`` runs each analysis (:mod:`t2s.analysis.executors`; default: here)."""
    collect_run(store, run, "rollout")  # a sharded rollout is joined first (a no-op when it was)
    record = RunRecord(store, run)
    if shard is not None:
        record = record.shard_part(STAGE, shard.label)
    with record.stage_lock(STAGE):
        return await _analyze_run(
            store,
            config,
            llm,
            run=run,
            settings=settings,
            suite=suite,
            progress=progress,
            retry_errored=retry_errored,
            record=record,
            shard=shard,
            analyses=executor or LocalAnalyses(),
        )


async def _analyze_run(
    store,
    config,
    llm,
    *,
    run: str,
    settings: AnalyzeSettings | None,
    suite: Any,
    progress: StageProgress | None,
    retry_errored: bool = True,
    record: RunRecord,
    shard: Shard | None = None,
    analyses: AnalysisExecutor,
) -> AnalyzeSummary:

    started = time.perf_counter()
    settings = settings or AnalyzeSettings.from_config(config)
    manifest = record.manifest()
    require_clean_skill(store, config, manifest.s0, manifest.skill_dir)  # what the analysts would edit
    summary = AnalyzeSummary(run=run, mode=settings.mode, analyst=settings.analyst, s0=manifest.s0)
    trajectories = [
        load_trajectory(record.read(p), where=f"{record.ref}:{p}")
        for p in record.list("trajectories")
        if p.endswith(".json")
    ]
    trajectories.sort(key=lambda t: t.id)
    wanted = MODE_VERDICTS[settings.mode]
    selected = [t for t in trajectories if t.verdict in wanted]
    for traj in trajectories if shard is None else shard.select(trajectories, key=lambda t: t.id):
        if traj.verdict not in wanted:
            summary.not_selected[traj.verdict] = summary.not_selected.get(traj.verdict, 0) + 1
    if not trajectories:
        raise UsageError(f"run {run!r} has no trajectories", hint="run `t2s rollout` or `t2s import` first")
    existing = _existing_records(record)
    if shard is not None:
        pending = _shard_pending(
            existing, _existing_records(RunRecord(store, run)), selected, shard, retry_errored, record
        )
        selected = shard.select(selected, key=lambda t: t.id)
    else:
        pending = _pending(existing, selected, retry_errored, record)
    summary.selected = len(selected)
    summary.skipped = len(selected) - len(pending)

    suite, note = _load_suite(store, config, manifest, suite)
    if note and any(t.verdict == "failed" for _, t in pending) and settings.analyst == "agentic":
        summary.notes.append(note)
    heldout = _heldout_ids(suite, config)
    base_context = PatchContext(
        store,
        manifest.s0,
        manifest.skill_dir,
        strict=config.lint.strict,
        limits=limits_of(config),
        forbidden_ids=heldout,
        anchor_similarity=config.patches.anchor_similarity,
    )
    role_model = llm.role("analyst").model

    record.set_stage(STAGE, "running")
    if progress:
        progress.start(len(selected), summary.skipped)
    semaphore = asyncio.Semaphore(settings.concurrency)
    stop: dict[str, str] = {}
    finished: dict[str, PatchRecord] = {}
    errored: dict[str, AnalystOutcome] = {}
    breaker = Breaker(max(3, settings.concurrency), "analyses")  # the endpoint is down: stop starting
    spend = SpendWriter(record, llm.ledger, LEDGER_PATH)  # the ledger lands with each result (kill -9 safe)
    tokens_before = llm.ledger.totals.total_tokens

    async def one(number: str, traj: Trajectory) -> None:
        async with semaphore:
            if stop:
                return
            task = _task_of(suite, traj)
            if progress:
                progress.begin(traj.id)
            notes: list[str] = []
            kind = "success" if traj.verdict == "passed" else settings.analyst
            if kind == "agentic" and (task is None or not suite.has_analyst_workspace(task)):
                kind = "single-call"
                notes.append(
                    "the suite has no analyst workspace (inputs and a gold to check a fix against) "
                    "for this trajectory's task: single-call analyst used"
                )
            context = copy.copy(base_context)
            context.forbidden_values = await asyncio.to_thread(forbidden_values_for, traj, task, suite)
            artifacts: dict[str, bytes] = {}
            if kind == "agentic":
                prefix = artifacts_prefix(traj.id)
                for path in record.list(prefix.rstrip("/")):
                    data = record.read(path)
                    if data is not None:  # listed at the record's head: always there
                        artifacts[path[len(prefix) :]] = data
            inp = AnalysisInput(
                trajectory=traj,
                context=context,
                task=task,
                suite=suite,
                artifacts=artifacts,
                max_turns=settings.max_turns,
                edit_retries=settings.edit_retries,
                exec_timeout=settings.exec_timeout,
                retry_unvalidated=settings.include_unvalidated,
                protocol=settings.protocol,
                unsafe_no_sandbox=settings.unsafe_no_sandbox,
            )
            # An analysis that errored before is asked anew (the next sample), not replayed.
            earlier = await asyncio.to_thread(record.read_json, f"{ANALYSES_DIR}/{traj.id}.json") or {}
            sample = int(earlier.get("sample", 1)) + 1 if earlier.get("status") == "errored" else 1
            try:  # a T2SError (e.g. the task's files vanished) is an errored outcome: go on with the rest
                outcome = await analyses.analyze(llm, kind, inp, sample)
            except (BudgetExceeded, CacheMiss) as err:
                stop.setdefault("reason", err.message)
                return
            if outcome.error_cause is not None:  # no verdict: no patch record, retried next time
                files: dict[str, Any] = {
                    f"{ANALYSES_DIR}/{traj.id}.json": {
                        **errored_analysis_json(traj, outcome, notes=notes),
                        "sample": sample,
                    }
                }
                if traj.id in existing:
                    files[existing[traj.id].path] = None  # an older t2s's "rejected" was an error too
                await asyncio.to_thread(spend.write, files, f"t2s run {run}: analyze {traj.id} errored", outcome.error)
                errored[traj.id] = outcome
                if progress:
                    progress.done(outcome, traj.id)
                if tripped := breaker.record(outcome.error_cause):
                    stop.setdefault("reason", tripped)
                return
            patch = build_record(number, traj, outcome, context, role_model)
            if patch.status == "accepted" or (patch.status == "unvalidated" and settings.include_unvalidated):
                await asyncio.to_thread(_make_branch, store, run, manifest.s0, patch, traj, outcome)
            reject = _reject_kind(patch.reason, outcome.result) if patch.status == "rejected" else ""
            files = {
                patch.path: patch,
                f"{ANALYSES_DIR}/{traj.id}.json": analysis_json(patch, traj, outcome, kind=reject, notes=notes),
            }
            await asyncio.to_thread(
                spend.write, files, f"t2s run {run}: analyze {traj.id} -> patch {number} {patch.status}", patch.reason
            )
            finished[traj.id] = patch
            if progress:
                progress.done(patch, traj.id)
            breaker.record(None)

    status = "failed"
    try:
        try:
            async with asyncio.TaskGroup() as group:
                for number, traj in pending:
                    group.create_task(one(number, traj))
        except* T2SError as errors:
            raise errors.exceptions[0] from None
        status = "failed" if stop else "done"
    except BaseException:
        stop.setdefault("reason", "interrupted")
        raise
    finally:
        summary.stopped = stop.get("reason")
        summary.new_tokens = llm.ledger.totals.total_tokens - tokens_before
        _tally(record, summary, selected, finished, len(errored))
        if status == "done" and summary.errored:
            status = "errored"  # finished, but not every trajectory has a verdict
        summary.wall_s = round(time.perf_counter() - started, 3)
        stage = {k: v for k, v in summary.to_dict().items() if k not in ("patches", "notes")}
        try:
            spend.write({}, f"t2s run {run}: analyze ledger")  # what no recorded analysis took
            record.set_stage(STAGE, status, stage)
        except Exception:  # pragma: no cover - never hide the original error
            if status in ("done", "errored"):
                raise
    return summary


def _pending(
    existing: dict[str, PatchRecord], selected: list[Trajectory], retry_errored: bool, record: RunRecord
) -> list[tuple[str, Trajectory]]:
    """(patch number, trajectory) to analyze now: numbers continue after the record's."""
    numbers = [int(r.patch) for r in existing.values() if r.patch.isdigit()]
    next_number = max(numbers, default=0) + 1
    pending: list[tuple[str, Trajectory]] = []
    for traj in selected:
        patch = existing.get(traj.id)
        if patch is not None and not legacy_errored(patch):
            continue  # a verdict: final
        if not retry_errored and (patch is not None or _analysis_status(record, traj.id) == "errored"):
            continue
        if patch is not None:  # an error recorded by an older t2s: analyzed again under its number
            pending.append((patch.patch, traj))
            continue
        pending.append((f"{next_number:04d}", traj))
        next_number += 1
    return pending


def _shard_pending(
    existing: dict[str, PatchRecord],
    base: dict[str, PatchRecord],
    selected: list[Trajectory],
    shard: Shard,
    retry_errored: bool,
    record: RunRecord,
) -> list[tuple[str, Trajectory]]:
    """A shard's (patch number, trajectory) to analyze now. Numbers are counted over
    every selected trajectory the run record (``base``, which all shards fork from)
    has no patch for, as one unsharded analysis counts them: each shard takes its own,
    so no two shards pick one number, and a resumed shard keeps its numbers."""
    numbers = [int(r.patch) for r in base.values() if r.patch.isdigit()]
    next_number = max(numbers, default=0) + 1
    pending: list[tuple[str, Trajectory]] = []
    for traj in selected:
        number = base[traj.id].patch if traj.id in base else f"{next_number:04d}"
        if traj.id not in base:
            next_number += 1
        if not shard.owns(traj.id):
            continue
        patch = existing.get(traj.id)
        if patch is not None and not legacy_errored(patch):
            continue  # a verdict: final
        if not retry_errored and (patch is not None or _analysis_status(record, traj.id) == "errored"):
            continue
        pending.append((patch.patch if patch is not None else number, traj))
    return pending


def _make_branch(store, run: str, s0: str, patch: PatchRecord, traj: Trajectory, outcome: AnalystOutcome) -> None:
    ref = patch_branch(run, patch.patch)
    result = outcome.result
    # build_record accepts a patch only when its edits rendered to a tree
    assert isinstance(result, Patch) and result.tree is not None, "only a rendered patch gets a branch"
    tree = result.tree
    subject, body = _commit_text(patch, traj)
    existing = store.rev_parse(ref)
    if existing is not None:
        # A crash between the branch and its record: the same analysis made it, reuse it.
        if Provenance.of(store.commit_message(existing)).trajectory == traj.id and store.tree_of(existing) == tree:
            patch.branch, patch.commit = ref, existing
            return
        patch.status = "rejected"
        patch.reason = f"branch {ref} already exists and holds another patch"
        return
    commit = commit_patch(store, s0=s0, tree=tree, ref=ref, subject=subject, body=body, trailers=_trailers(patch, run))
    patch.branch, patch.commit = ref, commit


def _analysis_status(record: RunRecord, traj_id: str) -> str | None:
    return (record.read_json(f"{ANALYSES_DIR}/{traj_id}.json") or {}).get("status")


def _tally(
    record: RunRecord,
    summary: AnalyzeSummary,
    selected: list[Trajectory],
    finished: dict[str, PatchRecord],
    errored_now: int,
) -> None:
    current = _existing_records(record)
    current.update(finished)
    summary.new = len(finished) + errored_now
    causes: list[ErrorCause] = []
    for traj in selected:
        patch = current.get(traj.id)
        data = record.read_json(f"{ANALYSES_DIR}/{traj.id}.json") or {}
        if patch is None or legacy_errored(patch):
            if patch is not None or data.get("status") == "errored":
                summary.errored += 1
                summary.tokens += int((data.get("tokens") or {}).get("total", 0))
                cause = data.get("error_cause") if patch is None else None
                causes.append(
                    ErrorCause.model_validate(cause)
                    if cause
                    else ErrorCause(kind="error", message=patch.reason if patch is not None else data.get("reason", ""))
                )
            else:
                summary.remaining += 1
            continue
        summary.analyzed += 1
        summary.validated += int(patch.validated)
        if patch.status == "accepted":
            summary.accepted += 1
        elif patch.status == "unvalidated":
            summary.unvalidated += 1
        else:
            summary.rejected += 1
            kind = data.get("reject_kind") or _reject_kind(patch.reason, None)
            summary.rejected_by_reason[kind] = summary.rejected_by_reason.get(kind, 0) + 1
        summary.branches += int(patch.branch is not None)
        summary.tokens += int((data.get("tokens") or {}).get("total", 0))
        summary.patches.append(
            {
                "patch": patch.patch,
                "trajectory": patch.trajectory,
                "status": patch.status,
                "analyst": patch.analyst,
                "branch": patch.branch,
                "reason": patch.reason,
            }
        )
    summary.errors = [row.model_dump() for row in tally(causes)]


def analyze_run(
    store,
    config,
    *,
    run: str,
    settings: AnalyzeSettings | None = None,
    llm=None,
    suite: Any = None,
    progress: StageProgress | None = None,
    cache: bool = True,
    retry_errored: bool = True,
    shard: Shard | None = None,
    executor: AnalysisExecutor | None = None,
) -> AnalyzeSummary:
    """Synchronous :func:`analyze_run_async`; builds the model client from ``config`` unless given."""

    own_llm = llm is None
    if own_llm:
        llm = LLM(config, cache_path=default_cache_path(store.common_dir, config) if cache else None, phase=STAGE)

    try:  # LLM.run closes the HTTP clients with the event loop
        return llm.run(
            analyze_run_async(
                store,
                config,
                llm,
                run=run,
                settings=settings,
                suite=suite,
                progress=progress,
                retry_errored=retry_errored,
                shard=shard,
                executor=executor,
            )
        )
    finally:
        if own_llm:
            llm.close()


def summary_rows(summary: AnalyzeSummary) -> list[tuple[str, str]]:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.rejected_by_reason.items()))
    errored = [("errored", str(summary.errored))] if summary.errored else []  # a column only when it matters
    return [
        ("analyzed", f"{summary.analyzed}/{summary.selected}"),
        ("validated", str(summary.validated)),
        ("accepted", str(summary.accepted)),
        ("unvalidated", str(summary.unvalidated)),
        ("rejected", str(summary.rejected) + (f" ({reasons})" if reasons else "")),
        *errored,
        ("tokens", f"{summary.tokens:,}" + (f" ({summary.new_tokens:,} new)" if summary.skipped else "")),
        ("time", f"{summary.wall_s:.1f} s"),
    ]
