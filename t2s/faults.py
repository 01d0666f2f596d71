"""Work that *errored*: why an episode or an analysis ended without a verdict.

An agent episode, an evaluation task or an analysis that ended because of the
infrastructure is an error, never a verdict: the model endpoint was unreachable, its
retries ran out, a budget cap was hit, or t2s itself crashed. Such work is never
cached, never counted as a failure, never written into an eval note, and it is run
again when its command is run again. A model that answers but does nothing useful is
a genuine failure, not an error.

This module names the causes (:class:`ErrorCause`, one ``kind`` each), tallies them
into one row per cause (:func:`tally`), says in one sentence what went wrong
(:func:`describe`), stops a stage from starting more work while an endpoint is down
(:class:`Breaker`), and raises :class:`WorkErrored` (exit status 3) at the end of a
command whose work errored.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from t2s.errors import T2SError
from t2s.llm.errors import FAILURE_KINDS, BudgetExceeded, CacheMiss, LLMError

#: What each kind of cause means, for the tables and docs. Model-call kinds come
#: from :data:`t2s.llm.client.FAILURE_KINDS`.
HARNESS_KINDS = {
    "budget": "a [budget] cap stopped the work",
    "cache-miss": "the replay-only cache had no answer",
    "harness": "t2s could not run the work (a task it could not prepare, a crash)",
    "checker": "the checker crashed on the output",
    "not-run": "not run: the work had already errored",
    "error": "an error recorded without a cause (by an older t2s)",
}

#: Exit status of a command whose work errored (0 done, 1 failed, 2 usage error).
EXIT_ERRORED = 3


class ErrorCause(BaseModel):
    """Why one piece of work errored. ``role``/``endpoint``/``model`` are set for a
    model call that failed."""

    model_config = ConfigDict(extra="ignore")

    kind: str
    message: str
    role: str = ""
    endpoint: str = ""
    model: str = ""

    @property
    def detail(self) -> str:
        """The message without what :attr:`phrase` says anyway (role, endpoint, attempts)."""
        text = self.message
        if " failed after " in text:  # "... failed after 2 attempts: connection failed: ..."
            return text.split(" failed after ", 1)[1].split(": ", 1)[-1]
        if ") failed: " in text:
            return text.split(") failed: ", 1)[1]
        return text

    @property
    def phrase(self) -> str:
        """``the agent model at http://... was unreachable (connection refused ...)``."""

        if self.kind in FAILURE_KINDS and self.role:
            where = f" at {self.endpoint}" if self.endpoint else ""
            return f"the {self.role} model{where} {FAILURE_KINDS[self.kind]} ({self.detail})"
        return f"{HARNESS_KINDS.get(self.kind, self.kind)} ({self.message})"


def cause_of(err: BaseException, *, prefix: str = "") -> ErrorCause:
    """The cause of an error that ended a piece of work (``prefix`` is put before the
    message, e.g. ``checker: ``)."""

    if isinstance(err, LLMError):
        return ErrorCause(
            kind=err.kind or "error",
            message=prefix + err.message,
            role=err.role,
            endpoint=err.endpoint,
            model=err.model,
        )
    if isinstance(err, BudgetExceeded):
        return ErrorCause(kind="budget", message=prefix + err.message)
    if isinstance(err, CacheMiss):
        return ErrorCause(kind="cache-miss", message=prefix + err.message)
    if isinstance(err, T2SError):
        return ErrorCause(kind="checker" if prefix.startswith("checker") else "harness", message=prefix + err.message)
    return ErrorCause(
        kind="checker" if prefix.startswith("checker") else "harness", message=f"{prefix}{type(err).__name__}: {err}"
    )


class CauseCount(BaseModel):
    """One row of an error summary: a cause and how much work it stopped."""

    kind: str
    count: int
    role: str = ""
    endpoint: str = ""
    #: The first message seen for this cause, and its specific part.
    message: str = ""
    detail: str = ""
    #: The same, as a sentence (see :attr:`ErrorCause.phrase`).
    phrase: str = ""


def tally(causes: Iterable[ErrorCause | None]) -> list[CauseCount]:
    """One row per (kind, role, endpoint), most frequent first (work not run last)."""
    rows: dict[tuple[str, str, str], CauseCount] = {}
    for cause in causes:
        cause = cause or ErrorCause(kind="error", message="(no cause recorded)")
        key = (cause.kind, cause.role, cause.endpoint)
        row = rows.get(key)
        if row is None:
            rows[key] = CauseCount(
                kind=cause.kind,
                count=1,
                role=cause.role,
                endpoint=cause.endpoint,
                message=cause.message,
                detail=cause.detail,
                phrase=cause.phrase,
            )
        else:
            row.count += 1
    return sorted(rows.values(), key=lambda r: (r.kind == "not-run", -r.count, r.kind, r.role, r.endpoint))


def describe(rows: list[CauseCount], errored: int, total: int, noun: str) -> str:
    """``12 of 12 trajectories errored: the agent model at http://... was unreachable (...)``."""
    if not rows:
        return f"{errored} of {total} {noun} errored"
    head = f"{errored} of {total} {noun} errored: {rows[0].phrase}"
    if len(rows) > 1:
        others = ", ".join(f"{r.kind} {r.count}" for r in rows[1:])
        head += f"; other causes: {others}"
    return head


def endpoint_failure(cause: ErrorCause | None) -> bool:
    """Whether ``cause`` is a model endpoint failing (not a model answering badly)."""

    return cause is not None and cause.kind in FAILURE_KINDS and cause.kind != "unusable-answer"


class Breaker:
    """Stops a stage from starting new work once ``limit`` items in a row errored because
    a model endpoint failed (a success in between starts the count again): with the
    endpoint down, every further item would only wait out its retries, then error too."""

    def __init__(self, limit: int, noun: str = "items"):
        self.limit = max(1, limit)
        self.noun = noun
        self.in_a_row = 0

    def record(self, cause: ErrorCause | None) -> str | None:
        """Note one finished item (``cause`` None: it has a verdict); the reason to stop, if any."""
        if cause is None:
            self.in_a_row = 0
            return None
        if not endpoint_failure(cause):
            return None
        self.in_a_row += 1
        if self.in_a_row < self.limit:
            return None
        return f"{self.in_a_row} {self.noun} in a row errored because {cause.phrase}"


class WorkErrored(T2SError):
    """Some of a command's work errored (see the module docstring). Exit status 3, so
    scripts can tell "the endpoint was down" from "the skill failed" (exit 1)."""

    exit_code = EXIT_ERRORED

    def __init__(self, message: str, *, causes: list[CauseCount] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.causes = causes or []


__all__ = [
    "EXIT_ERRORED",
    "HARNESS_KINDS",
    "Breaker",
    "CauseCount",
    "ErrorCause",
    "WorkErrored",
    "cause_of",
    "describe",
    "endpoint_failure",
    "tally",
]
