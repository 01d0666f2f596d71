"""Opt-in: the agent harness against a real model (two real tasks, protocol auto).

    T2S_LIVE_BASE_URL=http://127.0.0.1:8000/v1 T2S_LIVE_MODEL=qwen2.5-coder-1.5b-instruct \\
        pytest tests/test_live_agent.py -m live

``T2S_LIVE_API_KEY_ENV`` names the variable holding a key, if the endpoint needs one.
The test asserts that trajectories are recorded, not that the model solves the tasks.
"""

from __future__ import annotations

import os

import pytest

from t2s.agent.trajectory import read_trajectories
from t2s.config import load_config
from t2s.gitstore.store import GitStore
from t2s.llm.client import LLM
from t2s.record.runs import RunRecord
from t2s.rollouts.rollout import rollout
from tests._agent_support import make_skill_repo, needs_benchmark

pytestmark = [
    pytest.mark.live,
    needs_benchmark,
    pytest.mark.skipif(not os.environ.get("T2S_LIVE_BASE_URL"), reason="T2S_LIVE_BASE_URL is not set"),
]


def test_live_rollout_records_two_real_tasks(tmp_path):
    repo = make_skill_repo(tmp_path / "skills", extra="")
    store = GitStore.discover(repo)
    config = load_config(repo / "t2s.toml")
    role = {
        "model": os.environ.get("T2S_LIVE_MODEL", "qwen2.5-coder-1.5b-instruct"),
        "base_url": os.environ["T2S_LIVE_BASE_URL"],
        "api_key_env": os.environ.get("T2S_LIVE_API_KEY_ENV", "T2S_LIVE_API_KEY"),
        "protocol": "auto",
        "temperature": 0.0,
        "max_tokens": 2048,
        "timeout": 300.0,
        "max_retries": 2,
    }
    llm = LLM(
        config, roles={"agent": role}, env={k: v for k, v in os.environ.items() if not k.startswith("T2S_AGENT_")}
    )
    summary = rollout(store, config, run="live", llm=llm, limit=2, concurrency=2)
    assert summary.total == 2 and summary.remaining == 0
    trajs = read_trajectories(RunRecord(store, "live"))
    assert len(trajs) == 2
    for traj in trajs:
        assert traj.verdict in ("passed", "failed", "errored")
        assert traj.protocol == "auto" and traj.protocol_used in ("tools", "text")
        assert traj.messages and traj.messages[0].role == "system"
        if traj.verdict != "errored":
            assert traj.turns >= 1 and traj.usage.total_tokens > 0
