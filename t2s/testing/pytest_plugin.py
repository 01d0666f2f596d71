"""pytest plugin: the ``scripted_server`` fixture and a clean model environment.

Enable it in a ``conftest.py`` with ``pytest_plugins = ["t2s.testing.pytest_plugin"]``.

* ``scripted_server`` — a started :class:`~t2s.testing.ScriptedServer`, stopped after
  the test.
* ``scripted_roles`` — ``{"agent": {...}, "analyst": {...}, "merger": {...}}`` pointing
  every role at that server with fast retry settings, for ``LLM(roles=...)``.
* Every test runs without the developer's ``T2S_<ROLE>_*`` / ``T2S_MODEL`` /
  ``T2S_BASE_URL``... variables and ``T2S_CACHE_MODE``, so a shell pointed at a real
  endpoint cannot leak into the test suite.
"""

from __future__ import annotations

import os

import pytest

from t2s.config import ROLES
from t2s.llm.roles import ENV_FIELDS
from t2s.testing.server import ScriptedServer


def _model_env_names() -> list[str]:

    prefixes = ["T2S_"] + [f"T2S_{r.upper()}_" for r in ROLES]
    names = [p + suffix for p in prefixes for suffix in ENV_FIELDS]
    return [n for n in [*names, "T2S_CACHE_MODE"] if n in os.environ]


@pytest.fixture(autouse=True)
def _t2s_clean_model_env(monkeypatch):
    for name in _model_env_names():
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def scripted_server():
    """A real OpenAI-compatible server on 127.0.0.1 (ephemeral port) for one test."""
    with ScriptedServer() as srv:
        yield srv


def scripted_role(srv: ScriptedServer, model: str = "scripted-model", **settings) -> dict:
    """Settings of one role pointed at ``srv``: fast retries, short timeout."""
    role = {
        "model": model,
        "base_url": srv.base_url,
        "api_key_env": "T2S_TEST_API_KEY",
        "max_retries": 3,
        "backoff_base": 0.001,
        "backoff_max": 0.01,
        "timeout": 10.0,
        "concurrency": 8,
    }
    role.update(settings)
    return role


@pytest.fixture
def scripted_roles(scripted_server):
    """Every role pointed at ``scripted_server`` (models ``<role>-model``)."""

    return {r: scripted_role(scripted_server, model=f"{r}-model") for r in ROLES}
