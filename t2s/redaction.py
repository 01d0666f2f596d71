"""The second line of defence for API keys: their values never leave t2s in writing.

The sandbox keeps keys out of model-written code. Should a key's value reach t2s's
data anyway (a bug, an unsandboxed run, a model that guessed it), it is replaced by
``[redacted $NAME]`` at the narrowest points where t2s writes: the git objects it
creates (blobs - run records, notes' contents -, commit, tag and note messages:
:mod:`t2s.gitstore.store`) and every request body sent to a model (:mod:`t2s.llm.client`).

Which values: those of the usual key variables (``OPENAI_API_KEY`` and friends) and
of every role's ``api_key_env`` (:func:`watch`, called when the roles are resolved),
read from the environment at the moment of writing. Values shorter than 8 characters
(``EMPTY``, ``none``, placeholders for local servers) are left alone: replacing
common words would corrupt records and protect nothing.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

#: Key variables watched even before any role is resolved.
USUAL_KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "T2S_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "XAI_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
)
MIN_LENGTH = 8

_watched: set[str] = set(USUAL_KEY_VARIABLES)
_lock = threading.Lock()


def watch(names) -> None:
    """Also redact the values of these environment variables (a role's ``api_key_env``)."""
    with _lock:
        _watched.update(n for n in names if n)


def watched() -> set[str]:
    with _lock:
        return set(_watched)


def _secrets(env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(variable, value) pairs to redact, from ``env`` and the process environment,
    longest value first (a key that contains another is replaced whole)."""
    pairs = set()
    for source in (os.environ, env or {}):
        for name in watched():
            value = source.get(name, "")
            if len(value) >= MIN_LENGTH:
                pairs.add((name, value))
    return sorted(pairs, key=lambda p: (-len(p[1]), p[0]))


def _forms(value: str) -> set[str]:
    """The value as it may appear in text: plain and JSON-escaped."""
    return {value, json.dumps(value)[1:-1]}


def redact_text(text: str, env: Mapping[str, str] | None = None) -> str:
    for name, value in _secrets(env):
        for form in _forms(value):
            if form in text:
                text = text.replace(form, f"[redacted ${name}]")
    return text


def redact_bytes(data: bytes, env: Mapping[str, str] | None = None) -> bytes:
    for name, value in _secrets(env):
        for form in _forms(value):
            raw = form.encode("utf-8", "surrogateescape")
            if raw in data:
                data = data.replace(raw, f"[redacted ${name}]".encode())
    return data


def redact_json(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """A copy of a JSON-like structure with every string (keys included) redacted;
    the structure itself when there is no key to redact."""
    secrets = _secrets(env)
    if not secrets:
        return value
    forms = [f for _, s in secrets for f in _forms(s)]

    def walk(v: Any) -> Any:
        if isinstance(v, str):
            return redact_text(v, env) if any(f in v for f in forms) else v
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value)
