"""A real run keeps its estimate next to its ledger: ``estimates/<phase>.json`` in the
run record, added up over resumed invocations like the ledger itself, so ``t2s report``
and the stage's closing table can show estimate against actual. A shard keeps the
estimate of its part in its own part of the run; collect adds them up."""

from __future__ import annotations

from typing import Any

from t2s.estimates.model import Estimate, RoleEstimate
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunRecord

#: The numbers of a row that add up across invocations.
_SUMMED = ("items", "calls", "input_tokens", "output_tokens", "usd", "wall_s")


def estimate_path(phase: str) -> str:
    return f"estimates/{phase}.json"


def record_estimate(store: GitStore, run: str, phase: str, estimate: Estimate, *, shard: str | None = None) -> None:
    """Add ``estimate`` to what earlier invocations of ``phase`` in ``run`` estimated;
    with ``shard`` (``<K>-of-<N>``), in that shard's own part of the run, where collect
    finds it (the shards' parts add up to the estimate of the whole stage)."""
    record = RunRecord(store, run)
    if shard is not None:
        record = record.shard_record(phase, shard)
    if not record.exists():
        return
    previous = record.read_json(estimate_path(phase)) or {}
    rows = {r["role"]: RoleEstimate.model_validate(r) for r in previous.get("rows", [])}
    for row in estimate.rows:
        if row.role in rows:
            old = rows[row.role]
            rows[row.role] = old.model_copy(update={k: getattr(old, k) + getattr(row, k) for k in _SUMMED})
        else:
            rows[row.role] = row.model_copy(update={"stage": phase})
    combined = Estimate(rows=list(rows.values()), notes=estimate.notes)
    record.write({estimate_path(phase): combined.to_json()}, f"t2s run {run}: {phase} estimate")


def estimate_vs_actual(store: GitStore, run: str, phase: str) -> list[dict[str, Any]]:
    """Per role: the recorded estimate and the ledger's actual calls, tokens and USD."""
    record = RunRecord(store, run)
    if not record.exists():
        return []
    estimate = record.read_json(estimate_path(phase)) or {}
    ledger = record.read_json(f"ledger/{phase}.json") or {}
    actual = {r.get("role"): r for r in ledger.get("by_role", [])}
    out = []
    for row in estimate.get("rows", []):
        real = actual.get(row["role"]) or {}
        out.append(
            {
                "role": row["role"],
                "estimated_calls": row["calls"],
                "calls": int(real.get("calls", 0)) + int(real.get("cached", 0)),
                "estimated_tokens": row["input_tokens"] + row["output_tokens"],
                "tokens": int(real.get("total_tokens", 0)),
                "estimated_usd": row["usd"],
                "usd": float(real.get("cost_usd", 0.0)),
            }
        )
    return out
