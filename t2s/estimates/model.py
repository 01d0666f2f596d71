"""What an estimate is: one row per role (calls, input and output tokens, USD, wall
time, and what it was built from), the token count of a text, and the price of tokens.

**Tokens.** A text's tokens are counted with the model's own tokenizer where one is
known and installed (``tiktoken``, an optional package: not a dependency), else at
:data:`CHARS_PER_TOKEN` characters per token, the ratio OpenAI documents for English
text and the one t2s's scripted test server uses.

**Prices** go through :func:`usd` only (the ``[prices]`` table of t2s.toml, via the
ledger's own rule), so a change of the price model is one edit.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from pydantic import BaseModel, Field

from t2s.config import Config
from t2s.errors import T2SError
from t2s.llm.ledger import Ledger

#: Characters per token when the model's tokenizer is not known.
CHARS_PER_TOKEN = 4.0


@cache
def _encoder(model: str) -> Any:
    try:  # optional: counts exactly for OpenAI models when installed; imported here so t2s starts without it
        import tiktoken
    except ImportError:
        return None
    try:
        return tiktoken.encoding_for_model(model)
    except KeyError:
        return None
    except Exception:  # tiktoken downloads an encoding on first use: offline, count by characters
        return None


def count_tokens(text: str, model: str = "") -> int:
    """The tokens of ``text`` for ``model`` (see the module doc)."""
    if not text:
        return 0
    encoder = _encoder(model)
    if encoder is not None:
        return len(encoder.encode(text, disallowed_special=()))
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def tokenizer_name(model: str) -> str:
    """How :func:`count_tokens` counts for ``model`` (said in every estimate)."""
    return f"tiktoken ({model})" if _encoder(model) is not None else f"{CHARS_PER_TOKEN:g} characters per token"


def usd(config: Config, model: str, input_tokens: float, output_tokens: float) -> float:
    """The USD price of tokens of ``model`` by ``[prices]`` (0 for an unpriced model)."""
    return Ledger(config.prices).cost(model, int(input_tokens), int(output_tokens))


class RoleEstimate(BaseModel):
    """What one role of one stage is expected to spend."""

    stage: str
    role: str
    model: str
    #: Work items: agent episodes, analyses or merges.
    items: int = 0
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0
    wall_s: float = 0.0
    #: What the numbers rest on: "history: ..." (this repository's ledgers) or "defaults: ...".
    basis: str = ""
    tokenizer: str = ""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Estimate(BaseModel):
    """An estimate of one or several stages: its rows, and their totals."""

    rows: list[RoleEstimate] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.rows)

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.rows)

    @property
    def usd(self) -> float:
        return round(sum(r.usd for r in self.rows), 6)

    @property
    def wall_s(self) -> float:
        return round(sum(r.wall_s for r in self.rows), 1)  # the stages run one after another

    def extend(self, other: Estimate) -> Estimate:
        self.rows += other.rows
        self.notes += other.notes
        return self

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["totals"] = {"calls": self.calls, "tokens": self.tokens, "usd": self.usd, "wall_s": self.wall_s}
        return data

    def over_budget(self, config: Config) -> list[str]:
        """The ``[budget]`` caps this estimate would exceed, as sentences."""
        budget, over = config.budget, []
        if budget.max_calls is not None and self.calls > budget.max_calls:
            over.append(f"{self.calls} calls > max_calls {budget.max_calls}")
        if budget.max_tokens is not None and self.tokens > budget.max_tokens:
            over.append(f"{self.tokens} tokens > max_tokens {budget.max_tokens}")
        if budget.max_usd is not None and self.usd > budget.max_usd:
            over.append(f"${self.usd:.4f} > max_usd {budget.max_usd:g}")
        return over


class WouldExceedBudget(T2SError):
    """Refused up front: the estimate of the work is over a ``[budget]`` cap."""

    def __init__(self, estimate: Estimate, over: list[str]):
        super().__init__(
            f"refusing to start: the estimate is over the [budget] caps ({'; '.join(over)}); "
            f"estimated {estimate.calls} calls, {estimate.tokens} tokens, ${estimate.usd:.4f}",
            hint="raise the caps in [budget] of t2s.toml, evolve fewer tasks (--limit), or pass --force",
        )
        self.estimate = estimate


def refuse_over_budget(estimate: Estimate, config: Config) -> None:
    """Raise :class:`WouldExceedBudget` when ``estimate`` is over a ``[budget]`` cap."""
    over = estimate.over_budget(config)
    if over:
        raise WouldExceedBudget(estimate, over)
