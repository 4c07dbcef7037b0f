"""What a response costs: the shipped table, cache reads and writes, the
providers that cost nothing, `[prices]` overrides, and context windows."""

from __future__ import annotations

from typing import Any

import pytest

from parleyd.pricing import (
    ModelPrice,
    PriceError,
    context_size_of,
    price_of,
    read_price,
    read_prices,
)
from parleyd.providers.events import Usage

MILLION = 1_000_000


def cost(
    model: str, usage: Usage, provider: str = "openai", **overrides: ModelPrice
) -> float | None:
    return price_of(model, usage, provider=provider, overrides=overrides)


def a_million_each_way(model: str, provider: str = "openai") -> float | None:
    return cost(model, Usage(input_tokens=MILLION, output_tokens=MILLION), provider)


@pytest.mark.parametrize(
    ("model", "provider", "expected"),
    [
        ("gpt-4o", "openai", 2.50 + 10.00),
        ("gpt-4o-2024-08-06", "openai", 2.50 + 10.00),
        ("openai/gpt-4o-mini", "openai", 0.15 + 0.60),
        ("gpt-4.1-mini-2025-04-14", "openai", 0.40 + 1.60),
        ("gpt-5-mini", "openai-responses", 0.25 + 2.00),
        ("claude-sonnet-4-5-20250929", "anthropic", 3.00 + 15.00),
        ("claude-opus-4-0", "anthropic", 15.00 + 75.00),
        ("claude-opus-4-20250514", "anthropic", 15.00 + 75.00),
        ("models/gemini-2.5-flash", "gemini", 0.30 + 2.50),
        ("deepseek-v4-flash", "openai", 0.30 + 1.20),
    ],
)
def test_the_shipped_table_prices_models_by_every_name_the_api_takes(
    model: str, provider: str, expected: float
) -> None:
    assert a_million_each_way(model, provider) == pytest.approx(expected)


@pytest.mark.parametrize(
    "model", ["llama3.2", "claude-sonnet-4-7", "", "openai/", "o3-mini", "o3-pro", "gpt-4o-audio"]
)
def test_a_model_priced_nowhere_has_no_cost(model: str) -> None:
    # Names that merely start like a priced one (o3-pro) are other models.
    assert a_million_each_way(model) is None


def test_cache_reads_and_writes_are_each_billed_at_their_own_rate() -> None:
    # claude-sonnet-4-5: 3.00 input, 0.30 read, 3.75 5-minute write, 6.00 1-hour write.
    usage = Usage(
        input_tokens=MILLION,
        cached_input_tokens=200_000,
        cache_write_tokens=300_000,
        cache_write_1h_tokens=100_000,
    )
    expected = 0.5 * 3.00 + 0.2 * 0.30 + 0.2 * 3.75 + 0.1 * 6.00
    assert cost("claude-sonnet-4-5", usage, "anthropic") == pytest.approx(expected)
    # gpt-4o: 2.50 per million uncached input, 1.25 cached, 10.00 output.
    openai = Usage(input_tokens=MILLION, cached_input_tokens=400_000)
    assert cost("gpt-4o", openai) == pytest.approx(0.6 * 2.50 + 0.4 * 1.25)


def test_anthropic_cache_writes_cost_what_anthropic_bills_for_them() -> None:
    # 5-minute writes at 1.25 times the input price, 1-hour writes at 2 times,
    # reads at a tenth: for every Claude model the table lists.
    plain = Usage(input_tokens=MILLION)
    writes = Usage(input_tokens=MILLION, cache_write_tokens=MILLION)
    writes_1h = Usage(
        input_tokens=MILLION, cache_write_tokens=MILLION, cache_write_1h_tokens=MILLION
    )
    reads = Usage(input_tokens=MILLION, cached_input_tokens=MILLION)
    for model in ("claude-opus-4-7", "claude-opus-4-5", "claude-opus-4-1", "claude-sonnet-4-6"):
        base = cost(model, plain, "anthropic")
        assert base is not None and base > 0
        assert cost(model, writes, "anthropic") == pytest.approx(1.25 * base)
        assert cost(model, writes_1h, "anthropic") == pytest.approx(2 * base)
        assert cost(model, reads, "anthropic") == pytest.approx(0.1 * base)


def test_reasoning_is_billed_as_the_output_it_is_part_of() -> None:
    # o4-mini: 4.40 per million output tokens, reasoning among them.
    thinking = Usage(output_tokens=MILLION, reasoning_tokens=800_000)
    assert cost("o4-mini", thinking) == pytest.approx(4.40)


def test_more_cached_tokens_than_input_never_yields_a_refund() -> None:
    over = cost("gpt-4o", Usage(input_tokens=100, cached_input_tokens=200))
    assert over == pytest.approx(200 * 1.25 / MILLION)


@pytest.mark.parametrize("provider", ["ollama", "offline"])
def test_models_on_the_users_machine_cost_nothing_and_say_so(provider: str) -> None:
    assert a_million_each_way("qwen3:32b", provider) == 0.0
    assert a_million_each_way("parley-scripted", provider) == 0.0
    # The same name elsewhere is whatever that server charges: unknown.
    assert a_million_each_way("qwen3:32b", "openai") is None


def test_overrides_come_before_the_shipped_table_and_the_free_providers() -> None:
    house = ModelPrice(input=1.0, output=2.0, cached_input=0.5, cache_write=1.0, cache_write_1h=1.0)
    usage = Usage(input_tokens=MILLION, output_tokens=MILLION)
    assert cost("house-7b", usage, **{"house-7b": house}) == pytest.approx(3.0)
    assert cost("gpt-4o", usage, **{"gpt-4o": house}) == pytest.approx(3.0)
    # An Ollama server that bills (a hosted one) is priced as configured.
    assert cost("house-7b", usage, "ollama", **{"house-7b": house}) == pytest.approx(3.0)
    # An override by a model's name covers its dated snapshots and routed names too.
    assert cost("acme/house-7b-2026-01-31", usage, **{"house-7b": house}) == pytest.approx(3.0)


def test_an_entry_gives_input_and_output_and_the_rest_follows_them() -> None:
    assert read_price({"input": 2, "output": 8}, "p") == ModelPrice(
        input=2.0, output=8.0, cached_input=2.0, cache_write=2.0, cache_write_1h=2.0
    )
    assert read_price({"input": 3, "output": 15, "cache_write": 3.75}, "p") == ModelPrice(
        input=3.0, output=15.0, cached_input=3.0, cache_write=3.75, cache_write_1h=3.75
    )
    assert read_prices({}, "prices") == {}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            "cheap",
            'prices must be a table of models, e.g. "my-model" = { input = 1.0, output = 4.0 }',
        ),
        (
            {"m": 1.0},
            "prices.'m' must be a table of USD per million tokens, e.g. "
            "{ input = 1.0, output = 4.0 }",
        ),
        (
            {"m": {"input": 1, "outptu": 2}},
            "prices.'m': unknown key 'outptu' (did you mean 'output'?); "
            "the keys are input, cached_input, cache_write, cache_write_1h, output",
        ),
        ({"m": {"input": 1}}, "prices.'m' needs output (USD per million tokens)"),
        (
            {"gpt-4.1": {"input": -1, "output": 2}},
            "prices.'gpt-4.1'.input must be a number of USD per million tokens, 0 or more, got -1",
        ),
        (
            {"m": {"input": True, "output": 2}},
            "prices.'m'.input must be a number of USD per million tokens, 0 or more, got True",
        ),
        (
            {"m": {"input": "0.5", "output": 2}},
            "prices.'m'.input must be a number of USD per million tokens, 0 or more, got '0.5'",
        ),
    ],
)
def test_a_bad_entry_is_refused_naming_its_key(table: Any, message: str) -> None:
    with pytest.raises(PriceError) as caught:
        read_prices(table, "prices")
    assert str(caught.value) == message


def test_context_size_prefers_configuration_then_the_model_then_the_default() -> None:
    assert context_size_of("gpt-4o", 5000, 1) == 5000
    assert context_size_of("openai/gpt-4o-2024-08-06", None, 1) == 128_000
    assert context_size_of("claude-opus-4-0", None, 1) == 200_000
    assert context_size_of("gemini-2.5-pro", None, 1) == 1_048_576
    assert context_size_of("parley-scripted", None, 1) == 32_000
    # Priced, but of no published window here: the default.
    assert context_size_of("gpt-5.4", None, 4096) == 4096
    assert context_size_of("llama3.2", None, 4096) == 4096
