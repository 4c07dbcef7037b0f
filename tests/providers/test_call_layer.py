"""The call layer: retries before any output, never after, then the next provider."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from parleyd.config import ConfigError
from parleyd.providers.base import Provider
from parleyd.providers.call_layer import Link, ProviderChain, RetryPolicy
from parleyd.providers.events import (
    Done,
    FallingBack,
    ProviderEvent,
    Retrying,
    StreamError,
    TextDelta,
)
from parleyd.providers.messages import ModelRequest, UserMessage
from parleyd.providers.openai_chat import OpenAIChatProvider
from tests.support.chat_streams import text_stream
from tests.support.provider_events import joined_runs
from tests.support.replay_server import ReplayServer

SSE = "text/event-stream"
HELLO = ModelRequest(model="ignored", system="", messages=(UserMessage("hi"),))
HELLO_STREAM = text_stream("Hello")
OVERLOADED = b'{"error": {"message": "overloaded", "type": "server_error"}}'
NO_WAIT = RetryPolicy(attempts=3, first_delay=0.0, jitter=lambda: 0.0)


@pytest.fixture
async def primary() -> AsyncIterator[ReplayServer]:
    async with ReplayServer() as server:
        yield server


@pytest.fixture
async def fallback() -> AsyncIterator[ReplayServer]:
    async with ReplayServer() as server:
        yield server


def link(name: str, server: ReplayServer | None, model: str = "m") -> Link:
    async def connect() -> Provider:
        if server is None:
            raise ConfigError(f"{name.upper()}_API_KEY is not set")
        return OpenAIChatProvider(f"{server.url}/v1", "sk-test", idle_timeout=5)

    return Link(name, model, connect)


async def streamed(chain: ProviderChain) -> list[ProviderEvent]:
    try:
        return joined_runs([event async for event in chain.stream(HELLO)])
    finally:
        await chain.aclose()


async def test_a_failure_before_any_output_is_tried_again_as_the_server_asks(
    primary: ReplayServer,
) -> None:
    primary.enqueue(429, "application/json", b"{}", headers={"retry-after": "0"})
    primary.enqueue(503, "application/json", OVERLOADED)
    primary.enqueue(200, SSE, HELLO_STREAM)
    events = await streamed(ProviderChain([link("openai", primary)], NO_WAIT, ConfigError))
    retries = [event for event in events if isinstance(event, Retrying)]
    assert [(r.attempt, r.attempts, r.error.kind, r.error.status) for r in retries] == [
        (2, 3, "rate_limit", 429),
        (3, 3, "server", 503),
    ]
    assert retries[0].delay == 0.0  # the server's Retry-After, not the backoff
    assert events[-2:] == [TextDelta("Hello"), Done("end_turn", "stop")]
    assert len(primary.requests) == 3


async def test_what_is_wrong_with_the_request_is_not_tried_again(primary: ReplayServer) -> None:
    primary.enqueue(400, "application/json", b'{"error": {"message": "bad tools"}}')
    (failed,) = await streamed(ProviderChain([link("openai", primary)], NO_WAIT, ConfigError))
    assert isinstance(failed, StreamError) and failed.kind == "bad_request"
    assert len(primary.requests) == 1


async def test_a_failure_after_output_is_final_and_says_so(primary: ReplayServer) -> None:
    cut = HELLO_STREAM.split(b"data: [DONE]")[0].rsplit(b"data:", 1)[0]
    cut += b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
    primary.enqueue(200, SSE, cut)
    events = await streamed(ProviderChain([link("openai", primary)], NO_WAIT, ConfigError))
    assert events[0] == TextDelta("Hello")
    failed = events[-1]
    assert isinstance(failed, StreamError) and not failed.retryable
    assert failed.message.endswith("(not retried: the answer had begun)")
    assert len(primary.requests) == 1


async def test_tries_spent_hand_the_call_to_the_next_provider(
    primary: ReplayServer, fallback: ReplayServer
) -> None:
    for _ in range(3):
        primary.enqueue(500, "application/json", OVERLOADED)
    fallback.enqueue(200, SSE, HELLO_STREAM)
    chain = ProviderChain(
        [link("openai", primary), link("ollama", fallback, model="qwen3")], NO_WAIT, ConfigError
    )
    events = await streamed(chain)
    (handed,) = [event for event in events if isinstance(event, FallingBack)]
    assert (handed.provider, handed.model, handed.error.kind) == ("ollama", "qwen3", "server")
    assert "after 3 tries" in handed.error.message
    assert events[-2:] == [TextDelta("Hello"), Done("end_turn", "stop")]
    assert fallback.requests[0].json["model"] == "qwen3"


async def test_an_unconfigured_provider_is_passed_over_and_the_last_one_says_why(
    fallback: ReplayServer,
) -> None:
    fallback.enqueue(200, SSE, HELLO_STREAM)
    chain = ProviderChain([link("anthropic", None), link("openai", fallback)], NO_WAIT, ConfigError)
    events = await streamed(chain)
    (handed,) = [event for event in events if isinstance(event, FallingBack)]
    assert "ANTHROPIC_API_KEY is not set" in handed.error.message
    assert events[-1] == Done("end_turn", "stop")

    alone = ProviderChain([link("anthropic", None)], NO_WAIT, ConfigError)
    (failed,) = await streamed(alone)
    assert isinstance(failed, StreamError) and "ANTHROPIC_API_KEY" in failed.message


def test_the_backoff_doubles_with_jitter_and_a_long_retry_after_is_not_waited_for() -> None:
    policy = RetryPolicy(attempts=5, first_delay=1.0, longest_delay=3.0, jitter=lambda: 1.0)
    server = StreamError(kind="server", message="x", retryable=True)
    assert [policy.delay(attempt, server) for attempt in (1, 2, 3, 4, 5)] == [
        1.0,
        2.0,
        3.0,
        3.0,
        None,
    ]
    halved = RetryPolicy(first_delay=1.0, jitter=lambda: 0.0)
    assert halved.delay(1, server) == 0.5
    asked = StreamError(kind="rate_limit", message="x", retryable=True, retry_after=90.0)
    assert policy.delay(1, asked) is None  # longer than longest_wait: the next provider
    final = StreamError(kind="auth", message="x")
    assert policy.delay(1, final) is None
