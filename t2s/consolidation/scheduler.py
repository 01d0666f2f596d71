"""The merge tree's scheduler: merges start as soon as their inputs exist.

:class:`Merger` plans the levels (:mod:`t2s.consolidation.plan`), runs each group's
merge (:mod:`t2s.consolidation.group`) with bounded concurrency, regroups when a merge
fails, and hands every finished level to :class:`~t2s.consolidation.persistence.MergeRecorder`.
It also runs the paper's sequential baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable, Collection

from t2s.consolidation.accounting import (
    _chain_patches,
    _patch_number,
    check_every_patch_accounted,
)
from t2s.consolidation.fallback import fallback_report, fallback_tree
from t2s.consolidation.group import MergeJob, _trailers, render_report, run_merge
from t2s.consolidation.inputs import load_patch_inputs, merge_input, no_inputs_hint
from t2s.consolidation.models import (
    MergeFailed,
    MergeInput,
    MergeReport,
    MergeSettings,
    MergeSummary,
)
from t2s.consolidation.persistence import MergeRecorder, _Finished
from t2s.consolidation.plan import _plan_levels
from t2s.consolidation.validation import NodeScorer, judge, validated_levels
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore, HeldObjects
from t2s.llm.client import RESAMPLE_TEMPERATURE
from t2s.patches.context import PatchContext
from t2s.record import refs
from t2s.record.lessons import Lesson
from t2s.record.refs import candidate_branch, merge_branch
from t2s.record.runs import RunRecord


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


class Merger:
    """Drives the levels of one run's merge tree (or the sequential baseline)."""

    def __init__(
        self,
        store: GitStore,
        record: RunRecord,
        context: PatchContext,
        ask,
        settings: MergeSettings,
        *,
        model: str = "",
        progress: Callable[[str], None] | None = None,
        scorer: NodeScorer | None = None,
        val_tasks: Collection[str] = (),
    ):
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
        self.recorder = MergeRecorder(store, record, retry_failed=settings.retry_failed)
        #: Scores merge nodes on the validation split; None (or validate "off"): no validation.
        self.scorer = scorer if settings.validate != "off" else None
        #: Tasks of the validation split: patches derived from them are left out of the merge.
        self.val_tasks = frozenset(val_tasks)
        self._scores: dict[str, float] = {}  # commit -> val score, this invocation
        self._s0_score: float | None = None
        self._left_out: set[str] = set()  # patch numbers the validation gate left out

    def load_inputs(self) -> tuple[list[MergeInput], dict[str, str]]:
        """The run's patch branches to merge and the ones review left out; reading
        them first lets bad records fail before anything is recorded."""
        if self._loaded is None:
            inputs, excluded = load_patch_inputs(self.store, self.record, self.s0, self.skill_dir)
            if self.val_tasks:
                # A lesson from a validation task would let val leak into the skill it judges.
                for item in [i for i in inputs if i.task in self.val_tasks]:
                    excluded[_patch_number(item)] = f"its task {item.task} is in the validation split"
                    self._left_out.add(_patch_number(item))
                    inputs.remove(item)
            self._loaded = (inputs, excluded)
        return self._loaded

    async def parallel(self) -> MergeSummary:
        """Merge the run's patch branches level by level into one candidate (the
        paper's parallel consolidation), resuming what an earlier invocation finished;
        every patch must be reachable from the candidate (:class:`PatchesLost` if not)."""
        inputs, excluded = self.load_inputs()
        excluded = dict(excluded)  # validation adds the patches of rejected merges
        summary = MergeSummary(run=self.record.run, strategy="parallel", excluded=excluded, inputs=len(inputs))
        summary.val_task_patches = len(self._left_out)  # so far: only the patches of val tasks
        if self.scorer is not None:
            summary.validate_split = self.scorer.split
        if not inputs:
            raise MergeFailed(
                f"run {self.record.run!r} has no accepted patch branches to merge", hint=no_inputs_hint(self.record)
            )
        items = inputs
        levels_done = 0
        self._announce_validation(len(inputs))
        semaphore = asyncio.Semaphore(max(1, self.settings.concurrency))
        # A level is recorded while later merges wait for the merger: they need only
        # its commits. Levels still land in order, each in one transaction, and all
        # before the candidate moves (or an error propagates).
        recording: asyncio.Future | None = None
        # What an earlier run finished, for resume (this run's own merges are not looked up).
        finished = self.recorder.finished()
        if stale := finished.stale({i.commit for i in inputs}):
            raise UsageError(
                f"the recorded merge tree of run {self.record.run!r} ({', '.join(stale)}) was made from "
                "patches that are no longer merged (a review verdict?)",
                hint=f"`t2s merge --run {self.record.run} --rebuild` sets the old merge tree aside and merges again",
            )
        with _startup_heap_frozen():
            try:
                while len(items) > 1:
                    items, levels_done, recording = await self._merge_tree(
                        items, levels_done, excluded, summary, semaphore, recording, finished
                    )
            finally:
                if recording is not None:
                    await recording
        candidate = items[0]
        reachable = set(self.store.rev_list(candidate.commit, [self.s0]))
        kept = [i for i in inputs if _patch_number(i) not in excluded]  # not those under a rejected merge
        check_every_patch_accounted(
            self.record.run, kept, excluded, [_patch_number(i) for i in inputs if i.commit in reachable]
        )
        summary.excluded = dict(excluded)  # with the patches the validation gate left out
        summary.val_episodes = self.scorer.episodes_run if self.scorer is not None else 0
        summary.candidate = candidate.commit
        summary.candidate_ref = candidate_branch(self.record.run)
        self.recorder.move_candidate(candidate.commit)
        return summary

    async def _merge_tree(
        self,
        items: list[MergeInput],
        levels_done: int,
        excluded: dict[str, str],
        summary: MergeSummary,
        semaphore: asyncio.Semaphore,
        recording: asyncio.Future | None,
        finished: _Finished,
    ) -> tuple[list[MergeInput], int, asyncio.Future | None]:
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
        checked = self._validated(levels_done, plan)
        # The heads a validated level hands up (a rejected merge replaced by its best input).
        carried: list[asyncio.Future] = [asyncio.get_running_loop().create_future() for _ in plan]

        def abandoned(at: int) -> bool:
            return bool(failed_at) and min(failed_at) < at

        async def node(at: int, index: int, group: list[int]):
            if at == 0:
                inputs = [items[i] for i in group]
            else:
                below = [await nodes[at - 1][i] for i in group]
                if abandoned(at):
                    return None
                if levels_done + at in checked:
                    heads = await carried[at - 1]
                    inputs = [heads[i] for i in group]
                else:
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
                result = await self._merge_group(
                    levels_done + at + 1, index + 1, inputs, excluded if root else {}, finished, held[at]
                )
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
                grouped = [[current[i] for i in group] for group in groups]
                next_items, recording = self._close_level(level, grouped, results, summary, recording, held[at])
                if level in checked:
                    await recording  # the nodes are evaluated from their commits, so those exist first
                    next_items = await self._validate_level(level, grouped, results, summary, next_items, excluded)
                carried[at].set_result(next_items)
                if failed_at:
                    if len(next_items) == len(current):
                        await recording  # the failures are recorded before the error says to look at them
                        raise MergeFailed(
                            f"level {level} merged nothing ({len(current)} heads remain); see merges/ in the run record",
                            hint=(
                                "the merger's answers for each failed group were refused or its endpoint failed, "
                                "and git could not apply the group's diffs together (`t2s review` shows why "
                                "each failed). `t2s merge --retry-failed` asks the merger "
                                "for new samples of the failed merges (the next seed, temperature "
                                f"{RESAMPLE_TEMPERATURE} when yours is 0); a stronger merger model "
                                "(`--set merger.model=...`), or `t2s reject` of one conflicting patch "
                                "and `--rebuild`, changes the outcome too"
                            ),
                        )
                    return next_items, level, recording
                current = next_items
            return current, levels_done + len(plan), recording
        finally:
            unfinished = [task for level_nodes in nodes for task in level_nodes if not task.done()]
            for task in unfinished:  # merges planned on a grouping that no longer holds
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)

    def _announce_validation(self, heads: int) -> None:
        """Before spending: how many agent episodes validation may cost (at most; nodes
        whose skill was evaluated before cost nothing)."""
        if self.scorer is None:
            return
        plan = _plan_levels(heads, self.settings.fan_in)
        nodes = sum(len(plan[level - 1]) for level in validated_levels(self.settings.validate, len(plan)))
        per = self.scorer.episodes_per_evaluation
        self.progress(
            f"validation on {self.scorer.split}: up to {(nodes + 1) * per} agent episodes "
            f"({nodes} merges + S0, {per} episodes each; evaluations in notes cost none)"
        )

    def _validated(self, levels_done: int, plan: list) -> set[int]:
        """The levels of this plan whose merges are scored on val."""
        if self.scorer is None:
            return set()
        return validated_levels(self.settings.validate, levels_done + len(plan))

    async def _val_score(self, commit: str) -> float:
        """A commit's val score (an evaluation, or its note); the agent runs off this thread."""
        if commit not in self._scores:
            assert self.scorer is not None
            self._scores[commit] = await asyncio.to_thread(self.scorer.score, commit)
        return self._scores[commit]

    async def _input_score(self, item: MergeInput) -> float:
        """An input's val score: its own if it was evaluated, else S0's (a patch, or a
        merge of a level that is not validated)."""
        if item.commit in self._scores:
            return self._scores[item.commit]
        assert self.scorer is not None
        known = await asyncio.to_thread(self.scorer.known, item.commit)
        if known is not None:
            return known
        if self._s0_score is None:
            self._s0_score = await self._val_score(self.s0)
            self.progress(f"S0 on {self.scorer.split}: {self._s0_score:.3f}")
        return self._s0_score

    async def _validate_level(
        self,
        level: int,
        groups: list[list[MergeInput]],
        results: list[tuple[MergeReport, bool]],
        summary: MergeSummary,
        next_items: list[MergeInput],
        excluded: dict[str, str],
    ) -> list[MergeInput]:
        """Score a level's merges on val; a merge that loses to its best input is marked
        rejected (commit, branch and report stay) and that input goes up instead."""
        assert self.scorer is not None
        replace: dict[str, MergeInput] = {}
        judged: list[MergeReport] = []
        for group, (report, _) in zip(groups, results, strict=True):
            if report.status != "merged" or report.commit is None:
                continue
            scores = [(item.label, await self._input_score(item)) for item in group]
            score = await self._val_score(report.commit)
            verdict, best = judge(score, scores, self.settings.tolerance, self.scorer.split)
            summary.val_scores[report.name] = score
            summary.s0_val = self._s0_score
            self.progress(f"{report.name}: {verdict.describe()}")
            if verdict.rejected:
                summary.rejected.append(report.name)
                replace[report.commit] = group[best]
                self._drop_patches(report, group[best], verdict.describe(), excluded)
            if report.validation != verdict:
                judged.append(report.model_copy(update={"validation": verdict}))
        if judged:
            await asyncio.to_thread(self.recorder.record_validation, level, judged)
        return [replace.get(item.commit, item) for item in next_items]

    def _drop_patches(self, report: MergeReport, kept: MergeInput, why: str, excluded: dict[str, str]) -> None:
        """Account for the patches under a rejected merge that its best input does not hold."""
        inputs, _ = self.load_inputs()
        under = set(self.store.rev_list(report.commit or "", [self.s0]))
        still = set(self.store.rev_list(kept.commit, [self.s0]))
        for item in inputs:
            if item.commit in under and item.commit not in still:
                excluded[_patch_number(item)] = f"under merge {report.name}, {why}"
                self._left_out.add(_patch_number(item))

    def _close_level(
        self,
        level: int,
        groups: list[list[MergeInput]],
        results: list[tuple[MergeReport, bool]],
        summary: MergeSummary,
        recording: asyncio.Future | None,
        held: HeldObjects,
    ) -> tuple[list[MergeInput], asyncio.Future]:
        """Count a finished level, start recording it, and give the next level's heads."""
        fresh = [report for report, reused in results if not reused]
        recording = asyncio.ensure_future(self.recorder.record_after(recording, level, fresh, held))
        next_items: list[MergeInput] = []
        for group, (report, reused) in zip(groups, results, strict=True):
            summary.reused += reused
            if report.status == "merged":
                summary.merged += 1
                summary.fallbacks += report.fallback is not None
                next_items.append(merge_input(report))
            else:
                summary.failed += 1
                next_items.extend(group)  # carried up unmerged, never lost
        summary.levels.append([report.name for report, _ in results])
        return next_items, recording

    async def _merge_group(
        self,
        level: int,
        group: int,
        inputs: list[MergeInput],
        excluded: dict[str, str],
        finished: _Finished,
        held: HeldObjects,
    ) -> tuple[MergeReport, bool]:
        name = f"L{level}-{group:02d}"
        ref = merge_branch(self.record.run, level, group)
        existing = self.recorder.existing(name, ref, [i.commit for i in inputs], finished)
        if existing is not None:
            return existing, True
        earlier = finished.report(name)  # a failed merge asked again: the next sample
        sample = earlier.sample + 1 if earlier is not None and earlier.status == "failed" else 1
        job = MergeJob(
            run=self.record.run,
            name=name,
            level=level,
            group=group,
            inputs=inputs,
            context=self.context,
            min_support=self.settings.min_support,
            retries=self.settings.retries,
            ask=self.ask,
            model=self.model,
            sample=sample,
            hold=held,
        )
        report, tree = await run_merge(job)
        if tree is None and not report.endpoint_error and self.settings.fallback:
            report, tree = self._git_fallback(report, inputs)
        if tree is not None:
            subject, body = render_report(report, excluded, self._left_out)
            parents = [i.commit for i in inputs]
            commit = self.store.commit(tree, parents, subject, body, _trailers(report), hold=held)
            report = report.model_copy(update={"commit": commit, "branch": ref})
        self.progress(f"{name}: {report.status}" + (f" ({report.reason})" if report.reason else ""))
        return report, False

    def _git_fallback(self, failed: MergeReport, inputs: list[MergeInput]) -> tuple[MergeReport, str | None]:
        """Git's merge of a group the merger failed on, when the inputs' diffs apply together."""
        tree, how = fallback_tree(self.store, self.s0, [i.diff for i in inputs])
        if tree is None:
            return failed, None
        diff = self.store.diff(self.s0, tree, self.context.skill_dir)
        return fallback_report(failed, inputs, diff, how), tree

    async def sequential(self, batch: int) -> MergeSummary:
        """The paper's baseline: each batch of patches edits the current skill in turn."""
        if batch < 1:
            raise UsageError(f"--batch must be at least 1 (got {batch})")
        inputs, excluded = self.load_inputs()
        if not inputs:
            raise MergeFailed(
                f"run {self.record.run!r} has no accepted patch branches to merge", hint=no_inputs_hint(self.record)
            )
        summary = MergeSummary(run=self.record.run, strategy="sequential", excluded=excluded, inputs=len(inputs))
        current = self.s0
        carried: list[Lesson] = []
        for index, start in enumerate(range(0, len(inputs), batch), start=1):
            chunk = inputs[start : start + batch]
            name = f"S{index:03d}"
            ref = refs.sequential_branch(self.record.run, index)
            group_inputs = list(chunk)
            if carried:
                group_inputs.insert(
                    0,
                    MergeInput(
                        ref="",
                        commit=current,
                        label="current skill",
                        lessons=carried,
                        diff=self.store.diff(self.s0, current, self.skill_dir),
                    ),
                )
            context = PatchContext(
                self.store,
                current,
                self.skill_dir,
                strict=self.context.strict,
                limits=self.context.limits,
                anchor_similarity=self.context.anchor_similarity,
            )
            job = MergeJob(
                run=self.record.run,
                name=name,
                level=index,
                group=1,
                inputs=group_inputs,
                context=context,
                min_support=self.settings.min_support,
                retries=self.settings.retries,
                ask=self.ask,
                model=self.model,
                strategy="sequential",
            )
            report, tree = await run_merge(job)
            if tree is None:
                summary.failed += 1
                self.recorder.record_step(name, report)
                raise MergeFailed(f"sequential step {name} failed: {report.reason}")
            subject, body = render_report(report)
            patches = [_patch_number(i) for i in chunk]
            commit = self.store.commit(tree, [current], subject, body, _trailers(report, patches))
            report = report.model_copy(update={"commit": commit, "branch": ref})
            self.recorder.record_step(name, report)
            summary.merged += 1
            summary.levels.append([name])
            current, carried = commit, report.lessons
            self.progress(f"{name}: merged {len(chunk)} patches")
        check_every_patch_accounted(self.record.run, inputs, excluded, _chain_patches(self.store, current, self.s0))
        summary.candidate, summary.candidate_ref = (
            current,
            self.recorder.move_branch(refs.sequential_candidate(self.record.run), current),
        )
        return summary
