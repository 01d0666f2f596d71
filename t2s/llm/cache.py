"""The response cache of :mod:`t2s.llm.client`: SQLite (standard library), keyed on a hash.

The key is the SHA-256 of the canonical JSON of *every* request parameter the model
sees (model, messages, tools, tool_choice, temperature, max_tokens, seed, extra body,
response format...). It never includes the API key or the endpoint URL: the same
request to the same model name answers the same, wherever the server listens (so a
replay survives a port change). Values are the normalised answer, never headers.

Modes: ``off`` (no file is touched), ``read-write`` (hits are served, misses are
stored), ``replay`` (hits are served, a miss raises :class:`t2s.llm.client.CacheMiss`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

CACHE_MODES = ("off", "read-write", "replay")

#: Bump when the stored value format changes: old entries then simply miss.
KEY_VERSION = "t2s-llm-cache-v1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def request_key(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a request body (no key, no URL in it)."""
    canonical = json.dumps(
        {"v": KEY_VERSION, "request": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """A thread-safe SQLite cache file (WAL journal, one connection behind a lock)."""

    def __init__(self, path: Path, mode: str = "read-write"):
        if mode not in CACHE_MODES:
            raise ValueError(f"cache mode {mode!r} (modes: {', '.join(CACHE_MODES)})")
        self.path = Path(path)
        self.mode = mode
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        with self._lock:
            row = self._db().execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put(self, key: str, model: str, response: dict[str, Any]) -> None:
        if self.mode != "read-write":
            return
        data = json.dumps(response, sort_keys=True, ensure_ascii=False)
        with self._lock:
            self._db().execute(
                "INSERT OR REPLACE INTO responses (key, model, response, created) VALUES (?, ?, ?, ?)",
                (key, model, data, time.time()),
            )

    def __len__(self) -> int:
        if not self.path.exists():
            return 0
        with self._lock:
            return self._db().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
