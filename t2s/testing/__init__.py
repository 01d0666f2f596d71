"""Test helpers shipped with t2s: a scripted OpenAI-compatible server.

Importable without pytest (the offline demo uses it in-process). The pytest fixture
``scripted_server`` lives in :mod:`t2s.testing.pytest_plugin`.

Names are loaded lazily so ``python -m t2s.testing.server`` runs cleanly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FAULT_KINDS", "ChatRequest", "Fault", "Reply", "ScriptedServer", "tool_call"]

if TYPE_CHECKING:  # pragma: no cover
    from t2s.testing.server import FAULT_KINDS, ChatRequest, Fault, Reply, ScriptedServer, tool_call


def __getattr__(name: str) -> Any:
    if name in __all__:
        from t2s.testing import server

        return getattr(server, name)
    raise AttributeError(f"module 't2s.testing' has no attribute {name!r}")
