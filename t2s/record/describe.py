"""t2s.record.describe."""

from __future__ import annotations

from typing import Any, Sequence

from t2s.errors import T2SError
from t2s.gitstore.store import GitStore


def _run_json(store: GitStore, run: str, path: str) -> Any:
    from t2s.record.runs import RunRecord

    try:
        record = RunRecord(store, run)
        return record.read_json(path) if record.exists() else None
    except (T2SError, ValueError):
        return None


def branches_at(store: GitStore, commit: str) -> list[str]:
    """t2s branch names (``t2s/<run>/...``) that point at ``commit``."""
    return [ref[len("refs/heads/"):] for ref, sha in store.refs("refs/heads/t2s/").items() if sha == commit]


def _trailer(trailers: Sequence[tuple[str, str]], key: str) -> str | None:
    for k, v in trailers:
        if k == key:
            return v
    return None
