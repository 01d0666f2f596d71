"""Named splits declared in ``t2s.toml`` (``[suites.<name>.splits.<split>]``).

A split is exactly one of: ``file`` (+ optional ``key``, default the split's name) — a
JSON file mapping split names to id lists (or a plain list); ``rows = "a:b"`` — a Python
slice of the suite's task order; ``ids`` — explicit ids.
"""

from __future__ import annotations

import json
from pathlib import Path

from t2s.config import SplitSpec
from t2s.errors import ConfigError


def parse_rows(text: str) -> slice:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ConfigError(f'rows = {text!r}: expected a slice like "0:200"')
    try:
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise ConfigError(f"rows = {text!r}: slice bounds must be integers") from None
    if len(values) == 3 and values[2] == 0:
        raise ConfigError(f"rows = {text!r}: the step cannot be 0")
    return slice(*values)


def _read_split_file(path: Path, key: str, suite: str, split: str) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"suite {suite!r}, split {split!r}: split file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"suite {suite!r}, split {split!r}: {path} is not valid JSON: {err}") from None
    if isinstance(data, dict):
        if key not in data:
            raise ConfigError(
                f"suite {suite!r}, split {split!r}: {path} has no key {key!r} (keys: {', '.join(map(repr, data))})"
            )
        data = data[key]
    if not isinstance(data, list):
        raise ConfigError(f"suite {suite!r}, split {split!r}: {path}[{key!r}] is not a list of ids")
    return [str(i) for i in data]


def resolve_split(name: str, spec: SplitSpec, *, suite: str, all_ids: list[str], search_dirs: list[Path]) -> list[str]:
    """The ids of one split, validated against the suite's ids, order kept, no duplicates."""
    given = [k for k in ("file", "rows", "ids") if getattr(spec, k) is not None]
    if len(given) != 1:
        raise ConfigError(
            f"suite {suite!r}, split {name!r}: give exactly one of file, rows, ids (got {', '.join(given) or 'none'})"
        )
    if spec.key is not None and spec.file is None:
        raise ConfigError(f"suite {suite!r}, split {name!r}: key needs file")
    if spec.file is not None:
        candidates = [Path(spec.file)] if Path(spec.file).is_absolute() else [d / spec.file for d in search_dirs]
        path = next((c for c in candidates if c.is_file()), candidates[0])
        ids = _read_split_file(path, spec.key or name, suite, name)
    elif spec.rows is not None:
        ids = all_ids[parse_rows(spec.rows)]
    else:
        ids = [str(i) for i in spec.ids or []]
    known = set(all_ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        shown = ", ".join(map(repr, unknown[:10])) + (" ..." if len(unknown) > 10 else "")
        raise ConfigError(f"suite {suite!r}, split {name!r}: {len(unknown)} id(s) not in the suite: {shown}")
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def default_splits_file(root: Path, all_ids: list[str], suite: str) -> dict[str, list[str]]:
    """The suite's own ``splits.json`` (every list-valued key), if it has one."""
    path = root / "splits.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"suite {suite!r}: {path} is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        return {}
    out = {}
    for key, value in data.items():
        if isinstance(value, list):
            out[key] = resolve_split(
                key, SplitSpec(ids=[str(v) for v in value]), suite=suite, all_ids=all_ids, search_dirs=[root]
            )
    return out
