"""Which node of a validated merge tree becomes the candidate, and why (``t2s select``).

The merge scheduler already moves ``t2s/<run>/candidate`` to the selected node: the
root if it passed validation, else the best input carried up in its place (and so on
down). This module reads the run's merge reports back and explains that choice, node
by node: its val score, verdict, support and size.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from t2s.consolidation.models import MergeReport
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record.lessons import MERGES_DIR
from t2s.record.refs import candidate_branch
from t2s.record.runs import RunRecord, parse_record


class NodeScore(BaseModel):
    """One merge node of the tree as ``t2s select`` lists it."""

    name: str
    level: int
    commit: str | None
    status: str
    val_score: float | None = None
    verdict: str = ""
    best_input: float | None = None
    #: Distinct trajectories behind the node's lessons, and its size (lessons, diff lines).
    support: int = 0
    lessons: int = 0
    diff_lines: int = 0


class Selection(BaseModel):
    """The evaluated nodes of a run and the candidate chosen among them."""

    run: str
    split: str = ""
    nodes: list[NodeScore] = Field(default_factory=list)
    candidate: str | None = None
    #: The node (merge name or input label) the candidate is, and why it was chosen.
    selected: str = ""
    reason: str = ""


def _diff_lines(diff: str) -> int:
    return sum(1 for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---"))


def read_merge_reports(record: RunRecord) -> list[MergeReport]:
    """The run's parallel merge reports, by level then group."""
    reports = [
        parse_record(MergeReport, raw, f"{path} of the run record")
        for path, raw in record.read_folder(MERGES_DIR).items()
        if path.rsplit("/", 1)[-1].startswith("L")
    ]
    return sorted(reports, key=lambda r: (r.level, r.group))


def select_candidate(store: GitStore, run: str) -> Selection:
    """List every node of run ``run``'s merge tree with its val score and say which one
    the candidate is and why (see the module doc)."""
    record = RunRecord(store, run)
    reports = read_merge_reports(record)
    if not reports:
        raise UsageError(f"run {run!r} has no merge tree", hint=f"run `t2s merge --run {run}` first")
    selection = Selection(run=run, candidate=store.rev_parse(candidate_branch(run)))
    for report in reports:
        validation = report.validation
        selection.nodes.append(
            NodeScore(
                name=report.name,
                level=report.level,
                commit=report.commit,
                status=report.status,
                val_score=validation.score if validation else None,
                verdict=validation.verdict if validation else ("failed" if report.status == "failed" else ""),
                best_input=validation.best_input if validation else None,
                support=report.support,
                lessons=len(report.lessons),
                diff_lines=_diff_lines(report.diff),
            )
        )
        if validation is not None:
            selection.split = validation.split
    selection.selected, selection.reason = _why(reports, selection.candidate)
    return selection


def _why(reports: list[MergeReport], candidate: str | None) -> tuple[str, str]:
    """The candidate's node and the reason it was chosen."""
    if candidate is None:
        return "", "the run has no candidate yet (the merge did not finish)"
    by_commit = {r.commit: r for r in reports if r.commit}
    top = max(r.level for r in reports)
    chosen = by_commit.get(candidate)
    rejected = [r for r in reports if r.validation is not None and r.validation.rejected]
    if chosen is not None and chosen.level == top:
        if chosen.validation is None:
            return chosen.name, f"{chosen.name} is the root of the merge tree (not validated)"
        return chosen.name, f"{chosen.name} is the root and {chosen.validation.describe()}"
    # The root was rejected: the candidate is what it carried up in its place.
    for report in sorted(rejected, key=lambda r: -r.level):
        validation = report.validation
        assert validation is not None
        carried = next((i for i in report.inputs if i["label"] == validation.best_input_label), None)
        if carried is not None and carried["commit"] == candidate:
            return carried["label"], (
                f"{report.name} was {validation.describe()}; its best input {carried['label']} went up in its place"
            )
    name = chosen.name if chosen is not None else candidate[:12]
    return name, f"the candidate ref points at {name}"
