"""What the merge stage writes to git, and what an earlier run of it finished.

Each level lands in one transaction (its objects written as a pack first, then its
reports in the run record and its merge branches together), so a merge branch never
exists without its report. On resume, a merge an earlier run finished from the same
inputs is reused; one made from other inputs is an error that points at ``--rebuild``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from t2s.consolidation.models import MergeReport
from t2s.errors import UsageError
from t2s.gitstore.store import ZERO_SHA, GitStore, HeldObjects, RefUpdate
from t2s.record import refs
from t2s.record.lessons import MERGES_DIR
from t2s.record.refs import candidate_branch
from t2s.record.runs import RunRecord, parse_record


@dataclass
class _Finished:
    """The merge reports and branches a run had when merging started."""

    reports: dict[str, bytes]
    branches: dict[str, str]
    _parsed: dict[str, MergeReport] = field(default_factory=dict)

    def report(self, name: str) -> MergeReport | None:
        """The recorded report of merge ``name``, if an earlier run finished it."""
        if name not in self._parsed:
            raw = self.reports.get(f"{MERGES_DIR}/{name}.json")
            if raw is None:
                return None
            self._parsed[name] = parse_record(MergeReport, raw, f"{MERGES_DIR}/{name}.json of the run record")
        return self._parsed[name]

    def made_from_others(self, name: str, parents: list[str]) -> bool:
        report = self.report(name)
        return report is not None and [i["commit"] for i in report.inputs] != parents


def set_aside_merges(store: GitStore, record: RunRecord) -> str | None:
    """Set a run's merge tree aside so the run can be merged again (``--rebuild``).

    In one transaction: the merge branches and the candidate branch are deleted, the
    old candidate is kept at ``refs/t2s/superseded/<run>/<nnn>`` (so every old merge
    commit stays reachable), and the merge reports move to ``superseded/<nnn>/`` in
    the run record. Returns ``<nnn>``, or None when there was nothing to set aside.
    Only what t2s wrote is touched; the response cache makes unchanged groups free.
    """
    branches = store.refs(refs.run_branches(record.run) + "merge/")
    reports = {
        path: data for path, data in record.read_folder(MERGES_DIR).items() if path.rsplit("/", 1)[-1].startswith("L")
    }  # S*.json belong to the sequential baseline
    candidate_ref = candidate_branch(record.run)
    candidate = store.rev_parse(candidate_ref)
    if not branches and not reports and not candidate:
        return None
    keep_prefix = refs.superseded(record.run)
    taken = {ref[len(keep_prefix) :] for ref in store.refs(keep_prefix)}
    taken |= {path.split("/")[1] for path in record.list("superseded")}
    name = f"{max((int(n) for n in taken if n.isdigit()), default=0) + 1:03d}"
    updates = [RefUpdate(ref, ZERO_SHA, sha) for ref, sha in branches.items()]
    if candidate:
        updates += [RefUpdate(candidate_ref, ZERO_SHA, candidate), RefUpdate(keep_prefix + name, candidate, ZERO_SHA)]
    files: dict[str, bytes | None] = {path: None for path in reports}
    files.update({f"superseded/{name}/{path}": data for path, data in reports.items()})
    record.write(files, f"t2s merge {record.run}: merge tree set aside as superseded/{name}", refs=updates)
    return name


class MergeRecorder:
    """Writes a run's merges: levels, sequential steps and the candidate branch."""

    def __init__(self, store: GitStore, record: RunRecord, *, retry_failed: bool = False):
        self.store = store
        self.record = record
        self.retry_failed = retry_failed

    def finished(self) -> _Finished:
        """What an earlier run finished (this run's own merges are not looked up)."""
        return _Finished(
            self.record.read_folder(MERGES_DIR), self.store.refs(refs.run_branches(self.record.run) + "merge/")
        )

    async def record_after(
        self, previous: asyncio.Future | None, level: int, reports: list[MergeReport], held: HeldObjects
    ) -> None:
        """Record a level once the level before it is recorded (if that failed, so does this)."""
        if previous is not None:
            await previous
        await asyncio.to_thread(self.persist_level, level, reports, held)

    def persist_level(self, level: int, reports: list[MergeReport], held: HeldObjects) -> None:
        """Write a level's objects, then record its reports and create its merge
        branches in one transaction."""
        self.store.write_held(held)
        if not reports:
            return
        files = {f"{MERGES_DIR}/{r.name}.json": r for r in reports}
        updates = []
        for r in reports:
            if r.status == "merged":
                assert r.branch and r.commit, f"merge {r.name} is merged without a branch and commit"
                updates.append(RefUpdate(r.branch, r.commit, ZERO_SHA))
        merged = len(updates)
        self.record.write(
            files, f"t2s merge level {level}: {merged} merged, {len(reports) - merged} failed", refs=updates
        )

    def existing(self, name: str, ref: str, parents: list[str], finished: _Finished) -> MergeReport | None:
        """A merge an earlier run finished from exactly these parents, reused on resume."""
        report = finished.report(name)
        if report is None:
            if ref in finished.branches:
                raise UsageError(
                    f"{ref} exists but the run record has no report for it",
                    hint=f"`t2s merge --run {self.record.run} --rebuild` sets the old merge tree aside and merges again",
                )
            return None
        if finished.made_from_others(name, parents):
            raise UsageError(
                f"merge {name} of run {self.record.run!r} was made from other inputs",
                hint=(
                    f"the run's patches changed since it was merged (a review verdict?): "
                    f"`t2s merge --run {self.record.run} --rebuild` sets the old merge tree aside and merges again"
                ),
            )
        if report.status == "failed" and self.retry_failed:
            return None
        return report

    def move_candidate(self, commit: str) -> None:
        self.move_branch(candidate_branch(self.record.run), commit)

    def record_step(self, name: str, report: MergeReport) -> None:
        """Record one step of the sequential baseline (and move its branch if it merged)."""
        if report.branch and report.commit:
            self.move_branch(report.branch, report.commit)
        self.record.write({f"{MERGES_DIR}/{name}.json": report}, f"t2s sequential {name}: {report.status}")

    def move_branch(self, ref: str, commit: str) -> str:
        old = self.store.rev_parse(ref)
        if old != commit:
            self.store.update_refs([RefUpdate(ref, commit, old or ZERO_SHA)])
        return ref
