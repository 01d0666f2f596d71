"""t2s: turn agent trajectories into better Agent Skills, with every step a git object.

The public API is small on purpose; modules whose names start with an underscore,
and anything not listed in ``__all__``, may change without notice.
"""

from __future__ import annotations

__version__ = "0.1.0"

from t2s.errors import ConfigError, GitError, RefConflict, T2SError, UsageError

__all__ = [
    "__version__",
    "T2SError",
    "UsageError",
    "ConfigError",
    "GitError",
    "RefConflict",
]
