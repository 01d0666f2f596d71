"""The only code that talks to models: one OpenAI-compatible client for every role.

``LLM`` (in :mod:`t2s.llm.client`) sends chat and structured-output calls with bounded
concurrency, retries, a budget ledger (:mod:`~t2s.llm.ledger`) and a response cache
(:mod:`~t2s.llm.cache`); :mod:`~t2s.llm.roles` resolves which model each role uses;
:mod:`~t2s.llm.errors` names what can go wrong. See docs/models.md.

The names below are imported on first use: importing :mod:`t2s.llm.errors` (as the
error handling of every stage does) must not load the ``openai`` package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "LLM": "t2s.llm.client",
    "default_cache_path": "t2s.llm.client",
    "FAILURE_KINDS": "t2s.llm.errors",
    "BudgetExceeded": "t2s.llm.errors",
    "CacheMiss": "t2s.llm.errors",
    "LLMError": "t2s.llm.errors",
    "StructuredOutputError": "t2s.llm.errors",
    "Ledger": "t2s.llm.ledger",
    "LedgerRow": "t2s.llm.ledger",
    "ChatResult": "t2s.llm.results",
    "ToolCall": "t2s.llm.results",
    "Usage": "t2s.llm.results",
    "PLACEHOLDER_API_KEY": "t2s.llm.roles",
    "resolve_roles": "t2s.llm.roles",
    "extract_json": "t2s.llm.structured",
}
__all__ = sorted(_LAZY)

if TYPE_CHECKING:  # `name as name` marks an explicit re-export (PEP 484)
    from t2s.llm.client import LLM as LLM, default_cache_path as default_cache_path
    from t2s.llm.errors import (
        FAILURE_KINDS as FAILURE_KINDS,
        BudgetExceeded as BudgetExceeded,
        CacheMiss as CacheMiss,
        LLMError as LLMError,
        StructuredOutputError as StructuredOutputError,
    )
    from t2s.llm.ledger import Ledger as Ledger, LedgerRow as LedgerRow
    from t2s.llm.results import ChatResult as ChatResult, ToolCall as ToolCall, Usage as Usage
    from t2s.llm.roles import PLACEHOLDER_API_KEY as PLACEHOLDER_API_KEY, resolve_roles as resolve_roles
    from t2s.llm.structured import extract_json as extract_json


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 't2s.llm' has no attribute {name!r}")
    import importlib  # only here: importing on first use is the point

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
