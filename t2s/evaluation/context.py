"""What an evaluation runs in: the suite and split, the seeds, and the agent fingerprint
that keys the cache.

The agent fingerprint (:func:`agent_fingerprint`) holds what changes results: the
agent model and its sampling settings, the harness (max turns, execution timeout, a
hash of the agent prompts), and the suite's scoring options. It deliberately leaves
out where the model is served (``base_url``), keys, timeouts, retries and
concurrency, so CI and a laptop share results for the same model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from t2s.config import Config
from t2s.errors import ConfigError, UsageError
from t2s.gitstore.store import GitStore
from t2s.llm.roles import resolve_roles
from t2s.skill.repo import skill_dir_of
from t2s.tasks import load_suite

#: RoleModel settings that change what the agent does (everything else is transport).
AGENT_RESULT_FIELDS = ("model", "temperature", "max_tokens", "seed", "extra_body", "protocol")


@dataclass
class EvalContext:
    """Everything two evaluations must share to be comparable: suite, split, agent."""

    store: GitStore
    config: Config
    suite: Any  # t2s.tasks.Suite
    suite_name: str
    split: str
    seeds: int
    skill_dir: str
    task_ids: list[str]
    suite_hash: str
    agent: dict
    agent_hash: str
    #: The effective agent role settings (t2s.config.RoleModel), transport included.
    agent_role: Any = None
    #: Run the agent's code without the sandbox where none can be had
    #: (``--unsafe-no-sandbox``; None: ``$T2S_UNSAFE_NO_SANDBOX``).
    unsafe_no_sandbox: bool | None = None

    def key(self, skill_tree: str) -> tuple[str, str, str, str, int]:
        return (skill_tree, self.suite_hash, self.split, self.agent_hash, self.seeds)


def harness_hash() -> str:
    """A short hash of the agent prompts shipped with t2s (a harness change re-runs)."""
    h = hashlib.sha256()
    try:
        folder = resources.files("t2s.prompts")
        for item in sorted(folder.iterdir(), key=lambda p: p.name):
            if item.name.startswith("agent") and item.is_file():
                h.update(item.name.encode() + b"\0" + item.read_bytes() + b"\0")
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover
        pass
    return h.hexdigest()[:16]


def agent_fingerprint(config: Config, role: Any, suite: Any = None) -> dict:
    """The agent settings that change results; see the module docstring."""
    data = {name: getattr(role, name) for name in AGENT_RESULT_FIELDS}
    data["max_turns"] = config.rollout.max_turns
    data["exec_timeout"] = config.rollout.exec_timeout
    data["harness"] = harness_hash()
    if suite is not None:
        data["suite_type"] = getattr(suite, "type", "")
        data["lenient"] = bool(getattr(suite, "lenient", False))
        data["recalculate"] = bool(getattr(suite, "recalculate", False))
    return data


def fingerprint_hash(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def suite_name_of(config: Config, suite: str | None = None) -> str:
    """The suite to evaluate on: ``--suite``, else ``[rollout] suite``, else the only one."""
    if suite:
        return suite
    if config.rollout.suite:
        return config.rollout.suite
    if len(config.suites) == 1:
        return next(iter(config.suites))
    have = ", ".join(sorted(config.suites)) or "none"
    raise ConfigError(
        f"which task suite? t2s.toml configures: {have}",
        hint="set [rollout] suite in t2s.toml, or pass --suite NAME",
    )


def make_context(
    store: GitStore,
    config: Config,
    *,
    split: str | None = None,
    seeds: int | None = None,
    suite: str | None = None,
    skill_dir: str | None = None,
    rev_for_skill: str = "HEAD",
    unsafe_no_sandbox: bool | None = None,
) -> EvalContext:
    """Load the suite and resolve the agent settings once for a series of evaluations."""

    split = split or config.gate.split or config.rollout.heldout_split
    seeds = seeds if seeds is not None else config.gate.seeds
    if seeds < 1:
        raise UsageError("--seeds must be at least 1")
    name = suite_name_of(config, suite)
    loaded = load_suite(name, config, base_dir=store.root)
    task_ids = loaded.task_ids(split)
    if not task_ids:
        raise UsageError(f"split {split!r} of suite {name!r} has no tasks")
    role = resolve_roles(config, roles=("agent",))["agent"]
    agent = agent_fingerprint(config, role, loaded)
    if skill_dir is None:
        skill_dir = skill_dir_of(store, config, rev_for_skill)
    return EvalContext(
        store=store,
        config=config,
        suite=loaded,
        suite_name=name,
        split=split,
        seeds=seeds,
        skill_dir=skill_dir,
        task_ids=list(task_ids),
        suite_hash=loaded.content_hash(split),
        agent=agent,
        agent_hash=fingerprint_hash(agent),
        agent_role=role,
        unsafe_no_sandbox=unsafe_no_sandbox,
    )
