"""t2s.releases.changelog."""

from __future__ import annotations

import re
from typing import Any

from t2s.gitstore.store import GitStore
from t2s.record.describe import _run_json, _trailer, branches_at


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
    from t2s.evaluation.evaluate import run_of

    run = run_of(store, candidate)
    if run:
        groups = [g for g in [_trailer(store.trailers(candidate), "T2S-Merge-Group")] if g]
        for branch in branches_at(store, candidate):
            m = re.match(rf"^t2s/{re.escape(run)}/merge/(.+)$", branch)
            if m:
                groups.append(m[1])
        for group in dict.fromkeys(groups):
            report = _run_json(store, run, f"merges/{group}.json")
            lessons = report.get("lessons") if isinstance(report, dict) else None
            if isinstance(lessons, list) and lessons:
                return [_lesson_entry(lesson, "merge") for lesson in lessons if isinstance(lesson, dict)]
        entries = []
        from t2s.record.runs import RunRecord

        record = RunRecord(store, run)
        for path in record.list("patches") if record.exists() else []:
            data = _run_json(store, run, path)
            if isinstance(data, dict) and data.get("status") == "accepted":
                for lesson in data.get("lessons") or []:
                    if isinstance(lesson, dict):
                        entries.append(_lesson_entry(lesson, f"patch {data.get('patch', '')}".strip()))
        if entries:
            return entries
    revs = store.run("rev-list", "--no-merges", "--reverse", candidate, *([f"^{previous}"] if previous else [])).split()
    entries = []
    for rev in revs[-200:]:
        message = store.commit_message(rev)
        trailers = store.trailers(rev)
        entries.append({
            "text": message.splitlines()[0] if message else rev[:12],
            "support": _support_count(_trailer(trailers, "T2S-Support")),
            "task": _trailer(trailers, "T2S-Task"),
            "source": rev[:12],
        })
    return entries


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
