"""Errors that reach the user as a message, never as a traceback.

Anything a user can cause (bad input, a missing file, a refused operation) raises a
subclass of :class:`T2SError`. The CLI prints ``Error: <message>`` (and the hint, if
any) and exits with ``exit_code``. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class T2SError(Exception):
    """A user-facing failure with a precise message."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(T2SError):
    """The command was called wrongly (a bad flag value, a path that is not there)."""

    exit_code = 2


class ConfigError(UsageError):
    """``t2s.toml`` is missing, malformed, or says something impossible."""


class GitError(T2SError):
    """A git command failed; the message carries git's own words."""


class RefConflict(GitError):
    """A compare-and-swap ref update found a different old value: someone else moved it."""
