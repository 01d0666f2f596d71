"""Does the validation gate keep a harmful merge out of the candidate, and what does it cost?

On the offline demo suite (generated spreadsheet tasks, real sandbox and checker) with
the simulated agent, analysts and merger of :mod:`t2s.demo.simulation` over the
scripted OpenAI-compatible server: one rollout of the evolve split and its analysis,
then RUNS seeded merges of the same patches. In each, the seed draws a fan-in (2, 3 or
5) and one node of that merge tree, where the simulated merger slips in a plausible
but wrong rule the simulated agent obeys (:data:`t2s.testing.simulated.HARMFUL_LESSON`).
Every seed merges twice, with validation off and on (``--rebuild`` sets the previous
tree aside), and the final candidate is evaluated on the held-out split.

Printed: the mean held-out score of the final candidate with validation on and off;
in how many runs the harmful lesson reached the candidate; and the agent episodes
validation cost: per run with no note cache (S0 plus every validated node, times the
val tasks), and what it actually ran over all runs (evaluations of a skill tree that
was evaluated before come from the eval notes), against the rollout's own episodes.

Targets (issue 15): the harmful lesson in the candidate in 0 of 20 runs with
validation, in most runs without.

    python bench/validated_merge.py [--runs 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import t2s
from t2s.cli import main
from t2s.consolidation.plan import _plan_levels
from t2s.demo import _configure
from t2s.demo.simulation import agent_responder, analyst_responder
from t2s.demo.tasks import VAL, write_suite
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunRecord
from t2s.skill.repo import init_skill_repo
from t2s.testing.server import ChatRequest, ScriptedServer
from t2s.testing.simulated import HARMFUL_TRIGGER, harmful_merger_responder

RUN = "b1"


def _cli(*args: str) -> None:
    main.main(list(args), prog_name="t2s", standalone_mode=False)


def _has_harm(store: GitStore, s0: str, commit: str) -> bool:
    """Whether the harmful rule is anywhere in the candidate's skill (SKILL.md or a reference)."""
    return HARMFUL_TRIGGER in store.diff(s0, commit, "skills/xlsx")


def main_bench(runs: int, seed: int) -> None:
    target = {"node": ""}

    def merger(request: ChatRequest):
        return harmful_merger_responder(target["node"])(request)

    work = Path(tempfile.mkdtemp(prefix="t2s-bench-valmerge-"))
    write_suite(work / "tasks")
    repo_dir = work / "skills"
    init_skill_repo(repo_dir, seed="xlsx", install_git_hooks=False)
    _configure(repo_dir)
    store = GitStore.discover(repo_dir)
    store.commit_paths(["t2s.toml"], "Configure the demo suite")
    started = time.perf_counter()
    with ScriptedServer(models=["sim"]) as server:
        server.on(agent_responder, role="agent")
        server.on(analyst_responder, role="analyst")
        server.on(merger, role="merger")
        os.environ.update(
            {
                "T2S_BASE_URL": server.base_url,
                "T2S_MODEL": "sim",
                "T2S_API_KEY_ENV": "T2S_BENCH_KEY",
                "T2S_CACHE_MODE": "off",
            }
        )
        _cli("rollout", "-C", str(repo_dir), "--split", "evolve", "--run", RUN)
        _cli("analyze", "-C", str(repo_dir), "--run", RUN)
        repo = t2s.open_repo(repo_dir)
        patches = len(store.refs(f"refs/heads/t2s/{RUN}/patch/"))
        manifest = RunRecord(store, RUN).manifest()
        rollout_episodes = manifest.stages["rollout"].summary.get("total", 0)
        val_tasks = sum(count for _, count in VAL)
        rng = random.Random(seed)
        results: dict[bool, list[float]] = {True: [], False: []}
        harmed = {True: 0, False: 0}
        fresh_cost: list[int] = []
        ran = 0
        for index in range(runs):
            fan_in = rng.choice([2, 3, 5])
            plan = _plan_levels(patches, fan_in)
            nodes = [f"L{lv}-{g:02d}" for lv, groups in enumerate(plan, start=1) for g in range(1, len(groups) + 1)]
            target["node"] = rng.choice(nodes)
            for validate in (False, True):
                summary = t2s.merge(repo, RUN, fan_in=fan_in, rebuild=True, validate=validate)
                candidate = summary.candidate or ""
                score = t2s.evaluate(repo, candidate, split="heldout").record.score
                results[validate].append(score)
                harmed[validate] += _has_harm(store, manifest.s0, candidate)
                if validate:
                    fresh_cost.append((len(summary.val_scores) + 1) * val_tasks)
                    ran += summary.val_episodes
            print(
                f"run {index + 1:2d}: fan-in {fan_in}, harmful merge at {target['node']}: "
                f"held-out off {results[False][-1]:.3f} on {results[True][-1]:.3f}",
                flush=True,
            )
    wall = time.perf_counter() - started
    print()
    print(f"{runs} seeded runs on the demo suite ({patches} patches from {rollout_episodes} rollout episodes)")
    print(
        f"held-out score of the final candidate: validation off {statistics.mean(results[False]):.3f}, "
        f"on {statistics.mean(results[True]):.3f}"
    )
    print(
        f"harmful lesson in the candidate: {harmed[False]}/{runs} runs without validation, {harmed[True]}/{runs} with"
    )
    print(
        f"validation cost per run with no note cache: {statistics.mean(fresh_cost):.1f} agent episodes "
        f"(min {min(fresh_cost)}, max {max(fresh_cost)}) vs the rollout's {rollout_episodes}; "
        f"actually run over all {runs} runs: {ran} (the eval notes cache repeated trees)"
    )
    print(f"wall time {wall:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main_bench(args.runs, args.seed)
