"""The changelog of a release: the lessons it adds, with their support."""

from __future__ import annotations

from typing import Any

from t2s.gitstore.store import GitStore
from t2s.record import refs
from t2s.record.describe import describe_commit
from t2s.record.lessons import MERGES_DIR, PATCHES_DIR
from t2s.record.provenance import Provenance
from t2s.record.runs import RunRecord


def _support_count(value: Any) -> int | None:
    if isinstance(value, list):
        return len(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def changelog(store: GitStore, previous: str | None, candidate: str) -> list[dict]:
    """The lessons a release adds, with their support, best source first:

    1. the run's merge report for the candidate (``merges/<L-group>.json`` with a
       ``lessons`` list), found through the branch that points at the candidate;
    2. the accepted patches' lessons (``patches/*.json``) of the run;
    3. the subjects of the commits between the previous release and the candidate,
       with their ``T2S-Support`` / ``T2S-Task`` trailers.
    """
    desc = describe_commit(store, store.resolve(candidate))
    run = desc.run
    if run:
        for report in _merge_reports(desc):
            lessons = report.get("lessons")
            if isinstance(lessons, list) and lessons:
                return [_lesson_entry(lesson, "merge") for lesson in lessons if isinstance(lesson, dict)]
        record = RunRecord(store, run)
        entries = []
        for path in record.list(PATCHES_DIR) if record.exists() else []:
            data = desc.run_json(path)
            if isinstance(data, dict) and data.get("status") == "accepted":
                for lesson in data.get("lessons") or []:
                    if isinstance(lesson, dict):
                        entries.append(_lesson_entry(lesson, f"patch {data.get('patch', '')}".strip()))
        if entries:
            return entries
    entries = []
    for rev in store.rev_list(candidate, [previous] if previous else [], no_merges=True, reverse=True)[-200:]:
        message = store.commit_message(rev)
        prov = Provenance.of(message)
        entries.append(
            {
                "text": message.splitlines()[0] if message else rev[:12],
                "support": prov.support,
                "task": prov.task,
                "source": rev[:12],
            }
        )
    return entries


def _merge_reports(desc) -> list[dict]:
    """The merge reports that can describe the candidate: its own trailer's group,
    then the merge branches of its run that point at it."""
    names = [desc.merge] if desc.merge else []
    for branch in desc.branches:
        parsed = refs.parse_merge_branch(branch)
        if parsed and parsed[0] == desc.run:
            names.append(parsed[1])
    reports = []
    for name in dict.fromkeys(names):
        report = desc.run_json(f"{MERGES_DIR}/{name}.json")
        if isinstance(report, dict):
            reports.append(report)
    return reports


def _lesson_entry(lesson: dict, source: str) -> dict:
    return {
        "text": str(lesson.get("text", "")).strip(),
        "support": _support_count(lesson.get("support")),
        "placement": lesson.get("placement") or None,
        "source": source,
    }


def changelog_markdown(entries: list[dict]) -> str:
    if not entries:
        return "- (no lessons recorded)"
    lines = []
    for e in entries:
        extra = []
        if e.get("support") is not None:
            extra.append(f"support {e['support']}")
        if e.get("task"):
            extra.append(f"task {e['task']}")
        if e.get("placement") == "reference":
            extra.append("in references/")
        text = " ".join(str(e.get("text", "")).split())
        lines.append(f"- {text}" + (f" ({', '.join(extra)})" if extra else ""))
    return "\n".join(lines)
