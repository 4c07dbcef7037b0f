"""Token and cost accounting: per model response, per turn, per session.

The live turn and the replay of a loaded session feed the same ledger with the
same `UsageRecorded` records, so a reloaded session reports the same figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parley_protocol.parley import UsageDetail
from parley_protocol.parley import UsageTotals as WireUsageTotals
from parleyd.providers.events import Usage
from parleyd.store.records import UsageRecorded

# USD per million tokens: (input, cached input, output). Only models whose
# published price is known; anything else reports no cost rather than a guess.
_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4.1": (2.00, 0.50, 8.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "o3": (2.00, 0.50, 8.00),
    "o4-mini": (1.10, 0.275, 4.40),
    "deepseek-chat": (0.27, 0.07, 1.10),
    "deepseek-reasoner": (0.55, 0.14, 2.19),
    # The built-in scripted model costs nothing, and says so.
    "parley-scripted": (0.0, 0.0, 0.0),
}

_CONTEXT_SIZES: dict[str, int] = {
    "gpt-4o": 128_000,
    "gpt-4o-mini": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-4.1-mini": 1_047_576,
    "gpt-4.1-nano": 1_047_576,
    "o3": 200_000,
    "o4-mini": 200_000,
    "deepseek-chat": 128_000,
    "deepseek-reasoner": 128_000,
    "parley-scripted": 32_000,
}


def _model_key(model: str) -> str:
    # Dated snapshots (gpt-4o-2024-08-06) and routed names (openai/gpt-4o) share
    # a price; other names that merely start alike (o3-pro, o3-mini) do not.
    return _DATED_SNAPSHOT.sub("", model.rsplit("/", 1)[-1])


_DATED_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def price_of(model: str, usage: Usage) -> float | None:
    prices = _PRICES.get(_model_key(model))
    if prices is None:
        return None
    per_input, per_cached, per_output = prices
    uncached = max(usage.input_tokens - usage.cached_input_tokens, 0)
    total = (
        uncached * per_input
        + usage.cached_input_tokens * per_cached
        + usage.output_tokens * per_output
    )
    return round(total / 1_000_000, 8)


def context_size_of(model: str, configured: int | None, default: int) -> int:
    if configured:
        return configured
    return _CONTEXT_SIZES.get(_model_key(model), default)


@dataclass
class UsageTotals:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None

    def add(self, record: UsageRecorded) -> None:
        self.input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        self.cached_input_tokens += record.cached_input_tokens
        self.cache_write_tokens += record.cache_write_tokens
        self.reasoning_tokens += record.reasoning_tokens
        if record.cost is not None:
            self.cost = round((self.cost or 0.0) + record.cost, 8)

    def wire(self) -> WireUsageTotals:
        return WireUsageTotals(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cached_input_tokens,
            cache_write_tokens=self.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens,
            cost=self.cost,
            currency=None if self.cost is None else "USD",
        )


@dataclass
class UsageLedger:
    """Running totals of one session: the current turn's and the session's."""

    turn: UsageTotals
    session: UsageTotals

    @classmethod
    def empty(cls) -> UsageLedger:
        return cls(UsageTotals(), UsageTotals())

    def start_turn(self) -> None:
        self.turn = UsageTotals()

    def add(self, record: UsageRecorded) -> UsageDetail:
        """Count one model response; return the `_meta.parley.usage` detail."""
        self.turn.add(record)
        self.session.add(record)
        return UsageDetail(
            turn=self.turn.wire(),
            session=self.session.wire(),
            conversation=record.conv,
            context_used=record.context_used,
            context_size=record.context_size,
            model=record.model,
        )
