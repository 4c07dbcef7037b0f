"""The Chat Completions provider: what it sends, and how every failure ends its stream."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from parleyd.providers.events import Done, ProviderEvent, StreamError, TextDelta
from parleyd.providers.messages import (
    AssistantMessage,
    ModelRequest,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
)
from parleyd.providers.openai_chat import OpenAIChatProvider
from tests.support.provider_events import joined_runs
from tests.support.replay_server import ReplayServer

SSE = "text/event-stream"
HELLO = ModelRequest(model="gpt-test", system="", messages=(UserMessage("hi"),))
TEXT_STREAM = (
    b'data: {"choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}\n\n'
    b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    async with ReplayServer() as replay:
        yield replay


async def collect(
    base_url: str,
    request: ModelRequest = HELLO,
    *,
    api_key: str | None = "sk-test",
    idle_timeout: float = 10.0,
) -> list[ProviderEvent]:
    provider = OpenAIChatProvider(base_url, api_key, idle_timeout=idle_timeout)
    try:
        return [event async for event in provider.stream(request)]
    finally:
        await provider.aclose()


async def failure(base_url: str) -> StreamError:
    events = await collect(base_url)
    assert isinstance(events[-1], StreamError), events
    assert not any(isinstance(event, Done) for event in events)
    return events[-1]


# --- the request ---------------------------------------------------------------


async def test_request_body_converts_the_whole_conversation(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    schema: dict[str, object] = {"type": "object", "properties": {"path": {"type": "string"}}}
    request = ModelRequest(
        model="gpt-test",
        system="Be brief.",
        messages=(
            UserMessage("Read a.txt"),
            AssistantMessage(
                parts=(
                    ThinkingPart("not sent back"),
                    TextPart("Reading it."),
                    ToolCall("call_1", "read", '{"path":"a.txt"}'),
                )
            ),
            ToolResultMessage(call_id="call_1", name="read", content="hello"),
            AssistantMessage(parts=(ToolCall("call_2", "read", "{}"),)),
            ToolResultMessage(call_id="call_2", name="read", content="no path", is_error=True),
            AssistantMessage(parts=(RefusalPart("I can't."),)),
            AssistantMessage(parts=(TextPart("Done."),)),
            UserMessage("Thanks"),
        ),
        tools=(ToolSpec(name="read", description="Read a file.", parameters=schema),),
        max_output_tokens=256,
    )
    await collect(f"{server.url}/v1/", request)
    (sent,) = server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Read a.txt"},
            {
                "role": "assistant",
                "content": "Reading it.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "read", "arguments": '{"path":"a.txt"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "hello"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "read", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_2", "content": "no path"},
            {"role": "assistant", "content": "I can't."},
            {"role": "assistant", "content": "Done."},
            {"role": "user", "content": "Thanks"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {"name": "read", "description": "Read a file.", "parameters": schema},
            }
        ],
        "max_completion_tokens": 256,
    }


async def test_minimal_request_leaves_out_optional_fields(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(f"{server.url}/v1", HELLO)
    assert server.requests[0].json == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_headers_carry_the_key_only_when_set(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(f"{server.url}/v1", api_key="sk-secret")
    await collect(f"{server.url}/v1", api_key=None)
    with_key, without_key = (request.headers for request in server.requests)
    assert with_key["authorization"] == "Bearer sk-secret"
    assert "authorization" not in without_key
    assert with_key["content-type"] == "application/json"
    assert with_key["accept"] == SSE


async def test_extra_headers_are_sent(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    provider = OpenAIChatProvider(f"{server.url}/v1", None, extra_headers={"X-Title": "Parley"})
    try:
        events = [event async for event in provider.stream(HELLO)]
    finally:
        await provider.aclose()
    assert joined_runs(events) == [TextDelta("Hello"), Done("end_turn", "stop")]
    assert server.requests[0].headers["x-title"] == "Parley"


@pytest.mark.parametrize("content_type", ["TEXT/EVENT-STREAM", "text/event-stream;charset=UTF-8"])
async def test_content_type_is_matched_loosely(server: ReplayServer, content_type: str) -> None:
    server.enqueue(200, content_type, TEXT_STREAM)
    assert (await collect(f"{server.url}/v1"))[-1] == Done("end_turn", "stop")


# --- failures before the stream ------------------------------------------------


async def test_401_names_the_key_variable(server: ReplayServer) -> None:
    body = b'{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}'
    server.enqueue(401, "application/json", body)
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.status, error.retryable) == ("auth", 401, False)
    assert "Incorrect API key provided" in error.message
    assert "OPENAI_API_KEY" in error.message
    assert "sk-test" not in error.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after-ms": "1500", "Retry-After": "2"}, 1.5),
        ({}, None),
    ],
)
async def test_429_is_retryable_after_the_servers_delay(
    server: ReplayServer, headers: dict[str, str], expected: float | None
) -> None:
    body = b'{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}'
    server.enqueue(429, "application/json", body, headers=headers)
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.retryable, error.retry_after) == ("rate_limit", True, expected)
    assert "Rate limit reached" in error.message


async def test_retry_after_as_an_http_date(server: ReplayServer) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    server.enqueue(429, "application/json", b"{}", headers={"Retry-After": when})
    error = await failure(f"{server.url}/v1")
    assert error.retry_after is not None
    assert 20 < error.retry_after <= 30


async def test_insufficient_quota_is_not_retried(server: ReplayServer) -> None:
    body = b'{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}'
    server.enqueue(429, "application/json", body)
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.retryable) == ("rate_limit", False)


async def test_500_is_a_retryable_server_error_quoting_the_body(server: ReplayServer) -> None:
    server.enqueue(500, "text/html", b"<h1>upstream exploded</h1>" + b"x" * 2000)
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.status, error.retryable) == ("server", 500, True)
    assert "<h1>upstream exploded</h1>" in error.message
    assert len(error.message) < 700


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (
            400,
            b": keep-alive\n\nevent: error\n"
            b'data: {"error":{"message":"Tool call validation failed","code":"tool_use_failed",'
            b'"type":"invalid_request_error"}}\n\n',
            "bad_request",
            "Tool call validation failed",
        ),
        (
            429,
            b'data: {"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}\n\n'
            b"data: [DONE]\n\n",
            "rate_limit",
            "Rate limit reached",
        ),
        (502, b'data: {"message":"upstream is down"}', "server", "upstream is down"),
    ],
    ids=["error-event", "data-then-done", "bare-message"],
)
async def test_an_error_sent_as_an_event_stream_shows_its_message(
    server: ReplayServer, status: int, body: bytes, kind: str, message: str
) -> None:
    server.enqueue(status, SSE, body)
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.status) == (kind, status)
    assert error.message.endswith(f"answered HTTP {status}: {message}")
    assert "data:" not in error.message


async def test_an_event_stream_error_without_json_is_quoted(server: ReplayServer) -> None:
    server.enqueue(503, SSE, b"data: overloaded, try later\n\n")
    error = await failure(f"{server.url}/v1")
    assert error.kind == "server"
    assert "data: overloaded, try later" in error.message


async def test_400_context_length_is_context_overflow(server: ReplayServer) -> None:
    body = (
        b'{"error":{"message":"This model\'s maximum context length is 128000 tokens.",'
        b'"type":"invalid_request_error","code":"context_length_exceeded"}}'
    )
    server.enqueue(400, "application/json", body)
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.code, error.retryable) == (
        "context_overflow",
        "context_length_exceeded",
        False,
    )


async def test_other_400_is_a_bad_request(server: ReplayServer) -> None:
    server.enqueue(400, "application/json", b'{"error":{"message":"Unknown parameter: foo"}}')
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.status) == ("bad_request", 400)
    assert "Unknown parameter: foo" in error.message


async def test_404_names_the_model_and_base_url(server: ReplayServer) -> None:
    server.enqueue(404, "application/json", b'{"error":{"message":"model not found"}}')
    error = await failure(f"{server.url}/v1")
    assert error.kind == "bad_request"
    assert "gpt-test" in error.message
    assert "OPENAI_BASE_URL" in error.message
    assert f"{server.url}/v1/chat/completions" in error.message


async def test_empty_replay_queue_surfaces_as_a_server_error(server: ReplayServer) -> None:
    error = await failure(f"{server.url}/v1")
    assert error.kind == "server"
    assert "no canned response left" in error.message


async def test_json_instead_of_a_stream_is_a_protocol_error(server: ReplayServer) -> None:
    server.enqueue(200, "application/json", b'{"choices":[{"message":{"content":"hi"}}]}')
    error = await failure(f"{server.url}/v1")
    assert error.kind == "protocol"
    assert "application/json" in error.message


async def test_connection_refused_names_the_base_url_variable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await failure(f"http://127.0.0.1:{port}/v1")
    assert error.kind == "network"
    assert "OPENAI_BASE_URL" in error.message
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in error.message


# --- failures inside the stream --------------------------------------------------


async def test_garbage_data_is_a_protocol_error_quoting_it(server: ReplayServer) -> None:
    server.enqueue(200, SSE, b"data: {not json at all\n\n")
    error = await failure(f"{server.url}/v1")
    assert error.kind == "protocol"
    assert "{not json at all" in error.message


async def test_chunk_of_the_wrong_shape_is_a_protocol_error(server: ReplayServer) -> None:
    server.enqueue(200, SSE, b'data: {"choices":"nope"}\n\n')
    assert (await failure(f"{server.url}/v1")).kind == "protocol"


async def test_stream_cut_before_finish_reason(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM.split(b"\n\n")[0] + b"\n\n")
    events = await collect(f"{server.url}/v1")
    assert events == [
        TextDelta("Hel"),
        StreamError(kind="protocol", message="stream ended before the model finished"),
    ]


async def test_rate_limit_error_in_stream_is_retryable(server: ReplayServer) -> None:
    body = b'data: {"error":{"message":"slow down","type":"rate_limit_error"}}\n\n'
    server.enqueue(200, SSE, body)
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.message, error.retryable) == ("rate_limit", "slow down", True)


async def test_stalled_stream_times_out(server: ReplayServer) -> None:
    # The first chunk arrives, then nothing for far longer than the idle timeout.
    server.enqueue(200, SSE, TEXT_STREAM, chunk_size=len(TEXT_STREAM) // 3, delay=30)
    events = await collect(f"{server.url}/v1", idle_timeout=0.2)
    assert events[0] == TextDelta("Hel")
    error = events[-1]
    assert isinstance(error, StreamError)
    assert (error.kind, error.retryable) == ("timeout", True)


async def test_cancellation_propagates(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM, chunk_size=len(TEXT_STREAM) // 3, delay=30)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(collect(f"{server.url}/v1", idle_timeout=60), timeout=0.3)
