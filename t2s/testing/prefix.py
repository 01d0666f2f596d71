"""A model of a server's automatic prefix cache, for the scripted server and the benches.

OpenAI-compatible servers (vLLM's automatic prefix caching, llama.cpp's prompt cache,
hosted APIs' discounted cached tokens) reuse the work of an earlier request whose
prompt starts with the same tokens, and report how many prompt tokens came from the
cache in ``usage.prompt_tokens_details.cached_tokens``. This model renders a request
body as the text a chat template would feed the model (the tool specs first, then
every message in order), keeps every prompt it has seen, and counts the longest
prefix a new prompt shares with any earlier one, in the scripted server's estimated
tokens (4 characters each). Real servers cache in blocks (vLLM 16 tokens, OpenAI 128
past the first 1,024) and evict; the model does neither, so its figures are the upper
bound a layout allows.
"""

from __future__ import annotations

import bisect
import json
import threading
from typing import Any


def estimate_tokens(text: str) -> int:
    """Tokens of ``text`` as the scripted server estimates them (4 characters each)."""
    return max(1, (len(text) + 3) // 4) if text else 0


def prompt_text(body: dict[str, Any]) -> str:
    """The request as one prompt string: tool specs, then each message's role, content
    and tool calls, in order (a chat template's order)."""
    parts = []
    if body.get("tools"):
        parts.append("<tools>" + json.dumps(body["tools"], sort_keys=True))
    for message in body.get("messages") or []:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, sort_keys=True)
        calls = message.get("tool_calls")
        parts.append(f"<|{message.get('role')}|>{text}" + (json.dumps(calls, sort_keys=True) if calls else ""))
    return "\n".join(parts)


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid
    return lo


class PrefixCache:
    """Every prompt seen so far, per model; :meth:`lookup` answers how many characters of
    a new prompt an earlier one already had, then remembers the new prompt."""

    def __init__(self) -> None:
        self._seen: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def lookup(self, model: str, prompt: str) -> int:
        """Characters of ``prompt`` shared with the longest-matching earlier prompt of
        ``model`` (the best match sits next to it in sorted order)."""
        with self._lock:
            seen = self._seen.setdefault(model, [])
            at = bisect.bisect_left(seen, prompt)
            shared = max((_common_prefix(prompt, seen[i]) for i in (at - 1, at) if 0 <= i < len(seen)), default=0)
            if at >= len(seen) or seen[at] != prompt:
                seen.insert(at, prompt)
            return shared

    def cached_tokens(self, body: dict[str, Any]) -> tuple[int, int]:
        """``(prompt_tokens, cached_tokens)`` of one request body, estimated."""
        prompt = prompt_text(body)
        shared = self.lookup(str(body.get("model", "")), prompt)
        total = estimate_tokens(prompt)
        return total, min(total, shared // 4)
