"""The eval cache key is pinned: a fixed config and the shipped agent prompts give a
fixed hash.

Stored evaluations (``refs/notes/t2s/eval``) are found again by this key. Anything
that changes it silently re-runs every evaluation a user has: moving or renaming the
agent prompt files (``t2s/prompts/agent*``), editing one, or changing what the
fingerprint holds. If this test fails, the change must be deliberate: update the pins
and say in the README that stored evaluations run once more.
"""

from __future__ import annotations

from t2s.config import Config
from t2s.evaluation.context import agent_fingerprint, fingerprint_hash, harness_hash
from t2s.llm.roles import resolve_roles

#: sha256 of the agent prompt files (names and bytes), first 16 hex digits.
HARNESS = "aa2d4e1d2ff7bc20"
#: the fingerprint of the default agent settings with that harness.
FINGERPRINT = "93f03e7faa3f6572b7e75e6536d76d777f53321572bac101e4959e9d0c4c13f5"


def test_the_harness_hash_of_the_shipped_agent_prompts_is_pinned():
    assert harness_hash() == HARNESS


def test_the_agent_fingerprint_of_a_fixed_config_is_pinned():
    config = Config()
    role = resolve_roles(config, env={}, roles=("agent",))["agent"]
    fingerprint = agent_fingerprint(config, role)
    assert fingerprint == {
        "model": "gpt-4o-mini",
        "temperature": 0.0,
        "max_tokens": 4096,
        "seed": None,
        "extra_body": {},
        "protocol": "auto",
        "max_turns": 12,
        "exec_timeout": 60.0,
        "harness": HARNESS,
    }
    assert fingerprint_hash(fingerprint) == FINGERPRINT
