"""Prompts are data files: plain text with ``{placeholders}``, read by the modules that use them."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

PROMPTS = Path(__file__).resolve().parent


@cache
def load(name: str) -> str:
    """The text of ``t2s/prompts/<name>`` (cached)."""
    return (PROMPTS / name).read_text(encoding="utf-8")


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render(template: str, **values: Any) -> str:
    """Fill ``{name}`` placeholders in one pass; other braces (code, JSON examples) and
    braces inside the inserted values stay as written."""
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)
