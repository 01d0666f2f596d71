"""What can go wrong with a model call: :class:`LLMError` (this call failed; ``kind`` says
why in one word, see :data:`FAILURE_KINDS`), :class:`StructuredOutputError` (the model
answered, but never validly), and the two that stop a run: :class:`BudgetExceeded` and
:class:`CacheMiss`."""

from __future__ import annotations

from typing import Any

from t2s.errors import T2SError

#: Why a model call failed for good, in one word (``LLMError.kind``). All but
#: ``unusable-answer`` are failures of the endpoint or the network, never of the model.
FAILURE_KINDS = {
    "unreachable": "was unreachable",  # connection refused, no such host
    "connection-lost": "dropped the connection",  # closed without (or in the middle of) an answer
    "timeout": "did not answer in time",
    "rate-limited": "kept answering 429 (rate limited)",
    "server-error": "kept failing with server errors",  # 5xx, 408
    "http-error": "refused the request",  # other 4xx: a key, a URL or a request problem
    "bad-response": "sent answers that are not chat completions",  # not JSON, wrong shape
    "unusable-answer": "never gave a usable answer",  # StructuredOutputError
}


class LLMError(T2SError):
    """One model call failed for good (after retries, or on a non-retryable error)."""

    def __init__(
        self,
        message: str,
        *,
        role: str = "",
        endpoint: str = "",
        model: str = "",
        cause: str = "",
        attempts: int = 0,
        status: int | None = None,
        hint: str | None = None,
        kind: str = "",
    ):
        super().__init__(message, hint=hint)
        self.role = role
        self.endpoint = endpoint
        self.model = model
        self.cause = cause
        self.attempts = attempts
        self.status = status
        #: One of :data:`FAILURE_KINDS`.
        self.kind = kind


class StructuredOutputError(LLMError):
    """The model's answer never parsed and validated, even after the repair rounds."""

    def __init__(self, message: str, *, raw: str, errors: list[str], **kw: Any):
        kw.setdefault("kind", "unusable-answer")
        super().__init__(message, **kw)
        #: The last answer, verbatim.
        self.raw = raw
        #: One message per failed round, oldest first.
        self.errors = errors


class BudgetExceeded(T2SError):
    """A ``[budget]`` cap forbids new model calls. Finished work stays intact."""


class CacheMiss(T2SError):
    """Replay-only cache mode and this request was never recorded."""
