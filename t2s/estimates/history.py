"""What earlier runs in this repository spent, per role and model: the basis of an
estimate's turns and output tokens (the run records' trajectories and ledgers).

Only runs whose manifest names the *same model* for the role count, newest first, at
most :data:`RECENT_RUNS` of them. Where there are none, the documented defaults of
:data:`DEFAULTS` are used, and the estimate says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from statistics import mean
from typing import Any

from t2s.errors import T2SError
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunRecord, list_runs

#: How many of the newest matching runs an estimate learns from.
RECENT_RUNS = 5

#: Per role, when no earlier run used the model: calls per work item (an agent episode,
#: an analysis, a merge), output tokens per call, how many input tokens each later call
#: adds to the conversation (the model's reply and the tool's answer), seconds per call.
DEFAULTS: dict[str, dict[str, float]] = {
    "agent": {"calls": 4, "output": 250, "growth": 450, "seconds": 6.0},
    "analyst": {"calls": 6, "output": 500, "growth": 700, "seconds": 10.0},
    "analyst-single": {"calls": 1, "output": 900, "growth": 0, "seconds": 15.0},
    "merger": {"calls": 1.2, "output": 1200, "growth": 1500, "seconds": 20.0},
}
#: With no history: the share of trajectories that pass, and of analyses giving a patch.
DEFAULT_PASS_RATE = 0.5
DEFAULT_PATCH_RATE = 0.8


@dataclass
class Basis:
    """Per work item of one role: calls, output tokens per call, the input tokens the
    conversation adds beyond ``calls x`` its opening prompt, seconds per item."""

    calls: float
    output_per_call: float
    extra_input: float
    seconds: float
    source: str

    @classmethod
    def default(cls, kind: str) -> Basis:
        d = DEFAULTS[kind]
        calls = d["calls"]
        extra = d["growth"] * calls * (calls - 1) / 2  # call k carries the k-1 earlier exchanges
        return cls(
            calls, d["output"], extra, d["seconds"] * calls, f"defaults ({kind}): no earlier run used this model"
        )


def runs_with(store: GitStore, role: str, model: str) -> list[RunRecord]:
    """The newest :data:`RECENT_RUNS` run records whose ``role`` used ``model``."""
    found: list[tuple[str, RunRecord]] = []
    for name in list_runs(store):
        record = RunRecord(store, name)
        try:
            manifest = record.manifest()
        except T2SError:
            continue
        if (manifest.models.get(role) or {}).get("model") == model:
            found.append((manifest.created_at, record))
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [record for _, record in found[:RECENT_RUNS]]


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    return content if isinstance(content, str) else json.dumps(content or "")


def agent_basis(store: GitStore, model: str, count) -> Basis:
    """From earlier trajectories of ``model`` (finished ones; errored episodes say little)."""
    samples = []
    runs = runs_with(store, "agent", model)
    for record in runs:
        for raw in record.read_folder("trajectories").values():
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            usage, messages = data.get("usage") or {}, data.get("messages") or []
            turns = int(data.get("turns") or 0)
            if data.get("verdict") == "errored" or turns < 1 or len(messages) < 2:
                continue
            opening = sum(count(_content(m)) for m in messages[:2])
            samples.append(
                (
                    turns,
                    usage.get("completion_tokens", 0) / turns,
                    usage.get("prompt_tokens", 0) - turns * opening,
                    float((data.get("timings") or {}).get("wall_s") or 0.0),
                )
            )
    if not samples:
        return Basis.default("agent")
    return Basis(
        mean(s[0] for s in samples),
        mean(s[1] for s in samples),
        max(0.0, mean(s[2] for s in samples)),
        mean(s[3] for s in samples),
        f"history: {len(samples)} trajectories of {model} in {len(runs)} run(s)",
    )


def rates(store: GitStore, model: str) -> tuple[float, float, str]:
    """The share of trajectories that passed and of analyses that gave a patch branch,
    in earlier runs of the analyst ``model``; defaults where there are none."""
    passed = total = analyses = patches = 0
    for record in runs_with(store, "analyst", model):
        for raw in record.read_folder("trajectories").values():
            try:
                verdict = json.loads(raw).get("verdict")
            except ValueError:
                continue
            total += verdict in ("passed", "failed")
            passed += verdict == "passed"
        for raw in record.read_folder("patches").values():
            try:
                status = json.loads(raw).get("status")
            except ValueError:
                continue
            analyses += 1
            patches += status == "accepted"
    pass_rate = passed / total if total else DEFAULT_PASS_RATE
    patch_rate = patches / analyses if analyses else DEFAULT_PATCH_RATE
    source = "history" if total and analyses else "defaults"
    return pass_rate, patch_rate, source
