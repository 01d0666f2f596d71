"""Evaluations `t2s bisect` spends to find the one breaking patch among N.

    python bench/bisect_cost.py [--sizes 16,64,256] [--fan-in 4]

For each N a skill repository is built with a run of N patch commits on S0 (exactly
one adds a line that makes the scripted agent fail a held-out task) and octopus
merges of ``fan-in`` level by level up to the candidate, as `t2s merge` lays them out.
The agent is the scripted one from the tests (instant model answers; the sandbox
really runs its openpyxl code on a 2-task held-out split). Then, in this order:

- ``gate``: `t2s gate candidate --baseline S0` (evaluates both endpoints: 2);
- ``cache on``: `t2s bisect` right after the gate — the endpoints come from the notes,
  each bisect step evaluates a skill tree nobody evaluated before;
- ``again``: the same bisect once more — every step is in the notes;
- ``cache off``: `t2s bisect --no-cache` — endpoints and every step run the agent;
- ``linear``: what evaluating every commit between S0 and the candidate would cost.

The step count depends on which patch breaks (sibling patches under an octopus merge
can only be tested one by one), so a second table runs `git bisect run` with a plain
predicate (no agent: "does SKILL.md at BISECT_HEAD contain the breaking line") for
every breaking position (N = 16) or 16 spread-out positions, and reports min / mean /
max steps: what bisect costs in agent evaluations with a cold cache.

Columns count agent evaluations (a whole split run each), measured from the scripted
server's request log (2 model turns per task), not from what t2s reports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from t2s.testing import ScriptedServer  # noqa: E402
from tests.test_bisect import build_run  # noqa: E402
from tests.test_eval_support import agent_calls, make_repo  # noqa: E402

HELDOUT = ("easy1", "easy2")
CALLS_PER_EVAL = 2 * len(HELDOUT)


def t2s(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "t2s", *args], capture_output=True, text=True, cwd=ROOT)


def measure(n: int, fan_in: int) -> dict:
    with ScriptedServer() as srv, tempfile.TemporaryDirectory(prefix="t2s-bench-") as tmp:
        store = make_repo(Path(tmp), srv, heldout=HELDOUT)
        breaking = (2 * n) // 3 + 1
        s0, cand, patches = build_run(store, n=n, breaking=breaking, fan_in=fan_in)
        commits = len(store.rev_list(cand, [s0]))
        repo = str(store.root)
        row = {"N": n, "commits": commits}

        def evals_during(*args: str) -> tuple[int, dict | None, float]:
            before = agent_calls(srv)
            t0 = time.perf_counter()
            proc = t2s(*args)
            wall = time.perf_counter() - t0
            data = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else None
            if proc.returncode not in (0, 1):
                raise SystemExit(f"t2s {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
            return (agent_calls(srv) - before) // CALLS_PER_EVAL, data, wall

        row["gate"], _, _ = evals_during("gate", cand, "--baseline", s0, "-C", repo, "--json")
        bisect = ["bisect", "--good", s0, "--bad", cand, "-C", repo, "--json"]
        row["cache_on"], data, row["wall_on_s"] = evals_during(*bisect)
        assert data and data["first_bad"] == patches[breaking], data
        row["steps"] = len(data["steps"])
        row["again"], data, row["wall_again_s"] = evals_during(*bisect)
        assert data and data["first_bad"] == patches[breaking]
        row["cache_off"], data, row["wall_off_s"] = evals_during(*bisect, "--no-cache")
        assert data and data["first_bad"] == patches[breaking]
        row["linear"] = commits
        return row


def step_distribution(n: int, fan_in: int, positions: int = 16) -> tuple[int, float, int]:
    from t2s.gitstore.store import GitStore
    from tests.test_eval_support import SKILL_DIR, skill_text

    picks = sorted({1 + (k * n) // positions for k in range(positions)})
    counts = []
    for breaking in picks:
        with tempfile.TemporaryDirectory(prefix="t2s-bench-") as tmp:
            subprocess.run(["git", "init", "-q", "-b", "main", tmp], check=True)
            store = GitStore.discover(tmp)
            s0 = store.commit(store.build_tree(None, {f"{SKILL_DIR}/SKILL.md": skill_text()}), [], "S0")
            store.update_ref("refs/heads/main", s0)
            heads, lines_of = [], {}
            for i in range(1, n + 1):
                lines = [f"Tip {i}"] + (["BREAKING easy1"] if i == breaking else [])
                sha = store.commit(store.build_tree(s0, {f"{SKILL_DIR}/SKILL.md": skill_text(lines)}), [s0], f"p{i}")
                heads.append(sha)
                lines_of[sha] = lines
            while len(heads) > 1:
                merged = []
                for g in range(0, len(heads), fan_in):
                    group = heads[g : g + fan_in]
                    if len(group) == 1:
                        merged.append(group[0])
                        continue
                    lines = [x for h in group for x in lines_of[h]]
                    sha = store.commit(
                        store.build_tree(s0, {f"{SKILL_DIR}/SKILL.md": skill_text(lines)}), group, "merge"
                    )
                    lines_of[sha] = lines
                    merged.append(sha)
                heads = merged
            count = Path(tmp) / ".git" / "steps"
            wt = store.worktree_add(Path(tmp) / ".git" / "wt", heads[0])
            predicate = f"echo . >> {count}; ! git show BISECT_HEAD:{SKILL_DIR}/SKILL.md | grep -q BREAKING"
            try:
                first_bad, _ = wt.bisect_run([s0], heads[0], ["sh", "-c", predicate])
            finally:
                store.worktree_remove(Path(tmp) / ".git" / "wt")
            assert first_bad and "BREAKING easy1" in lines_of[first_bad] and store.parents(first_bad) == [s0]
            counts.append(len(count.read_text().splitlines()))
    return min(counts), sum(counts) / len(counts), max(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="16,64,256")
    parser.add_argument("--fan-in", type=int, default=4)
    parser.add_argument("--skip-agent", action="store_true", help="Only the step distribution table.")
    args = parser.parse_args()
    for key, value in (
        ("GIT_AUTHOR_NAME", "bench"),
        ("GIT_AUTHOR_EMAIL", "bench@localhost"),
        ("GIT_COMMITTER_NAME", "bench"),
        ("GIT_COMMITTER_EMAIL", "bench@localhost"),
    ):
        os.environ.setdefault(key, value)
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"git bisect steps over breaking positions (fan-in {args.fan_in}; = agent evaluations, cold cache)")
    print(f"{'N':>5} {'positions':>9} {'min':>4} {'mean':>5} {'max':>4}")
    for n in sizes:
        lo, mean, hi = step_distribution(n, args.fan_in)
        print(f"{n:>5} {min(n, 16):>9} {lo:>4} {mean:>5.2f} {hi:>4}", flush=True)
    if args.skip_agent:
        return
    print()
    header = f"{'N':>5} {'commits':>7} {'steps':>5} | {'gate':>4} {'cache on':>8} {'again':>5} {'cache off':>9} {'linear':>6} | {'wall on':>7} {'again':>6} {'off':>6}"
    print(f"agent evaluations per bisect (fan-in {args.fan_in}, {len(HELDOUT)} held-out tasks, scripted agent)")
    print(header)
    print("-" * len(header))
    for n in sizes:
        r = measure(n, args.fan_in)
        print(
            f"{r['N']:>5} {r['commits']:>7} {r['steps']:>5} | {r['gate']:>4} {r['cache_on']:>8} {r['again']:>5} {r['cache_off']:>9} {r['linear']:>6} | "
            f"{r['wall_on_s']:>6.1f}s {r['wall_again_s']:>5.1f}s {r['wall_off_s']:>5.1f}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
