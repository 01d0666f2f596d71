"""t2s: turn agent trajectories into better Agent Skills, with every step a git object.

The library API is small on purpose (see :mod:`t2s.api` and docs/library.md)::

    import t2s
    repo = t2s.open_repo("my-skills")
    t2s.evolve(repo, "r1")
    t2s.gate(repo, "t2s/r1/candidate")

Names are imported on first use, so ``import t2s`` (and the command line) starts fast.
Modules whose names start with an underscore, and anything not in ``__all__``, may
change without notice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from t2s.errors import ConfigError, GitError, RefConflict, T2SError, UsageError

#: Public name -> the module that defines it (imported on first use: PEP 562).
_LAZY = {
    "Repo": "t2s.api",
    "open_repo": "t2s.api",
    "rollout": "t2s.api",
    "analyze": "t2s.api",
    "merge": "t2s.api",
    "evaluate": "t2s.api",
    "gate": "t2s.api",
    "release": "t2s.api",
    "evolve": "t2s.api",
    "EvolveSummary": "t2s.api",
    "RolloutSummary": "t2s.rollouts.rollout",
    "AnalyzeSummary": "t2s.analysis.analyze",
    "MergeSummary": "t2s.consolidation.models",
    "EvalOutcome": "t2s.evaluation.evaluate",
    "GateResult": "t2s.evaluation.gate",
    "ReleaseResult": "t2s.releases.release",
}

__all__ = [
    "__version__",
    "T2SError",
    "UsageError",
    "ConfigError",
    "GitError",
    "RefConflict",
    *_LAZY,
]

if TYPE_CHECKING:  # for type checkers and editors; at run time, __getattr__ imports on use
    # `name as name` marks an explicit re-export (PEP 484), for type checkers and linters
    from t2s.analysis.analyze import AnalyzeSummary as AnalyzeSummary
    from t2s.api import (
        EvolveSummary as EvolveSummary,
        Repo as Repo,
        analyze as analyze,
        evaluate as evaluate,
        evolve as evolve,
        gate as gate,
        merge as merge,
        open_repo as open_repo,
        release as release,
        rollout as rollout,
    )
    from t2s.consolidation.models import MergeSummary as MergeSummary
    from t2s.evaluation.evaluate import EvalOutcome as EvalOutcome
    from t2s.evaluation.gate import GateResult as GateResult
    from t2s.releases.release import ReleaseResult as ReleaseResult
    from t2s.rollouts.rollout import RolloutSummary as RolloutSummary


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 't2s' has no attribute {name!r}")
    import importlib  # only here: the lazy import is the point

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
