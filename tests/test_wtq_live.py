"""Opt-in: five WikiTableQuestions questions (evolve split) against a real model.

    T2S_LIVE_BASE_URL=http://127.0.0.1:8000/v1 T2S_LIVE_MODEL=qwen2.5-coder-1.5b-instruct \\
        pytest tests/test_wtq_live.py -m live -s

``T2S_LIVE_API_KEY_ENV`` names the variable holding a key, if the endpoint needs one.
Asserts that the trajectories are recorded and prints the score; it does not require
the model to answer correctly.
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
from t2s.skill.repo import init_skill_repo
from tests._wtq_support import needs_wtq
from tests.conftest import WIKITABLEQUESTIONS

pytestmark = [
    pytest.mark.live,
    needs_wtq,
    pytest.mark.skipif(not os.environ.get("T2S_LIVE_BASE_URL"), reason="T2S_LIVE_BASE_URL is not set"),
]


def test_live_five_wtq_questions(tmp_path):
    repo = tmp_path / "skills"
    init_skill_repo(
        repo, seed="table-qa", install_git_hooks=False, suite=("wikitablequestions", str(WIKITABLEQUESTIONS))
    )
    toml = repo / "t2s.toml"
    toml.write_text(toml.read_text().replace('mode = "read-write"', 'mode = "off"'))
    config = load_config(toml)
    role = {
        "model": os.environ.get("T2S_LIVE_MODEL", "qwen2.5-coder-1.5b-instruct"),
        "base_url": os.environ["T2S_LIVE_BASE_URL"],
        "api_key_env": os.environ.get("T2S_LIVE_API_KEY_ENV", "T2S_LIVE_API_KEY"),
        "protocol": "auto",
        "temperature": 0.0,
        "max_tokens": 1024,  # a turn is a short script or an answer; bounds runaway output
        "timeout": 300.0,
        "max_retries": 2,
    }
    llm = LLM(
        config, roles={"agent": role}, env={k: v for k, v in os.environ.items() if not k.startswith("T2S_AGENT_")}
    )
    store = GitStore.discover(repo)
    # One at a time: a local single-slot server (llama.cpp) keeps its prompt cache
    # only while one conversation runs; interleaving two re-reads ~5k tokens a turn.
    summary = rollout(store, config, run="live-wtq", llm=llm, limit=5, concurrency=1)
    assert summary.total == 5 and summary.remaining == 0
    trajs = read_trajectories(RunRecord(store, "live-wtq"))
    assert len(trajs) == 5
    for traj in trajs:
        assert traj.verdict in ("passed", "failed", "errored")
        assert traj.suite == "wtq" and traj.messages and traj.messages[0].role == "system"
        if traj.verdict != "errored":
            assert traj.turns >= 1 and traj.usage.total_tokens > 0 and traj.check.get("answers") is not None
        answers = (traj.check or {}).get("answers") or {}
        print(f"{traj.task_id}: {traj.verdict}  gold={answers.get('gold')} predicted={answers.get('predicted')}")
    print(
        f"WTQ live score: {summary.passed}/{summary.total} passed "
        f"({summary.failed} failed, {summary.errored} errored), {summary.tokens} tokens"
    )
