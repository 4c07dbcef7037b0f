"""What a model response costs, and how large a model's context window is:
from the table that ships with Parley (`prices.toml` beside this module), under
the `[prices]` that config.toml may add.

A model whose price is known nowhere has no cost, never a guessed one.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Protocol, TypeVar

from parley_protocol.names import describe_unknown

_PRICE_KEYS = ("input", "cached_input", "cache_write", "cache_write_1h", "output")
_REQUIRED = ("input", "output")
# Keys only the shipped table has: what the API calls the model besides, and its window.
_SHIPPED_ONLY = ("aliases", "context_window")
_PER_MILLION = 1_000_000
_T = TypeVar("_T")


class TokenCounts(Protocol):
    """What a response used, as a provider reports it (`providers.events.Usage`)."""

    @property
    def input_tokens(self) -> int: ...
    @property
    def output_tokens(self) -> int: ...
    @property
    def cached_input_tokens(self) -> int: ...
    @property
    def cache_write_tokens(self) -> int: ...
    @property
    def cache_write_1h_tokens(self) -> int: ...


class PriceError(ValueError):
    """A price table entry is malformed; the message names the key."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens of each kind a provider bills."""

    input: float
    output: float
    cached_input: float
    cache_write: float
    cache_write_1h: float

    def cost(self, usage: TokenCounts) -> float:
        """The response's cost in USD. Input tokens are billed once each, as a
        cache read, a cache write (for an hour or five minutes) or plain input;
        reasoning tokens are part of the output."""
        writes_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        # A provider counting more cached tokens than input must not earn a refund.
        plain = max(usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens, 0)
        total = (
            plain * self.input
            + usage.cached_input_tokens * self.cached_input
            + (usage.cache_write_tokens - writes_1h) * self.cache_write
            + writes_1h * self.cache_write_1h
            + usage.output_tokens * self.output
        )
        return round(total / _PER_MILLION, 8)


_FREE = ModelPrice(input=0.0, output=0.0, cached_input=0.0, cache_write=0.0, cache_write_1h=0.0)


def read_prices(table: Any, where: str) -> dict[str, ModelPrice]:
    """A table of model name -> prices, as config.toml's `[prices]` holds it."""
    if not isinstance(table, dict):
        raise PriceError(
            f'{where} must be a table of models, e.g. "my-model" = {{ input = 1.0, output = 4.0 }}'
        )
    return {name: read_price(entry, f"{where}.{name!r}") for name, entry in table.items()}


def read_price(entry: Any, where: str) -> ModelPrice:
    """One model's prices: `input` and `output` are required; a cache read or
    write costs what input does unless said, an hour-long write what a write does."""
    if not isinstance(entry, dict):
        raise PriceError(
            f"{where} must be a table of USD per million tokens, e.g. "
            "{ input = 1.0, output = 4.0 }"
        )
    unknown = [key for key in entry if key not in _PRICE_KEYS]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise PriceError(
            f"{where}: unknown key{plural} {describe_unknown(unknown, _PRICE_KEYS)}; "
            f"the keys are {', '.join(_PRICE_KEYS)}"
        )
    missing = [key for key in _REQUIRED if key not in entry]
    if missing:
        raise PriceError(f"{where} needs {' and '.join(missing)} (USD per million tokens)")
    rates = {key: _rate(value, f"{where}.{key}") for key, value in entry.items()}
    cache_write = rates.get("cache_write", rates["input"])
    return ModelPrice(
        input=rates["input"],
        output=rates["output"],
        cached_input=rates.get("cached_input", rates["input"]),
        cache_write=cache_write,
        cache_write_1h=rates.get("cache_write_1h", cache_write),
    )


def _rate(value: Any, where: str) -> float:
    # bool is an int to Python: `input = true` is a mistake, not a price of 1.
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PriceError(
            f"{where} must be a number of USD per million tokens, 0 or more, got {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class _ShippedTable:
    prices: Mapping[str, ModelPrice]
    context_windows: Mapping[str, int]
    free_providers: frozenset[str]


@cache
def _shipped() -> _ShippedTable:
    text = files("parleyd").joinpath("prices.toml").read_text(encoding="utf-8")
    document = tomllib.loads(text)
    prices: dict[str, ModelPrice] = {}
    windows: dict[str, int] = {}
    for name, entry in document["models"].items():
        rates = {key: value for key, value in entry.items() if key not in _SHIPPED_ONLY}
        price = read_price(rates, f"prices.toml: models.{name!r}")
        for each in (name, *entry.get("aliases", ())):
            prices[each] = price
            if "context_window" in entry:
                windows[each] = int(entry["context_window"])
    return _ShippedTable(prices, windows, frozenset(document["free_providers"]))


def price_of(
    model: str, usage: TokenCounts, *, provider: str, overrides: Mapping[str, ModelPrice]
) -> float | None:
    """What a response of `model` through `provider` cost in USD: priced by
    `overrides` (config.toml's `[prices]`), else nothing for a provider on the
    user's own machine, else by the shipped table; None when none knows it."""
    price = price_for(model, provider=provider, overrides=overrides)
    return None if price is None else price.cost(usage)


def price_for(
    model: str, *, provider: str, overrides: Mapping[str, ModelPrice]
) -> ModelPrice | None:
    """`model`'s price through `provider`, as `price_of` finds it; None when none knows it."""
    shipped = _shipped()
    price = _find(overrides, model)
    if price is None and provider in shipped.free_providers:
        price = _FREE
    return _find(shipped.prices, model) if price is None else price


def context_size_of(model: str, configured: int | None, default: int) -> int:
    """The configured context size, else the model's known window, else `default`."""
    if configured:
        return configured
    known = _find(_shipped().context_windows, model)
    return default if known is None else known


def _find(table: Mapping[str, _T], model: str) -> _T | None:
    """The entry for `model` by its own name, else by the name its dated
    snapshot or routed form (openai/gpt-4o) stands for."""
    found = table.get(model)
    return table.get(_model_key(model)) if found is None else found


def _model_key(model: str) -> str:
    # gpt-4o-2024-08-06 and claude-sonnet-4-5-20250929 are gpt-4o and
    # claude-sonnet-4-5; names that merely start alike (o3-pro, o3-mini) are not.
    return _DATED_SNAPSHOT.sub("", model.rsplit("/", 1)[-1])


_DATED_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
