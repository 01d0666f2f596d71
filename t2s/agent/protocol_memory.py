"""What the ``auto`` protocol learnt in this process: which endpoint and model answer in
plain text rather than with native tool calls.

An episode with ``auto`` starts with tool calls and switches to the text protocol when
the model's reply calls no tool. A model that does so once does so in every episode, so
the switch is remembered per endpoint (``base_url``) and model for the rest of the run
(the process): the next episodes start in text and do not spend a turn finding out.
Nothing is stored on disk; a new run tries tool calls again.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_switched: dict[tuple[str, str], str] = {}


def _key(base_url: str, model: str) -> tuple[str, str]:
    return base_url.rstrip("/"), model


def remember_text_protocol(base_url: str, model: str, reason: str) -> None:
    """Record that ``model`` at ``base_url`` answered without tool calls (``reason``
    says when and how); the first reason is kept."""
    with _lock:
        _switched.setdefault(_key(base_url, model), reason)


def remembered_switch(base_url: str, model: str) -> str | None:
    """Why an earlier episode of this run switched ``model`` at ``base_url`` to text
    (None: it has not)."""
    with _lock:
        return _switched.get(_key(base_url, model))


def forget_protocol_switches() -> None:
    """Forget every remembered switch (tests; a long-lived process that changed models)."""
    with _lock:
        _switched.clear()
