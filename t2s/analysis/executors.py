"""Where analyses run: in this process (the default) or each as a Ray task.

The local executor calls the analyst on this event loop, as t2s always did. The Ray
executor (``t2s analyze --executor ray [--ray-address ADDR]``) sends one analysis to a
worker, which has no access to the user's repository: it gets S0's skill folder as
bytes (:class:`SkillSnapshot`) with the rest of the :class:`AnalysisInput`, builds a
throwaway git repository of its own holding that folder, and runs the analyst against a
:class:`PatchContext` on it (edits are rendered and checked with git there). It returns
the outcome and its ledger rows. The driver alone writes git: it adds the rows to its
ledger and, before the outcome is recorded, renders the returned edits against the real
S0 again (cheap and deterministic), so a worker can never bring a patch the local path
would refuse; the branch gets the tree made here.

As for episodes (:mod:`t2s.agent.executor`): one task per analysis with its resources
(``num_cpus``), a worker lost mid-analysis is retried by Ray (``max_retries``) and the
analysis recorded once, the budget caps are checked before each task is submitted, and a
task lost beyond its retries (or one that raised) is an *errored* analysis: no verdict,
analyzed again on the next run.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from t2s.agent.executor import RAY_MAX_RETRIES, RayTasks, WorkerModels, ledger_rows
from t2s.analysis.analysts import AnalysisInput, AnalystOutcome, make_analyst
from t2s.errors import T2SError, UsageError
from t2s.faults import ErrorCause, cause_of
from t2s.gitstore.store import GitStore
from t2s.llm.client import LLM, sampling
from t2s.llm.errors import BudgetExceeded, CacheMiss
from t2s.patches.context import PatchContext
from t2s.patches.results import EditFailure, Patch, Rejected
from t2s.skill.format import Limits

#: AnalysisInput fields that cannot travel as they are (rebuilt on the worker).
_REBUILT = ("context", "task", "suite")


async def run_analysis(llm: LLM, kind: str, inp: AnalysisInput, sample: int) -> AnalystOutcome:
    """One analysis with analyst ``kind``, its model calls as sample ``sample``. An
    analysis t2s could not run (e.g. the task's files vanished) is an errored outcome;
    a budget stop or a cache miss is raised (the stage stops)."""
    try:
        with sampling(sample):
            return await make_analyst(kind, llm).analyze(inp)
    except (BudgetExceeded, CacheMiss):
        raise
    except T2SError as err:
        return errored_outcome(kind, cause_of(err))


def errored_outcome(kind: str, cause: ErrorCause) -> AnalystOutcome:
    """An analysis that errored: no verdict, analyzed again on the next run."""
    return AnalystOutcome(analyst=kind, error=f"analysis failed: {cause.message}", error_cause=cause)


class AnalysisExecutor(Protocol):
    """Runs one analysis; see the module doc."""

    name: str

    async def analyze(self, llm: LLM, kind: str, inp: AnalysisInput, sample: int) -> AnalystOutcome: ...


class LocalAnalyses:
    """Analyses in this process, on this event loop."""

    name = "local"

    async def analyze(self, llm: LLM, kind: str, inp: AnalysisInput, sample: int) -> AnalystOutcome:
        return await run_analysis(llm, kind, inp, sample)


# ---------------------------------------------------------------------- on a Ray worker
@dataclass
class SkillSnapshot:
    """S0's skill folder as bytes, with the settings of its :class:`PatchContext`."""

    skill_dir: str
    #: (repo-relative path, git mode, content) of every file of the folder.
    entries: list[tuple[str, str, bytes]]
    strict: bool
    limits: Limits
    forbidden_values: list[Any]
    forbidden_ids: list[str]
    anchor_similarity: float

    @classmethod
    def of(cls, context: PatchContext) -> SkillSnapshot:
        store = context.store
        blobs = [e for e in store.list_tree(context.s0, context.skill_dir) if e.type == "blob"]
        contents = store.read_blobs([e.sha for e in blobs])
        return cls(
            skill_dir=context.skill_dir,
            entries=[(e.path, e.mode, data) for e, data in zip(blobs, contents, strict=True)],
            strict=context.strict,
            limits=context.limits,
            forbidden_values=list(context.forbidden_values),
            forbidden_ids=list(context.forbidden_ids),
            anchor_similarity=context.anchor_similarity,
        )

    def context(self, root: Path) -> PatchContext:
        """A context on a new repository at ``root`` whose one commit holds the folder."""
        store = GitStore.init(root)
        s0 = store.commit(store.tree_of_entries(self.entries), [], "S0 (a copy for one analysis)")
        return PatchContext(
            store,
            s0,
            self.skill_dir,
            strict=self.strict,
            limits=self.limits,
            forbidden_values=self.forbidden_values,
            forbidden_ids=self.forbidden_ids,
            anchor_similarity=self.anchor_similarity,
        )


@dataclass
class AnalysisJob:
    """What a Ray worker needs for one analysis (all picklable)."""

    models: WorkerModels
    kind: str
    sample: int
    skill: SkillSnapshot
    suite: Any
    task_id: str | None
    #: The other AnalysisInput fields (trajectory, artifacts, turns, ...).
    fields: dict[str, Any]


def run_analysis_job(job: AnalysisJob) -> tuple[AnalystOutcome, list[dict[str, Any]]]:
    """One analysis on a worker: its own model client and scratch repository; returns
    the outcome and the ledger rows (the worker writes nothing anyone else reads)."""
    llm = job.models.client()
    try:
        with tempfile.TemporaryDirectory(prefix="t2s-ray-analysis-") as tmp:
            task = job.suite.task(job.task_id) if job.suite is not None and job.task_id else None
            inp = AnalysisInput(context=job.skill.context(Path(tmp) / "s0"), task=task, suite=job.suite, **job.fields)
            outcome = llm.run(run_analysis(llm, job.kind, inp, job.sample))
    finally:
        llm.close()
    return outcome, ledger_rows(llm)


class RayAnalyses:
    """Analyses as Ray tasks (see the module doc)."""

    name = "ray"

    def __init__(
        self,
        config: Any = None,
        address: str | None = None,
        *,
        num_cpus: float = 1,
        max_retries: int = RAY_MAX_RETRIES,
    ):
        self.config = config
        self._tasks = RayTasks(run_analysis_job, "t2s_analysis", address, num_cpus=num_cpus, max_retries=max_retries)

    async def analyze(self, llm: LLM, kind: str, inp: AnalysisInput, sample: int) -> AnalystOutcome:
        outcome, failure = await self._tasks.run(llm, self._job(llm, kind, inp, sample))
        if failure is not None:  # lost beyond its retries, or it raised: an errored analysis
            return errored_outcome(kind, failure)
        return checked_on_s0(outcome, inp.context)

    def _job(self, llm: LLM, kind: str, inp: AnalysisInput, sample: int) -> AnalysisJob:
        return AnalysisJob(
            models=WorkerModels.of(llm, self.config, inp.phase),
            kind=kind,
            sample=sample,
            skill=SkillSnapshot.of(inp.context),
            suite=inp.suite,
            task_id=inp.task.id if inp.task is not None else None,
            fields={f.name: getattr(inp, f.name) for f in dataclasses.fields(inp) if f.name not in _REBUILT},
        )


def checked_on_s0(outcome: AnalystOutcome, context: PatchContext) -> AnalystOutcome:
    """``outcome`` with its patch rendered again against the real S0 (``context``): the
    same diff gives the tree to commit here; anything else rejects the patch."""
    result = outcome.result
    if not isinstance(result, Patch):
        return outcome
    rendered = context.render(result.edits)
    if rendered.ok and rendered.diff == result.diff:
        outcome.result = result.model_copy(update={"tree": rendered.tree})
        return outcome
    failures = rendered.failures or [EditFailure(reason="the edits give another diff here than on the worker")]
    outcome.result = Rejected(
        reason="the worker's patch does not render the same against S0: " + failures[0].render(),
        failures=failures,
        attempts=result.attempts,
        edits=result.edits,
    )
    return outcome


def make_analysis_executor(name: str | None, address: str | None = None, config: Any = None) -> AnalysisExecutor:
    """The executor called ``name`` (``local``, the default, or ``ray``); ``config``
    (prices, cache settings) goes to the workers."""
    if name in (None, "local"):
        if address:
            raise UsageError("--ray-address goes with --executor ray")
        return LocalAnalyses()
    if name == "ray":
        return RayAnalyses(config, address or os.environ.get("RAY_ADDRESS") or None)
    raise UsageError(f"unknown executor {name!r}: use local or ray")
