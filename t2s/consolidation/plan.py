"""The merge tree's shape, planned without touching anything: balanced groups of at most
``fan_in`` heads per level, levels until one remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from t2s.errors import UsageError


def balanced_groups(items: Sequence[Any], fan_in: int) -> list[list[Any]]:
    """Split ``items`` (order kept) into the fewest groups of at most ``fan_in``,
    with sizes differing by at most one (so there is no runt group)."""
    if fan_in < 2:
        raise UsageError(f"fan-in must be at least 2 (got {fan_in})")
    count = len(items)
    if count == 0:
        return []
    groups = -(-count // fan_in)
    base, extra = divmod(count, groups)
    out, start = [], 0
    for index in range(groups):
        size = base + (1 if index < extra else 0)
        out.append(list(items[start : start + size]))
        start += size
    return out


def _plan_levels(count: int, fan_in: int) -> list[list[list[int]]]:
    """The merge tree over ``count`` heads if every merge succeeds: per level, its
    groups as indices into the level below."""
    plan = []
    while count > 1:
        groups = balanced_groups(list(range(count)), fan_in)
        plan.append(groups)
        count = len(groups)
    return plan
