"""The only code that talks to models: one OpenAI-compatible client for every role.

``LLM`` (in :mod:`t2s.llm.client`) sends chat and structured-output calls with bounded
concurrency, retries, a budget ledger (:mod:`~t2s.llm.ledger`) and a response cache
(:mod:`~t2s.llm.cache`); :mod:`~t2s.llm.roles` resolves which model each role uses;
:mod:`~t2s.llm.errors` names what can go wrong. See docs/models.md.
"""

from t2s.llm.client import LLM, default_cache_path
from t2s.llm.errors import FAILURE_KINDS, BudgetExceeded, CacheMiss, LLMError, StructuredOutputError
from t2s.llm.ledger import Ledger, LedgerRow
from t2s.llm.results import ChatResult, ToolCall, Usage
from t2s.llm.roles import PLACEHOLDER_API_KEY, resolve_roles
from t2s.llm.structured import extract_json

__all__ = [
    "FAILURE_KINDS",
    "LLM",
    "PLACEHOLDER_API_KEY",
    "BudgetExceeded",
    "CacheMiss",
    "ChatResult",
    "LLMError",
    "Ledger",
    "LedgerRow",
    "StructuredOutputError",
    "ToolCall",
    "Usage",
    "default_cache_path",
    "extract_json",
    "resolve_roles",
]
