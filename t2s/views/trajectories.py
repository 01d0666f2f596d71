"""The trajectories of a run, before any analysis: ``t2s trajectories``, ``t2s show`` of
one trajectory, and the report's trajectories table. Works for rolled-out and imported runs."""

from __future__ import annotations

from collections import Counter
from html import escape

from pydantic import BaseModel

from t2s.agent.trajectory import TRAJECTORIES_DIR, Trajectory, load_trajectory, read_trajectories
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record.runs import RunRecord


class TrajectoryRow(BaseModel):
    id: str
    task: str
    case: int
    verdict: str
    turns: int
    steps: int
    tokens: int
    source: str
    model: str = ""
    #: The output workbook(s) kept under ``artifacts/<id>/``.
    outputs: list[str] = []
    #: t2s's own verdict of an imported output, when it was re-checked.
    t2s_check: str | None = None


class TrajectoryListing(BaseModel):
    run: str
    s0: str
    counts: dict[str, int]
    trajectories: list[TrajectoryRow]


def _record(store: GitStore, run: str) -> RunRecord:
    record = RunRecord(store, run)
    if not record.exists():
        raise UsageError(f"no run {run!r}", hint="`t2s log` lists the runs")
    return record


def row_of(traj: Trajectory) -> TrajectoryRow:
    check = traj.meta.get("t2s_check")
    return TrajectoryRow(
        id=traj.id,
        task=traj.task_id,
        case=traj.case,
        verdict=traj.verdict,
        turns=traj.turns or sum(1 for m in traj.messages if m.role == "assistant"),
        steps=len(traj.steps),
        tokens=traj.usage.total_tokens,
        source=traj.source,
        model=traj.model,
        outputs=list(traj.outputs),
        t2s_check=check.get("verdict") if isinstance(check, dict) else None,
    )


def list_trajectories(store: GitStore, run: str) -> TrajectoryListing:
    """Every trajectory of ``run`` (task, verdict, turns, tokens, source) and counts by verdict."""
    record = _record(store, run)
    rows = [row_of(t) for t in read_trajectories(record)]
    counts = Counter(r.verdict for r in rows)
    return TrajectoryListing(
        run=run,
        s0=record.manifest().s0,
        counts={"total": len(rows), **{k: counts.get(k, 0) for k in ("passed", "failed", "errored", "unlabelled")}},
        trajectories=rows,
    )


def trajectory_detail(store: GitStore, run: str, traj_id: str) -> Trajectory | None:
    """One trajectory of ``run`` by id, or None when the run has none of that id."""
    raw = _record(store, run).read(f"{TRAJECTORIES_DIR}/{traj_id}.json")
    if raw is None:
        return None
    return load_trajectory(raw, where=f"{TRAJECTORIES_DIR}/{traj_id}.json")


def trajectories_html(listing: TrajectoryListing, limit: int = 500) -> str:
    """The report's trajectories table: counts by verdict, then one row per trajectory."""
    c = listing.counts
    head = (
        f"<h3>Trajectories</h3><p>{c['total']} trajectories: {c['passed']} passed, {c['failed']} failed, "
        f"{c['errored']} errored, {c['unlabelled']} unlabelled</p>"
    )
    if not listing.trajectories:
        return head
    names = ["id", "task", "case", "verdict", "t2s check", "turns", "tokens", "output", "source"]
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(str(v))}</td>"
            for v in (
                r.id,
                r.task,
                r.case,
                r.verdict,
                r.t2s_check or "-",
                r.turns,
                r.tokens,
                ", ".join(r.outputs) or "-",
                r.source,
            )
        )
        + "</tr>"
        for r in listing.trajectories[:limit]
    )
    more = f"<p>({len(listing.trajectories) - limit} more: t2s trajectories --run {escape(listing.run)})</p>"
    return (
        head
        + '<table class="trajectories"><thead><tr>'
        + "".join(f"<th>{n}</th>" for n in names)
        + f"</tr></thead><tbody>{rows}</tbody></table>"
        + (more if len(listing.trajectories) > limit else "")
    )
