"""What a merge starts from: the run's accepted patch branches, with their lessons, minus
the ones a reviewer rejected; and a finished merge as an input of the next level.
"""

from __future__ import annotations

from pydantic import ValidationError

from t2s.consolidation.models import MergeInput, MergeReport
from t2s.errors import UsageError
from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.lessons import Lesson, PatchRecord
from t2s.record.notes import REVIEW_NOTES, ReviewNote
from t2s.record.provenance import Provenance
from t2s.record.runs import RunRecord, parse_record


def no_inputs_hint(record: RunRecord) -> str:
    """Why a run has nothing to merge, from its stages: errored work names its cause."""
    stages = record.manifest().stages
    for stage, noun in (("analyze", "analyses"), ("rollout", "trajectories")):
        summary = stages[stage].summary if stage in stages else {}
        if summary.get("errored"):
            total = summary.get("selected", summary.get("total", 0))
            cause = (summary.get("errors") or [{}])[0].get("phrase", "")
            return (
                f"{summary['errored']} of {total} {noun} errored{': ' + cause if cause else ''}; "
                f"run `t2s {stage} --run {record.run}` again once that is fixed"
            )
    if "analyze" not in stages:
        return "run `t2s analyze` first"
    return f"no analysis was accepted: see `t2s review --run {record.run}`"


def load_patch_inputs(
    store: GitStore, record: RunRecord, s0: str, skill_dir: str
) -> tuple[list[MergeInput], dict[str, str]]:
    """The run's accepted patch branches as merge inputs, and the ones a reviewer rejected."""
    prefix = refs.run_branches(record.run) + "patch/"
    inputs: list[MergeInput] = []
    excluded: dict[str, str] = {}
    reviewed = store.list_notes(REVIEW_NOTES)
    records = record.read_folder("patches")
    for ref, commit in store.refs(prefix).items():
        number = ref[len(prefix) :]
        if commit in reviewed:
            try:
                verdict = ReviewNote.model_validate_json(store.read_note(REVIEW_NOTES, commit) or "")
            except ValidationError:  # merging a patch whose verdict cannot be read could merge a rejected one
                raise UsageError(
                    f"the review note on patch {number} ({commit[:12]}) is not a t2s verdict",
                    hint=f"record the verdict again: `t2s approve {refs.short(ref)}` or `t2s reject ... -m REASON`",
                ) from None
            if verdict.verdict == "reject":
                excluded[number] = verdict.comment or "rejected in review"
                continue
        raw = records.get(f"patches/{number}.json")
        patch = parse_record(PatchRecord, raw, f"{record.ref}:patches/{number}.json") if raw is not None else None
        lessons = _patch_lessons(store, patch, number, commit)
        # The recorded diff is the one that was validated and committed; recompute
        # only for branches without a record (or whose commit moved since).
        fresh = patch is not None and patch.commit == commit and patch.diff
        diff = patch.diff if patch is not None and fresh else store.diff(s0, commit, skill_dir)
        inputs.append(MergeInput(ref=ref, commit=commit, label=f"patch {number}", lessons=lessons, diff=diff))
    return inputs, excluded


def _patch_lessons(store: GitStore, patch: PatchRecord | None, number: str, commit: str) -> list[Lesson]:
    if patch is not None and patch.lessons:
        return [
            lesson.model_copy(
                update={
                    "id": lesson.id or f"p{number}.{index}",
                    "support": lesson.support or [patch.trajectory],
                }
            )
            for index, lesson in enumerate(patch.lessons, start=1)
        ]
    # A branch without a record (made by hand or imported): its subject is the lesson.
    message = store.commit_message(commit)
    subject = message.splitlines()[0]
    trajectory = Provenance.of(message).trajectory or f"patch-{number}"
    return [Lesson(id=f"p{number}.1", text=subject, support=[trajectory])]


def merge_input(report: MergeReport) -> MergeInput:
    """A finished merge as an input of the next level (its diff against S0 is recorded)."""
    return MergeInput(
        ref=report.branch or "",
        commit=report.commit or "",
        label=f"merge {report.name}",
        lessons=report.lessons,
        diff=report.diff,
    )
