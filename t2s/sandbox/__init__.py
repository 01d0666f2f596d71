"""The sandbox: model-written code runs with nothing but its work folder.

``run_code`` (in :mod:`t2s.sandbox.run`) runs Python or a shell command under
bubblewrap (:mod:`~t2s.sandbox.bwrap`), in a cgroup of its own
(:mod:`~t2s.sandbox.cgroups`), on a copy of its work folder that comes back as
regular files only (:mod:`~t2s.sandbox.workcopy`); :mod:`~t2s.sandbox.leftovers`
removes what a killed t2s left behind. See docs/sandbox.md.
"""

from t2s.sandbox.run import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT,
    UNSAFE_ENV,
    ExecResult,
    SandboxUnavailable,
    isolation_report,
    preflight,
    run_code,
    unsafe_allowed,
)

__all__ = [
    "DEFAULT_MEMORY_MB",
    "DEFAULT_TIMEOUT",
    "UNSAFE_ENV",
    "ExecResult",
    "SandboxUnavailable",
    "isolation_report",
    "preflight",
    "run_code",
    "unsafe_allowed",
]
