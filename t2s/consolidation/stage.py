"""The merge stage of a run: one call from patch branches to ``t2s/<run>/candidate``.

It holds the run's merge lock (one ``t2s merge`` per run at a time), reads the inputs
before recording anything (so a bad record fails cleanly), sets an earlier merge tree
aside when asked (``rebuild``), marks the stage in the run manifest, and adds the
model ledger to ``ledger/merge.json`` whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

from t2s.config import Config
from t2s.consolidation.group import merger_ask
from t2s.consolidation.models import MergeSettings, MergeSummary
from t2s.consolidation.persistence import set_aside_merges
from t2s.consolidation.scheduler import Merger
from t2s.consolidation.validation import NodeScorer
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.llm.client import LLM, default_cache_path
from t2s.llm.ledger import accumulate
from t2s.patches.context import PatchContext
from t2s.record import refs
from t2s.record.runs import RunRecord
from t2s.record.shards import collect_run
from t2s.skill.repo import limits_of

STAGE = "merge"
LEDGER_PATH = "ledger/merge.json"


def merge_run(
    store: GitStore,
    config: Config,
    *,
    run: str,
    fan_in: int | None = None,
    strategy: Literal["parallel", "sequential"] = "parallel",
    batch: int = 5,
    retry_failed: bool = False,
    rebuild: bool = False,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    cache: bool = True,
    progress: Callable[[str], None] | None = None,
    scorer: NodeScorer | None = None,
    val_tasks: Collection[str] = (),
) -> MergeSummary:
    """Merge run ``run``'s patch branches into its candidate (or, with ``strategy=
    "sequential"``, the paper's linear baseline). ``progress`` gets one line per
    merge; ``rebuild`` sets an earlier merge tree aside first (after a review).
    With a ``scorer``, every merge node of the levels ``[merge] validate`` names is
    scored on the validation split (:mod:`t2s.consolidation.validation`); patches of
    ``val_tasks`` are left out of the merge."""
    settings = MergeSettings(
        fan_in=config.merge.fan_in if fan_in is None else fan_in,
        min_support=config.merge.min_support,
        retries=config.merge.retries,
        concurrency=config.merge.concurrency,
        retry_failed=retry_failed,
        validate=config.merge.validation if scorer is not None else "off",
        tolerance=config.merge.tolerance,
        fallback=config.merge.fallback,
    )
    if settings.fan_in < 2:
        raise UsageError(f"--fan-in must be at least 2 (got {settings.fan_in})")
    if batch < 1:
        raise UsageError(f"--batch must be at least 1 (got {batch})")
    if rebuild and strategy == "sequential":
        raise UsageError("--rebuild sets the merge tree aside; the sequential baseline starts over on every run anyway")
    say = progress or (lambda message: None)
    for stage in ("rollout", "analyze"):  # sharded stages are joined first (a no-op when they were)
        collect_run(store, run, stage)
    record = RunRecord(store, run)
    manifest = record.manifest()
    llm = LLM(
        config,
        cache_path=default_cache_path(store.common_dir, config) if cache else None,
        phase=STAGE,
        overrides=overrides,
    )
    context = PatchContext(
        store,
        manifest.s0,
        manifest.skill_dir,
        strict=config.lint.strict,
        limits=limits_of(config),
        anchor_similarity=config.patches.anchor_similarity,
    )
    merger = Merger(
        store,
        record,
        context,
        merger_ask(llm),
        settings,
        model=llm.role("merger").model,
        progress=say,
        scorer=scorer,
        val_tasks=val_tasks if scorer is not None else (),
    )
    try:
        with record.stage_lock(STAGE):
            merger.load_inputs()  # unreadable patch records or verdicts fail before anything is recorded
            if rebuild:
                name = set_aside_merges(store, record)
                if name:
                    say(f"the earlier merge tree is set aside as superseded/{name} ({refs.superseded(run, name)})")
            record.set_stage(STAGE, "running")
            try:  # LLM.run closes the HTTP clients with the event loop
                summary = llm.run(merger.sequential(batch) if strategy == "sequential" else merger.parallel())
            except Exception:
                record.set_stage(STAGE, "failed")
                raise
            finally:
                record.write(
                    {LEDGER_PATH: accumulate(record.read_json(LEDGER_PATH), llm.ledger)},
                    f"t2s merge {record.run}: ledger",
                )
            record.set_stage(STAGE, "done", summary.model_dump())
    finally:
        llm.close()
    return summary
