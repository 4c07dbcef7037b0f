"""The Chat Completions provider: what it sends, and how the failures only its
API has end its stream (those every provider has: `test_every_provider.py`)."""

from __future__ import annotations

import json
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
from tests.support.chat_streams import text_stream
from tests.support.provider_events import joined_runs
from tests.support.providers_under_test import OPENAI_CHAT, collected, final_error
from tests.support.replay_server import ReplayServer

SSE = "text/event-stream"
HELLO = ModelRequest(model="gpt-test", system="", messages=(UserMessage("hi"),))
TEXT_STREAM = text_stream("Hel", "lo")


async def collect(base_url: str, request: ModelRequest = HELLO) -> list[ProviderEvent]:
    return await OPENAI_CHAT.stream(base_url, request)


async def failure(base_url: str) -> StreamError:
    return final_error(await collect(base_url))


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


@pytest.mark.parametrize(
    ("model", "returned"),
    [
        ("deepseek-chat", True),
        ("deepseek-v4-pro", True),
        ("kimi-k2-thinking", True),
        ("gpt-4o-mini", False),
        ("deepseek-r1-distill-llama-70b", False),  # Groq's, which refuses the field
    ],
)
async def test_reasoning_goes_back_with_tool_calls_to_the_models_that_need_it(
    server: ReplayServer, model: str, returned: bool
) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    request = ModelRequest(
        model=model,
        system="",
        messages=(
            UserMessage("Read a.txt"),
            AssistantMessage(
                parts=(ThinkingPart("I need the file."), ToolCall("c1", "read", "{}"))
            ),
            ToolResultMessage(call_id="c1", name="read", content="hello"),
            AssistantMessage(parts=(ThinkingPart("It says hello."), TextPart("It says hello."))),
            UserMessage("Thanks"),
        ),
    )
    await collect(f"{server.url}/v1", request)
    (sent,) = server.requests
    reasoning = [message.get("reasoning_content") for message in sent.json["messages"]]
    # Only the response that called a tool carries it: the others' is not needed.
    assert reasoning == [None, "I need the file." if returned else None, None, None, None]


async def test_minimal_request_leaves_out_optional_fields(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(f"{server.url}/v1", HELLO)
    assert server.requests[0].json == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_extra_headers_are_sent(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    provider = OpenAIChatProvider(f"{server.url}/v1", None, extra_headers={"X-Title": "Parley"})
    events = await collected(provider, HELLO)
    assert joined_runs(events) == [TextDelta("Hello"), Done("end_turn", "stop")]
    assert server.requests[0].headers["x-title"] == "Parley"


@pytest.mark.parametrize("content_type", ["TEXT/EVENT-STREAM", "text/event-stream;charset=UTF-8"])
async def test_content_type_is_matched_loosely(server: ReplayServer, content_type: str) -> None:
    server.enqueue(200, content_type, TEXT_STREAM)
    assert (await collect(f"{server.url}/v1"))[-1] == Done("end_turn", "stop")


# --- failures before the stream ------------------------------------------------


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


async def test_other_400_is_a_bad_request(server: ReplayServer) -> None:
    server.enqueue(400, "application/json", b'{"error":{"message":"Unknown parameter: foo"}}')
    error = await failure(f"{server.url}/v1")
    assert (error.kind, error.status) == ("bad_request", 400)
    assert "Unknown parameter: foo" in error.message


async def test_empty_replay_queue_surfaces_as_a_server_error(server: ReplayServer) -> None:
    error = await failure(f"{server.url}/v1")
    assert error.kind == "server"
    assert "no canned response left" in error.message


# --- failures inside the stream --------------------------------------------------


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


async def test_a_refusal_beside_a_call_ends_the_turn_as_a_refusal(server: ReplayServer) -> None:
    call = {"index": 0, "id": "call_a", "function": {"name": "run_shell", "arguments": "{}"}}
    chunks = [
        {"choices": [{"index": 0, "delta": {"refusal": "I won't run that."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    body = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks)
    server.enqueue(200, SSE, body + b"data: [DONE]\n\n")
    events = await collect(f"{server.url}/v1")
    assert events[-1] == Done("refusal", "tool_calls")  # as Responses has it
