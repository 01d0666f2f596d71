"""The validation split of a merge: which tasks, and a scorer over the eval notes.

:func:`val_scorer` resolves ``[merge] validate`` / ``validate_split`` for a run and
returns a :class:`ValScorer`, which the merge scheduler
(:mod:`t2s.consolidation.validation`) calls for every merge node it builds. Scores
come from :func:`t2s.evaluation.evaluate.evaluate`, so they are cached in the eval
notes like any evaluation: a node whose skill tree was evaluated before (a second
merge of the run, a regrouped tree, a git-fallback node with the same tree) costs
nothing, and ``t2s bisect`` or the gate find them later.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from t2s.config import Config
from t2s.errors import UsageError
from t2s.evaluation.context import EvalContext, make_context, suite_name_of
from t2s.evaluation.evaluate import evaluate, find_cached
from t2s.gitstore.store import GitStore
from t2s.tasks import load_suite


@dataclass
class ValScorer:
    """Scores commits on the validation split; counts the agent episodes it ran."""

    ctx: EvalContext
    #: Agent episodes run by this scorer (evaluations found in notes cost none).
    episodes_run: int = 0
    evaluations_run: int = 0
    _known: dict[str, float] = field(default_factory=dict)

    @property
    def split(self) -> str:
        return self.ctx.split

    @property
    def tasks(self) -> list[str]:
        """The validation task ids (their patches stay out of the merge)."""
        return list(self.ctx.task_ids)

    @property
    def episodes_per_evaluation(self) -> int:
        return len(self.ctx.task_ids) * self.ctx.seeds

    def score(self, commit: str) -> float:
        """The val score of ``commit``: from a note with the same cache key, or run now."""
        outcome = evaluate(self.ctx, commit)
        if outcome.ran:
            self.evaluations_run += 1
            self.episodes_run += self.episodes_per_evaluation
        self._known[commit] = outcome.record.score
        return outcome.record.score

    def known(self, commit: str) -> float | None:
        """The val score of ``commit`` if a note already holds it (nothing runs)."""
        if commit not in self._known:
            tree = self.ctx.store.subtree(commit, self.ctx.skill_dir)
            hit = find_cached(self.ctx.store, self.ctx.key(tree), prefer=commit) if tree else None
            if hit is None:
                return None
            self._known[commit] = hit[1].score
        return self._known[commit]


def val_scorer(
    store: GitStore,
    config: Config,
    *,
    skill_dir: str,
    validate: bool | None = None,
    unsafe_no_sandbox: bool | None = None,
) -> ValScorer | None:
    """The scorer for a merge's validation, or None when validation is off.

    ``validate`` is ``--validate`` (True), ``--no-validate`` (False) or the config
    (None). With the config's default, a suite without the validation split just
    merges without validation; asked for explicitly, that is an error.
    """
    if validate is False or (validate is None and config.merge.validation == "off"):
        return None
    split = config.merge.validate_split
    try:
        suite_name = suite_name_of(config)
    except UsageError:
        if validate:
            raise
        return None
    suite = load_suite(suite_name, config, base_dir=store.root)  # refuses val overlapping held-out
    if split not in suite.splits():
        if validate:
            raise UsageError(
                f"suite {suite_name!r} has no validation split {split!r}",
                hint=(
                    f'declare it under [suites.{suite_name}.splits], e.g. {split} = {{ carve = "evolve", count = 20 }}, '
                    "or merge with --no-validate"
                ),
            )
        return None
    if split in (config.rollout.heldout_split, config.gate.split):
        raise UsageError(
            f"the validation split {split!r} is the held-out split",
            hint="set [merge] validate_split to a split disjoint from the held-out and gate splits",
        )
    ctx = make_context(
        store, config, split=split, seeds=1, suite=suite_name, skill_dir=skill_dir, unsafe_no_sandbox=unsafe_no_sandbox
    )
    return ValScorer(ctx)
