"""The call ledger of :mod:`t2s.llm.client`: calls, tokens, latency and cost, with hard caps.

One row per (role, phase). Cost is estimated from the ``[prices]`` table (USD per
million tokens, keyed by model name); a model without a price costs 0 and is listed in
``unpriced_models`` (so a ``max_usd`` cap cannot see it: cap calls or tokens too).

Caps (``max_calls``, ``max_tokens``, ``max_usd``) are checked before every request
that would go over the network (cache hits are free and always allowed). The calls cap
counts requests in flight, so it is never exceeded; the token and dollar caps are known
only after an answer arrives, so they stop new requests once reached (calls already in
flight finish and are recorded). Once a cap is hit the ledger stays stopped.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from t2s.llm.errors import BudgetExceeded

_SUM_FIELDS = (
    "calls",
    "cached",
    "errors",
    "attempts",
    "prompt_tokens",
    "completion_tokens",
    "latency_s",
    "cost_usd",
)


@dataclass
class LedgerRow:
    """The tallies of one (role, phase): calls, cache hits, errors, tokens, time and cost."""

    role: str
    phase: str
    calls: int = 0  # requests that went to the network (successful or not)
    cached: int = 0  # answers served from the cache (no request, no cost)
    errors: int = 0  # calls that failed after every retry
    attempts: int = 0  # HTTP attempts, retries included
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0  # summed wall time of the network calls
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: LedgerRow) -> None:
        """Add ``other``'s tallies to this row."""
        for name in _SUM_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict[str, Any]:
        """The row as JSON-ready data, with ``total_tokens`` and rounded time and cost."""
        data = asdict(self)
        data["total_tokens"] = self.total_tokens
        data["latency_s"] = round(self.latency_s, 6)
        data["cost_usd"] = round(self.cost_usd, 8)
        return data


class Ledger:
    """Thread-safe tallies per (role, phase), the prices and the caps."""

    def __init__(
        self,
        prices: Mapping[str, Any] | None = None,
        *,
        max_calls: int | None = None,
        max_tokens: int | None = None,
        max_usd: float | None = None,
    ):
        self.prices: dict[str, tuple[float, float]] = {}
        for model, price in (prices or {}).items():
            if isinstance(price, Mapping):
                self.prices[model] = (float(price.get("input", 0)), float(price.get("output", 0)))
            else:
                self.prices[model] = (float(price.input), float(price.output))
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.max_usd = max_usd
        self.rows: dict[tuple[str, str], LedgerRow] = {}
        self.unpriced_models: set[str] = set()
        #: Why new work was refused (``None`` while within budget).
        self.stopped: str | None = None
        self._in_flight = 0
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- caps

    def admit(self) -> None:
        """Reserve one network call, or raise :class:`t2s.llm.client.BudgetExceeded`."""

        with self._lock:
            if self.stopped is None:
                total = self._total_unlocked()
                if self.max_calls is not None and total.calls + self._in_flight >= self.max_calls:
                    self.stopped = f"max_calls={self.max_calls} reached ({total.calls} calls made)"
                elif self.max_tokens is not None and total.total_tokens >= self.max_tokens:
                    self.stopped = f"max_tokens={self.max_tokens} reached ({total.total_tokens} tokens used)"
                elif self.max_usd is not None and total.cost_usd >= self.max_usd:
                    self.stopped = f"max_usd={self.max_usd:g} reached (${total.cost_usd:.4f} spent)"
            if self.stopped is not None:
                raise BudgetExceeded(
                    f"budget exhausted: {self.stopped}; no new model calls are sent",
                    hint="finished work is kept; raise the cap in [budget] of t2s.toml to go on",
                )
            self._in_flight += 1

    def release(self) -> None:
        """Give back a reservation whose call was never sent."""
        with self._lock:
            self._in_flight -= 1

    # ---------------------------------------------------------------- records

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """The USD cost of the tokens at ``model``'s price per million (0 for a model
        without a price, which is then listed in ``unpriced_models``)."""
        price = self.prices.get(model)
        if price is None:
            if prompt_tokens or completion_tokens:
                self.unpriced_models.add(model)
            return 0.0
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000

    def _row(self, role: str, phase: str) -> LedgerRow:
        row = self.rows.get((role, phase))
        if row is None:
            row = self.rows[(role, phase)] = LedgerRow(role, phase)
        return row

    def record_call(
        self,
        role: str,
        phase: str,
        model: str,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        latency_s: float = 0.0,
        attempts: int = 1,
        error: bool = False,
        reserved: bool = True,
    ) -> None:
        """Record one network call (and end its reservation)."""
        with self._lock:
            if reserved:
                self._in_flight -= 1
            row = self._row(role, phase)
            row.calls += 1
            row.errors += int(error)
            row.attempts += attempts
            row.prompt_tokens += prompt_tokens
            row.completion_tokens += completion_tokens
            row.latency_s += latency_s
            row.cost_usd += self.cost(model, prompt_tokens, completion_tokens)

    def record_cached(self, role: str, phase: str) -> None:
        """Count one answer served from the response cache (no request, no cost)."""
        with self._lock:
            self._row(role, phase).cached += 1

    # ---------------------------------------------------------------- views

    def _total_unlocked(self) -> LedgerRow:
        total = LedgerRow("total", "")
        for row in self.rows.values():
            total.add(row)
        return total

    @property
    def totals(self) -> LedgerRow:
        """Every row added up, as one row with ``role="total"``."""
        with self._lock:
            return self._total_unlocked()

    def _grouped(self, by: str) -> list[dict[str, Any]]:
        groups: dict[str, LedgerRow] = {}
        with self._lock:
            for row in self.rows.values():
                name = getattr(row, by)
                if name not in groups:
                    groups[name] = LedgerRow(name if by == "role" else "", name if by == "phase" else "")
                groups[name].add(row)
        return [groups[k].to_dict() for k in sorted(groups)]

    def summary(self) -> list[dict[str, Any]]:
        """One dict per (role, phase), sorted, then a ``role="total"`` row."""
        with self._lock:
            rows = [self.rows[k].to_dict() for k in sorted(self.rows)]
            rows.append(self._total_unlocked().to_dict())
        return rows

    def to_dict(self) -> dict[str, Any]:
        """Rows, sums by role and by phase, totals, caps and why work stopped (JSON-ready)."""
        return {
            "rows": self.summary()[:-1],
            "by_role": self._grouped("role"),
            "by_phase": self._grouped("phase"),
            "totals": self.totals.to_dict(),
            "caps": {
                "max_calls": self.max_calls,
                "max_tokens": self.max_tokens,
                "max_usd": self.max_usd,
            },
            "stopped": self.stopped,
            "unpriced_models": sorted(self.unpriced_models),
        }

    def to_json(self) -> str:
        """The ledger as JSON (what a run record stores)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ledger:
        """A ledger read back from :meth:`to_dict`'s data (rows, caps and ``stopped``;
        the prices are not stored)."""
        caps = data.get("caps") or {}
        ledger = cls(
            max_calls=caps.get("max_calls"),
            max_tokens=caps.get("max_tokens"),
            max_usd=caps.get("max_usd"),
        )
        names = {f.name for f in fields(LedgerRow)}
        for item in data.get("rows", []):
            row = LedgerRow(**{k: v for k, v in item.items() if k in names})
            ledger.rows[(row.role, row.phase)] = row
        ledger.stopped = data.get("stopped")
        ledger.unpriced_models = set(data.get("unpriced_models", []))
        return ledger

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        """A ledger read back from :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def accumulate(previous: Any, ledger: Ledger) -> str:
    """``ledger`` added to a previously stored ledger (its JSON dict, or None), as JSON.

    A resumed stage appends to what earlier invocations of the same stage spent.
    """
    combined = Ledger.from_dict(previous) if isinstance(previous, dict) else Ledger()
    for key, row in ledger.rows.items():
        combined.rows.setdefault(key, LedgerRow(*key)).add(row)
    combined.max_calls, combined.max_tokens, combined.max_usd = ledger.max_calls, ledger.max_tokens, ledger.max_usd
    combined.stopped = ledger.stopped
    combined.unpriced_models |= set(ledger.unpriced_models)
    return combined.to_json()
