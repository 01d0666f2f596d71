"""Opt-in: `t2s models check` and one structured call against a real endpoint.

Skipped unless T2S_LIVE_BASE_URL is set, e.g.::

    export T2S_LIVE_BASE_URL=$(../shared/tools/local-llm start)
    python -m pytest -m live tests/test_live_models.py

Optional: T2S_LIVE_MODEL (default "local"), T2S_LIVE_API_KEY_ENV (the variable that
holds the key; unset means no key), T2S_LIVE_TIMEOUT (seconds, default 300).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import BaseModel

from t2s.llm.client import LLM

LIVE_URL = os.environ.get("T2S_LIVE_BASE_URL")
MODEL = os.environ.get("T2S_LIVE_MODEL", "local")
KEY_ENV = os.environ.get("T2S_LIVE_API_KEY_ENV", "")
TIMEOUT = float(os.environ.get("T2S_LIVE_TIMEOUT", "300"))

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not LIVE_URL, reason="T2S_LIVE_BASE_URL not set"),
]


def test_models_check_against_live_endpoint(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("T2S_AGENT_", "T2S_ANALYST_", "T2S_MERGER_"))}
    env.update({"T2S_BASE_URL": LIVE_URL, "T2S_MODEL": MODEL, "T2S_API_KEY_ENV": KEY_ENV})
    proc = subprocess.run(
        [sys.executable, "-m", "t2s", "models", "check", "--json", "--timeout", str(TIMEOUT)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=3 * TIMEOUT + 60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["role"] for r in rows] == ["agent", "analyst", "merger"]
    assert all(r["ok"] for r in rows), rows


class Sum(BaseModel):
    answer: int


def test_structured_output_against_live_endpoint():
    llm = LLM(
        roles={
            "analyst": {
                "model": MODEL,
                "base_url": LIVE_URL,
                "api_key_env": KEY_ENV,
                "timeout": TIMEOUT,
                "max_tokens": 128,
                "max_retries": 1,
            }
        },
        env=os.environ,
        cache_mode="off",
    )
    got = llm.structured_sync(
        "analyst",
        [{"role": "user", "content": 'What is 2 + 3? Answer as JSON: {"answer": <integer>}.'}],
        Sum,
        repairs=2,
    )
    assert got.answer == 5
    assert llm.ledger.totals.calls >= 1 and llm.ledger.totals.completion_tokens > 0
