"""The Anthropic Messages provider: what it sends, how it reads what comes
back, and how the failures inside a stream end it (the failures every provider
has: `test_every_provider.py`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parleyd.providers.anthropic import AnthropicProvider, CacheTtl
from parleyd.providers.events import (
    Done,
    ProviderEvent,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from parleyd.providers.messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
)
from tests.support.event_streams import typed_events
from tests.support.provider_events import assistant_message, joined_runs
from tests.support.providers_under_test import collected
from tests.support.replay_server import ReplayServer

SSE = "text/event-stream; charset=utf-8"
HELLO = ModelRequest(model="claude-test", system="", messages=(UserMessage("hi"),))
CACHED = {"type": "ephemeral", "ttl": "5m"}
SCHEMA: dict[str, object] = {"type": "object", "properties": {"path": {"type": "string"}}}
READ = ToolSpec(name="read", description="Read a file.", parameters=SCHEMA)


def message_start(**usage: Any) -> dict[str, Any]:
    return {
        "type": "message_start",
        "message": {"id": "msg_1", "role": "assistant", "content": [], "usage": usage},
    }


def text_block(index: int, *pieces: str) -> list[dict[str, Any]]:
    return [
        {"type": "content_block_start", "index": index, "content_block": {"type": "text"}},
        *(
            {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": piece},
            }
            for piece in pieces
        ),
        {"type": "content_block_stop", "index": index},
    ]


def message_end(stop_reason: str | None = "end_turn", **usage: Any) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": usage},
        {"type": "message_stop"},
    ]


TEXT_STREAM = typed_events(
    message_start(input_tokens=5, output_tokens=1),
    *text_block(0, "Hel", "lo"),
    *message_end(output_tokens=2),
)


async def collect(
    server: ReplayServer,
    request: ModelRequest = HELLO,
    *,
    cache_ttl: CacheTtl = "5m",
    thinking_budget: int | None = None,
) -> list[ProviderEvent]:
    provider = AnthropicProvider(
        server.url, "sk-ant-test", cache_ttl=cache_ttl, thinking_budget=thinking_budget
    )
    return await collected(provider, request)


async def sent_body(server: ReplayServer, request: ModelRequest, **options: Any) -> Any:
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(server, request, **options)
    return server.requests[-1].json


async def streamed(server: ReplayServer, body: bytes) -> list[ProviderEvent]:
    server.enqueue(200, SSE, body)
    return joined_runs(await collect(server))


# --- the request ---------------------------------------------------------------


async def test_request_body_converts_the_whole_conversation(server: ReplayServer) -> None:
    request = ModelRequest(
        model="claude-test",
        system="Be brief.",
        messages=(
            UserMessage("Read a.txt and b.txt"),
            AssistantMessage(
                parts=(
                    ThinkingPart("Both files.", signature="sig-1"),
                    TextPart("Reading them."),
                    ToolCall("toolu_1", "read", '{"path": "a.txt"}'),
                    ToolCall("toolu_2", "read", "{}"),
                )
            ),
            ToolResultMessage(call_id="toolu_1", name="read", content="alpha"),
            ToolResultMessage(call_id="toolu_2", name="read", content="no path", is_error=True),
            UserMessage("Also c.txt"),  # steered in after the results: the same user turn
            AssistantMessage(
                parts=(
                    ThinkingPart(redacted="opaque=="),
                    ThinkingPart("another provider's reasoning"),  # unsigned: not sent
                    ToolCall("toolu_3", "read", '{"path": "c.txt"}'),
                )
            ),
            ToolResultMessage(call_id="toolu_3", name="read", content="gamma"),
            AssistantMessage(parts=(RefusalPart("I can't."),)),
            UserMessage("Thanks"),
            AssistantMessage(parts=(ThinkingPart("unsigned only"),)),  # nothing to send
            UserMessage("Bye"),
        ),
        tools=(READ,),
        max_output_tokens=256,
    )
    assert await sent_body(server, request) == {
        "model": "claude-test",
        "max_tokens": 256,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": CACHED}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Read a.txt and b.txt"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Both files.", "signature": "sig-1"},
                    {"type": "text", "text": "Reading them."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "read",
                        "input": {"path": "a.txt"},
                    },
                    {"type": "tool_use", "id": "toolu_2", "name": "read", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "alpha"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": "no path",
                        "is_error": True,
                    },
                    {"type": "text", "text": "Also c.txt"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "redacted_thinking", "data": "opaque=="},
                    {
                        "type": "tool_use",
                        "id": "toolu_3",
                        "name": "read",
                        "input": {"path": "c.txt"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_3",
                        "content": "gamma",
                        "cache_control": CACHED,
                    }
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "I can't."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Thanks"},
                    {"type": "text", "text": "Bye", "cache_control": CACHED},
                ],
            },
        ],
        "tools": [{"name": "read", "description": "Read a file.", "input_schema": SCHEMA}],
        "stream": True,
    }


async def test_minimal_request_has_the_required_max_tokens(server: ReplayServer) -> None:
    assert await sent_body(server, HELLO) == {
        "model": "claude-test",
        "max_tokens": 8192,
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": CACHED}]}
        ],
        "stream": True,
    }


async def test_the_one_hour_cache_marks_every_breakpoint(server: ReplayServer) -> None:
    request = ModelRequest(model="claude-test", system="Be brief.", messages=(UserMessage("hi"),))
    body = await sent_body(server, request, cache_ttl="1h")
    one_hour = {"type": "ephemeral", "ttl": "1h"}
    assert body["system"][0]["cache_control"] == one_hour
    assert body["messages"][0]["content"][0]["cache_control"] == one_hour


async def test_a_thinking_budget_comes_on_top_of_the_answer(server: ReplayServer) -> None:
    request = ModelRequest(
        model="claude-test", system="", messages=(UserMessage("hi"),), max_output_tokens=1000
    )
    body = await sent_body(server, request, thinking_budget=2048)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 3048
    assert "thinking" not in await sent_body(server, request)


def tool_round(first: ThinkingPart | TextPart) -> tuple[Message, ...]:
    return (
        UserMessage("Read a.txt"),
        AssistantMessage(parts=(first, ToolCall("toolu_1", "read", '{"path": "a.txt"}'))),
        ToolResultMessage(call_id="toolu_1", name="read", content="alpha"),
    )


@pytest.mark.parametrize(
    ("messages", "thinks"),
    [
        (tool_round(ThinkingPart("Read it.", signature="sig")), True),
        (tool_round(ThinkingPart(redacted="opaque")), True),
        # The calls were made with thinking off: the loop ends that way.
        (tool_round(TextPart("Reading it.")), False),
        (tool_round(ThinkingPart("unsigned")), False),
        # A new prompt starts a new turn, which may think again.
        (
            (
                *tool_round(TextPart("Reading it.")),
                AssistantMessage((TextPart("Done."),)),
                UserMessage("Next"),
            ),
            True,
        ),
    ],
    ids=["signed", "redacted", "no-thinking", "unsigned", "new-turn"],
)
async def test_thinking_stays_as_the_tool_loop_began(
    server: ReplayServer, messages: tuple[Message, ...], thinks: bool
) -> None:
    request = ModelRequest(model="claude-test", system="", messages=messages)
    body = await sent_body(server, request, thinking_budget=1024)
    assert ("thinking" in body) is thinks


def test_a_thinking_budget_below_the_apis_floor_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1024 tokens"):
        AnthropicProvider("http://127.0.0.1:9", "sk-ant-test", thinking_budget=1000)


async def test_the_api_version_goes_with_the_key_never_as_a_bearer_token(
    server: ReplayServer,
) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(server)
    (sent,) = server.requests
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers


# --- the stream ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stop"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("pause_turn", "end_turn"),
        ("tool_use", "tool_use"),
        ("max_tokens", "max_tokens"),
        ("model_context_window_exceeded", "max_tokens"),
        ("refusal", "refusal"),
        ("a_reason_from_the_future", "end_turn"),
        (None, "end_turn"),
    ],
)
async def test_stop_reasons(server: ReplayServer, raw: str | None, stop: str) -> None:
    events = await streamed(server, typed_events(*text_block(0, "Hi"), *message_end(raw)))
    assert events[-1] == Done(stop, raw)


async def test_usage_counts_cache_reads_and_both_kinds_of_cache_write(
    server: ReplayServer,
) -> None:
    start = message_start(
        input_tokens=10,
        cache_read_input_tokens=50,
        cache_creation_input_tokens=500,
        cache_creation={"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 400},
        output_tokens=1,
    )
    body = typed_events(
        start,
        *text_block(0, "Hi"),
        *message_end(output_tokens=20, output_tokens_details={"thinking_tokens": 7}),
    )
    events = await streamed(server, body)
    assert events[-2:] == [
        Usage(
            input_tokens=560,
            output_tokens=20,
            cached_input_tokens=50,
            cache_write_tokens=500,
            cache_write_1h_tokens=400,
            reasoning_tokens=7,
        ),
        Done("end_turn", "end_turn"),
    ]


async def test_thinking_blocks_keep_their_signatures_apart(server: ReplayServer) -> None:
    # Omitted thinking (`display: omitted`) streams no text, only its signature.
    body = typed_events(
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "sig-a"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "redacted_thinking", "data": "opaque-b"},
        },
        {"type": "content_block_stop", "index": 1},
        *text_block(2, "Hi"),
        *message_end(),
    )
    events = await streamed(server, body)
    assert events[:3] == [
        ThinkingDelta("", signature="sig-a"),
        ThinkingDelta("", redacted="opaque-b"),
        TextDelta("Hi"),
    ]
    assert assistant_message(events).parts == (
        ThinkingPart(signature="sig-a"),
        ThinkingPart(redacted="opaque-b"),
        TextPart("Hi"),
    )


async def test_content_in_a_blocks_start_streams_like_its_deltas(server: ReplayServer) -> None:
    body = typed_events(
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "Hm.", "signature": "sig-a"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "text", "text": "Hi"},
        },
        {"type": "content_block_stop", "index": 1},
        *message_end(),
    )
    events = await streamed(server, body)
    assert assistant_message(events).parts == (
        ThinkingPart("Hm.", signature="sig-a"),
        TextPart("Hi"),
    )


async def test_unknown_events_blocks_and_deltas_pass_without_a_trace(
    server: ReplayServer,
) -> None:
    body = typed_events(
        message_start(input_tokens=1, output_tokens=1),
        {"type": "a_new_kind_of_event", "detail": {"anything": [1, 2]}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "container_upload", "file_id": "file_1"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "not for the user"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "text", "text": "", "citations": []},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "citations_delta", "citation": {"cited_text": "x"}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Cited."},
        },
        {"type": "content_block_stop", "index": 1},
        {"type": "ping"},
        *message_end(output_tokens=3),
    )
    assert await streamed(server, body) == [
        TextDelta("Cited."),
        Usage(input_tokens=1, output_tokens=3),
        Done("end_turn", "end_turn"),
    ]


async def test_each_call_ends_where_its_block_closes(server: ReplayServer) -> None:
    def call(index: int, call_id: str, *pieces: str) -> list[dict[str, Any]]:
        block = {"type": "tool_use", "id": call_id, "name": "read", "input": {}}
        return [
            {"type": "content_block_start", "index": index, "content_block": block},
            *(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": piece},
                }
                for piece in pieces
            ),
            {"type": "content_block_stop", "index": index},
        ]

    body = typed_events(
        *call(0, "toolu_a", "", '{"path"', ': "a"}'),
        *text_block(1, "and"),
        *call(2, "toolu_b", ""),
        *message_end("tool_use"),
    )
    assert await streamed(server, body) == [
        ToolCallStart(0, "toolu_a", "read"),
        ToolCallArgumentsDelta(0, "toolu_a", '{"path": "a"}'),
        ToolCallEnd(0, "toolu_a", "read", '{"path": "a"}'),
        TextDelta("and"),
        ToolCallStart(1, "toolu_b", "read"),
        ToolCallEnd(1, "toolu_b", "read", "{}"),
        Done("tool_use", "tool_use"),
    ]


@pytest.mark.parametrize(
    ("error_type", "kind", "retryable"),
    [("rate_limit_error", "rate_limit", True), ("api_error", "server", True)],
)
async def test_errors_inside_the_stream(
    server: ReplayServer, error_type: str, kind: str, retryable: bool
) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": "try later"}}
    events = await streamed(
        server, typed_events(message_start(input_tokens=1), *text_block(0, "Hi"), error)
    )
    assert events == [
        TextDelta("Hi"),
        StreamError(kind=kind, message="try later", retryable=retryable, code=error_type),
    ]


# --- a round trip -----------------------------------------------------------------


async def test_two_turns_send_back_thinking_and_calls_as_they_came(server: ReplayServer) -> None:
    # Turn one: the model thinks and calls a tool (a recorded response), then,
    # given the result, thinks again and answers (another). Turn two's request
    # must carry both responses exactly, thinking in place beside the call.
    calling = server.enqueue_fixture("anthropic/thinking_then_tool_use")
    answering = server.enqueue_fixture("anthropic/thinking_signature")
    server.enqueue(200, SSE, TEXT_STREAM)
    provider = AnthropicProvider(server.url, "sk-ant-test", thinking_budget=2048)
    history: list[Message] = [UserMessage("What version is it? Make a joke.")]
    tools = (ToolSpec("fixed_version", "The version.", {"type": "object"}),)

    async def respond() -> AssistantMessage:
        request = ModelRequest("claude-test", "Be brief.", tuple(history), tools)
        message = assistant_message([event async for event in provider.stream(request)])
        history.append(message)
        return message

    try:
        first = await respond()
        (call,) = first.tool_calls
        history.append(ToolResultMessage(call_id=call.id, name=call.name, content="1.2.3"))
        await respond()
        history.append(UserMessage("Thanks"))
        await respond()
    finally:
        await provider.aclose()

    *_, last = server.requests
    thinking = {"type": "enabled", "budget_tokens": 2048}
    assert [request.json["thinking"] for request in server.requests] == [thinking] * 3
    assert last.json["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What version is it? Make a joke."}]},
        {"role": "assistant", "content": recorded_blocks(calling.body)},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01825dXWLSoJwCst1qTsiWdb",
                    "content": "1.2.3",
                    "cache_control": CACHED,
                }
            ],
        },
        {"role": "assistant", "content": recorded_blocks(answering.body)},
        {"role": "user", "content": [{"type": "text", "text": "Thanks", "cache_control": CACHED}]},
    ]


async def test_redacted_thinking_goes_back_byte_for_byte_in_order(server: ReplayServer) -> None:
    recorded = server.enqueue_fixture("anthropic/redacted_thinking")
    server.enqueue(200, SSE, TEXT_STREAM)
    provider = AnthropicProvider(server.url, "sk-ant-test")
    prompt = UserMessage("ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING")
    try:
        request = ModelRequest("claude-test", "", (prompt,))
        response = assistant_message([event async for event in provider.stream(request)])
        follow_up = ModelRequest("claude-test", "", (prompt, response, UserMessage("And?")))
        async for _ in provider.stream(follow_up):
            pass
    finally:
        await provider.aclose()
    assert server.requests[1].json["messages"][1] == {
        "role": "assistant",
        "content": recorded_blocks(recorded.body),
    }


def recorded_blocks(body: bytes) -> list[dict[str, Any]]:
    """The content blocks a recorded stream built, read straight off its events
    (as the API documents them), for the ones Parley sends back."""
    blocks: dict[int, dict[str, Any]] = {}
    for line in body.decode().splitlines():
        if not line.startswith("data:"):
            continue
        event = json.loads(line.removeprefix("data:"))
        if event["type"] == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])
        elif event["type"] == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            for field in ("text", "thinking", "signature", "partial_json"):
                if field in delta:
                    block[field] = block.get(field, "") + delta[field]
    for block in blocks.values():
        if block["type"] == "tool_use":
            arguments = block.pop("partial_json", "")
            block["input"] = json.loads(arguments) if arguments else {}
            block.pop("caller", None)
    return list(blocks.values())
