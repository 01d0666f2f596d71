"""Prompts are data files: plain text with ``{placeholders}``, read by the modules that use them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

PROMPTS = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def load(name: str) -> str:
    """The text of ``t2s/prompts/<name>`` (cached)."""
    return (PROMPTS / name).read_text(encoding="utf-8")


def render(template: str, **values: Any) -> str:
    """Fill ``{name}`` placeholders; any other braces (code, JSON examples) stay as written."""
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", str(value))
    return out
