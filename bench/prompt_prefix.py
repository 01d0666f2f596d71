"""How much of each role's prompts a provider's prefix cache could serve, on a demo run.

    python bench/prompt_prefix.py [--dir DIR] [--json]

Runs the offline demo's loop (``t2s demo``'s scripted models, real everything else):
init, rollout of the evolve split, analyze with the agentic error analyst, merge, and
a second rollout analysed with the single-call error analyst. Every request the
scripted server received is rendered as a chat template would (tool specs, then the
messages in order; :mod:`t2s.testing.prefix`) and fed, in arrival order, to a model of
an automatic prefix cache (one per role). Per role it prints:

- ``input tok``: estimated prompt tokens of all calls (4 characters a token);
- ``shared``: tokens whose prefix an earlier call of the role already sent, i.e. what a
  prefix cache (vLLM, llama.cpp, hosted APIs' cached tokens) could serve, and its
  fraction of the input;
- ``1st-call static``: for the first call of each conversation (one per task or
  trajectory), the mean tokens it shares with earlier first calls, and that as a
  fraction of the first calls' input: the static part that comes first and is
  byte-identical across the run (later calls of one conversation share their own
  history anyway).

The figures are an upper bound (no eviction, no block rounding). The "before" columns
are this script's figures on the layout before the prompts were reordered for caching
(``BEFORE``, recorded at commit cfda321); ``--json`` prints the current figures only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import Console

import t2s.demo as demo
from t2s.testing.prefix import PrefixCache, estimate_tokens, prompt_text
from t2s.testing.server import ChatRequest, ScriptedServer

SERVERS: list[ScriptedServer] = []

#: (shared fraction, first calls' static fraction) per role, printed by this script at
#: commit cfda321, on the layout before the prompts were reordered for caching (S0
#: after the trajectory in the analysts' prompts, after the group header in the merger's).
BEFORE = {
    "agent": (0.905, 0.867),
    "analyst (agentic)": (0.832, 0.401),
    "analyst (single-call)": (0.296, 0.296),
    "analyst (success)": (0.243, 0.243),
    "merger": (0.198, 0.198),
}


class _RecordingServer(ScriptedServer):
    """The demo's server, kept so the bench can read its requests afterwards."""

    def __enter__(self) -> ScriptedServer:
        SERVERS.append(self)
        return super().__enter__()


class _PrefixDemo(demo.Demo):
    """The demo's model-calling steps, plus a run analysed by the single-call analyst."""

    def _steps(self) -> None:
        repo = str(self.repo)
        self.t2s("init", repo, "--seed", "xlsx")
        demo._configure(self.repo)
        demo.GitStore.discover(self.repo).commit_paths(["t2s.toml"], "Configure the demo task suite")
        self.t2s("rollout", "-C", repo, "--split", "evolve", "--run", demo.RUN)
        self.t2s("analyze", "-C", repo, "--run", demo.RUN, "--analyst", "agentic")
        self.t2s("merge", "-C", repo, "--run", demo.RUN)
        self.t2s("rollout", "-C", repo, "--split", "evolve", "--run", "single")
        self.t2s("analyze", "-C", repo, "--run", "single", "--analyst", "single-call")

    def _summary(self) -> None:
        pass


def group_of(request: ChatRequest) -> str:
    """The role, with the analyst's kind told apart by its system prompt."""
    role = request.role or "?"
    if role != "analyst":
        return role
    system = str((request.messages[0] if request.messages else {}).get("content") or "")
    if "success analyst" in system:
        return "analyst (success)"
    if "## Your workspace" in system:
        return "analyst (agentic)"
    return "analyst (single-call)"


def measure(requests: list[ChatRequest]) -> dict[str, dict[str, Any]]:
    caches: dict[str, PrefixCache] = defaultdict(PrefixCache)
    first_caches: dict[str, PrefixCache] = defaultdict(PrefixCache)
    rows: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "calls": 0,
            "input_tokens": 0,
            "shared_tokens": 0,
            "first_calls": 0,
            "first_tokens": 0,
            "first_static": 0,
        }
    )
    for request in requests:
        key = group_of(request)
        prompt = prompt_text(request.body)
        tokens = estimate_tokens(prompt)
        row = rows[key]
        row["calls"] += 1
        row["input_tokens"] += tokens
        row["shared_tokens"] += min(tokens, caches[key].lookup("", prompt) // 4)
        if not any(m.get("role") == "assistant" for m in request.messages):
            row["first_calls"] += 1
            row["first_tokens"] += tokens
            row["first_static"] += min(tokens, first_caches[key].lookup("", prompt) // 4)
    for row in rows.values():
        row["shared_fraction"] = round(row["shared_tokens"] / max(1, row["input_tokens"]), 3)
        row["first_static_mean"] = round(row["first_static"] / max(1, row["first_calls"]))
        row["first_static_fraction"] = round(row["first_static"] / max(1, row["first_tokens"]), 3)
    return dict(sorted(rows.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    demo.ScriptedServer = _RecordingServer  # type: ignore[misc]  # the bench's window into the demo
    with (
        tempfile.TemporaryDirectory(prefix="t2s-prefix-") as tmp,
        open(os.devnull, "w") as quiet,
        contextlib.redirect_stdout(quiet),  # the t2s commands' own tables and progress
        contextlib.redirect_stderr(quiet),
    ):
        _PrefixDemo(args.dir or Path(tmp), Console(file=quiet)).run()
    rows = measure([r for server in SERVERS for r in server.requests])
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(
        f"{'role':<22} {'calls':>5} {'input tok':>10} {'shared':>9} {'frac':>6} {'before':>7}   "
        f"{'1st calls':>9} {'1st-call static':>15} {'frac':>6} {'before':>7}"
    )
    for name, row in rows.items():
        before = BEFORE.get(name)
        shared_before, static_before = (f"{b:.1%}" for b in before) if before else ("-", "-")
        print(
            f"{name:<22} {row['calls']:>5} {row['input_tokens']:>10} {row['shared_tokens']:>9} "
            f"{row['shared_fraction']:>6.1%} {shared_before:>7}   {row['first_calls']:>9} "
            f"{row['first_static_mean']:>15} {row['first_static_fraction']:>6.1%} {static_before:>7}"
        )


if __name__ == "__main__":
    main()
