"""The Responses provider: what it sends, how it reads calls and reasoning that
arrive in any order the format allows, and a two-turn conversation whose
second request carries the first turn's encrypted reasoning, call and result
(the failures every provider has: `test_every_provider.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from parleyd.providers.events import (
    Done,
    ProviderEvent,
    StreamError,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
)
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
from parleyd.providers.openai_responses import OpenAIResponsesProvider, Reasoning
from parleyd.store.log import read_log
from parleyd.store.records import AssistantResponse
from parleyd.tools.files import ReadFile
from tests.support.event_streams import typed_events
from tests.support.in_process import in_process_session
from tests.support.provider_events import joined_runs
from tests.support.providers_under_test import collected
from tests.support.replay_server import ReplayServer

SSE = "text/event-stream"
HELLO = ModelRequest(model="gpt-test", system="", messages=(UserMessage("hi"),))
SCHEMA: dict[str, object] = {"type": "object", "properties": {"path": {"type": "string"}}}


COMPLETED = {"type": "response.completed", "response": {"status": "completed"}}
TEXT_STREAM = typed_events(
    {"type": "response.output_text.delta", "delta": "Hel", "output_index": 0},
    {"type": "response.output_text.delta", "delta": "lo", "output_index": 0},
    COMPLETED,
)


async def collect(
    base_url: str, request: ModelRequest = HELLO, *, reasoning: Reasoning | None = None
) -> list[ProviderEvent]:
    provider = OpenAIResponsesProvider(base_url, "sk-test", idle_timeout=10, reasoning=reasoning)
    return await collected(provider, request)


async def replayed(server: ReplayServer, body: bytes) -> list[ProviderEvent]:
    server.enqueue(200, SSE, body)
    return joined_runs(await collect(f"{server.url}/v1"))


# --- the request ---------------------------------------------------------------

CONVERSATION = ModelRequest(
    model="gpt-test",
    system="Be brief.",
    messages=(
        UserMessage("Read a.txt"),
        AssistantMessage(
            parts=(
                ThinkingPart("**Reading**\n\nThe file first.", redacted="gAAAA-one"),
                TextPart("Reading it."),
                ToolCall("call_1", "read", '{"path":"a.txt"}'),
                ThinkingPart("", redacted="gAAAA-two"),
                ToolCall("call_2", "read", "{}"),
            )
        ),
        ToolResultMessage(call_id="call_1", name="read", content="hello"),
        ToolResultMessage(call_id="call_2", name="read", content="no path", is_error=True),
        AssistantMessage(
            parts=(
                ThinkingPart("DeepSeek's reasoning text, with nothing to send back"),
                TextPart("It says hello."),
                RefusalPart("I can't say more."),
                TextPart(""),
            )
        ),
        UserMessage("Thanks"),
    ),
    tools=(ToolSpec(name="read", description="Read a file.", parameters=SCHEMA),),
    max_output_tokens=256,
)


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


async def test_request_body_converts_the_whole_conversation(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(f"{server.url}/v1/", CONVERSATION, reasoning=Reasoning(effort="low"))
    (sent,) = server.requests
    assert sent.path == "/v1/responses"
    assert sent.json == {
        "model": "gpt-test",
        "instructions": "Be brief.",
        "input": [
            _user("Read a.txt"),
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "**Reading**\n\nThe file first."}],
                "encrypted_content": "gAAAA-one",
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Reading it."}],
            },
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "read",
                "arguments": '{"path":"a.txt"}',
            },
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-two"},
            {"type": "function_call", "call_id": "call_2", "name": "read", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "hello"},
            {"type": "function_call_output", "call_id": "call_2", "output": "no path"},
            {
                "type": "message",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "It says hello."},
                    {"type": "refusal", "refusal": "I can't say more."},
                ],
            },
            _user("Thanks"),
        ],
        "stream": True,
        "store": False,
        "tools": [
            {
                "type": "function",
                "name": "read",
                "description": "Read a file.",
                "parameters": SCHEMA,
                "strict": False,
            }
        ],
        "max_output_tokens": 256,
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    }
    assert "previous_response_id" not in sent.json


async def test_without_reasoning_no_reasoning_is_asked_for_or_sent(server: ReplayServer) -> None:
    # A model that does not reason refuses `reasoning` and the `include` alike.
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(f"{server.url}/v1", CONVERSATION)
    sent = server.requests[0].json
    assert "reasoning" not in sent
    assert "include" not in sent
    assert [item["type"] for item in sent["input"]] == [
        "message",
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "message",
        "message",
    ]


async def test_minimal_request_leaves_out_optional_fields(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(f"{server.url}/v1", HELLO, reasoning=Reasoning())
    assert server.requests[0].json == {
        "model": "gpt-test",
        "input": [_user("hi")],
        "stream": True,
        "store": False,
        "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"],
    }


# --- calls and reasoning, in any order the format allows --------------------------


def _added(output_index: int, item_id: str, call_id: str, name: str) -> dict[str, Any]:
    item = {"type": "function_call", "id": item_id, "call_id": call_id, "name": name}
    return {"type": "response.output_item.added", "output_index": output_index, "item": item}


def _args(delta: str, **where: Any) -> dict[str, Any]:
    return {"type": "response.function_call_arguments.delta", "delta": delta, **where}


async def test_calls_are_matched_by_item_id_or_output_index_each_ended_once(
    server: ReplayServer,
) -> None:
    events = await replayed(
        server,
        typed_events(
            _added(0, "fc_a", "call_a", "read"),
            _added(1, "fc_b", "call_b", "list"),
            _args('{"path":', item_id="fc_a"),
            _args('{"dir":"."}', output_index=1),
            _args('"a.txt"}', output_index=0, item_id="fc_a"),
            {"type": "response.function_call_arguments.done", "item_id": "fc_b", "arguments": "?"},
            {
                "type": "response.output_item.done",
                "output_index": 1,
                "item": {
                    "type": "function_call",
                    "id": "fc_b",
                    "call_id": "call_b",
                    "name": "list",
                },
            },
            {
                "type": "response.output_item.done",
                "item": {"type": "function_call", "call_id": "call_a", "name": "read"},
            },
            COMPLETED,
        ),
    )
    assert events == [
        ToolCallStart(0, "call_a", "read"),
        ToolCallStart(1, "call_b", "list"),
        ToolCallArgumentsDelta(0, "call_a", '{"path":'),
        ToolCallArgumentsDelta(1, "call_b", '{"dir":"."}'),
        ToolCallArgumentsDelta(0, "call_a", '"a.txt"}'),
        ToolCallEnd(1, "call_b", "list", '{"dir":"."}'),
        ToolCallEnd(0, "call_a", "read", '{"path":"a.txt"}'),
        Done("tool_use", "completed"),
    ]


async def test_arguments_that_never_streamed_come_from_the_finished_item(
    server: ReplayServer,
) -> None:
    # Some servers send a call whole, in its done item only, or end it with the
    # response and no done item at all.
    events = await replayed(
        server,
        typed_events(
            {
                "type": "response.output_item.done",
                "output_index": 0,
                "item": {
                    "type": "function_call",
                    "id": "fc_a",
                    "call_id": "call_a",
                    "name": "read",
                    "arguments": '{"path":"a.txt"}',
                },
            },
            _added(1, "fc_b", "call_b", "list"),
            COMPLETED,
        ),
    )
    assert events == [
        ToolCallStart(0, "call_a", "read"),
        ToolCallArgumentsDelta(0, "call_a", '{"path":"a.txt"}'),
        ToolCallEnd(0, "call_a", "read", '{"path":"a.txt"}'),
        ToolCallStart(1, "call_b", "list"),
        ToolCallEnd(1, "call_b", "list", ""),
        Done("tool_use", "completed"),
    ]


async def test_arguments_for_a_call_never_announced_are_a_protocol_error(
    server: ReplayServer,
) -> None:
    events = await replayed(server, typed_events(_args("{}", item_id="fc_unknown"), COMPLETED))
    assert events == [
        StreamError(
            kind="protocol", message="function call arguments arrived for a call never announced"
        )
    ]


async def test_an_event_parley_does_not_read_may_have_any_shape(server: ReplayServer) -> None:
    events = await replayed(
        server,
        typed_events(
            {"type": "response.output_text.delta", "delta": "Hi", "output_index": 0},
            {"type": "response.future_thing.delta", "delta": {"kind": "not text"}, "item": 3},
            COMPLETED,
        ),
    )
    assert events == [TextDelta("Hi"), Done("end_turn", "completed")]


# --- a round trip through a real session -------------------------------------------


async def test_second_request_carries_the_first_turns_reasoning_call_and_result(
    server: ReplayServer, tmp_path: Path
) -> None:
    (tmp_path / "README.md").write_text("# Parley\n")
    first = server.enqueue_fixture("openai_responses/reasoning_summary_encrypted_function_call")
    server.enqueue_fixture("openai_responses/text")
    provider = OpenAIResponsesProvider(
        f"{server.url}/v1", "sk-test", idle_timeout=10, reasoning=Reasoning(effort="low")
    )
    session = in_process_session(tmp_path, provider, ReadFile())
    try:
        assert await session.prompt("What is this project called?", []) == "end_turn"
    finally:
        await provider.aclose()

    reasoning = _finished_items(first.body, "reasoning")[0]
    summary = "\n\n".join(part["text"] for part in reasoning["summary"])
    asked, answered = (request.json for request in server.requests)
    assert asked["include"] == ["reasoning.encrypted_content"]
    assert asked["input"] == [_user("What is this project called?")]
    *history, result = answered["input"]
    assert history == [
        _user("What is this project called?"),
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": summary}],
            "encrypted_content": reasoning["encrypted_content"],
        },
        {
            "type": "function_call",
            "call_id": "call_written_read_readme",
            "name": "read_file",
            "arguments": '{"path":"README.md"}',
        },
    ]
    assert result["type"] == "function_call_output"
    assert result["call_id"] == "call_written_read_readme"
    assert "# Parley" in result["output"]
    # The log keeps the payload byte for byte, and whose it is: a loaded session
    # sends the same, and only to this provider.
    recorded = [r for r in read_log(session.log.folder).records if isinstance(r, AssistantResponse)]
    assert recorded[0].message.parts[0] == ThinkingPart(
        summary, redacted=reasoning["encrypted_content"], origin="openai-responses"
    )


def _finished_items(body: bytes, kind: str) -> list[dict[str, Any]]:
    """The items of this kind a stream finished, as its `output_item.done` events hold them."""
    events = [
        json.loads(line.removeprefix(b"data: "))
        for line in body.splitlines()
        if line.startswith(b"data: ")
    ]
    return [
        event["item"]
        for event in events
        if event["type"] == "response.output_item.done" and event["item"]["type"] == kind
    ]


async def test_a_refusal_beside_a_call_ends_the_turn_as_a_refusal(server: ReplayServer) -> None:
    events = await replayed(
        server,
        typed_events(
            {"type": "response.refusal.delta", "delta": "I won't run that."},
            _added(1, "fc_a", "call_a", "run_shell"),
            _args("{}", item_id="fc_a"),
            COMPLETED,
        ),
    )
    assert events[-1] == Done("refusal", "completed")  # as Chat Completions has it
