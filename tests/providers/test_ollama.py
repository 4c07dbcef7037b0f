"""The Ollama provider: the host it reads, what it sends, how it reads what
comes back, and how the failures only Ollama has end its stream (those every
provider has: `test_every_provider.py`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parleyd.providers.events import (
    Done,
    ProviderEvent,
    StopReason,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
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
from parleyd.providers.ollama import DEFAULT_HOST, OllamaProvider, host_url
from tests.support.provider_events import assistant_message, joined_runs
from tests.support.providers_under_test import collected, final_error
from tests.support.replay_server import ReplayServer

NDJSON = "application/x-ndjson"
HELLO = ModelRequest(model="qwen3:8b", system="", messages=(UserMessage("hi"),))
SCHEMA: dict[str, object] = {"type": "object", "properties": {"path": {"type": "string"}}}


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def delta(at: str = "2025-10-21T09:14:03.1Z", **message: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": "", **message}
    return {"model": "qwen3:8b", "created_at": at, "message": message, "done": False}


def done(reason: str = "stop", **counts: int) -> dict[str, Any]:
    return {
        "model": "qwen3:8b",
        "created_at": "2025-10-21T09:14:04.2Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reason,
        **counts,
    }


TEXT_STREAM = ndjson(delta(content="Hel"), delta(content="lo"), done())


async def collect(
    base_url: str, request: ModelRequest = HELLO, *, idle_timeout: float = 10.0, **options: Any
) -> list[ProviderEvent]:
    return await collected(
        OllamaProvider(base_url, None, idle_timeout=idle_timeout, **options), request
    )


async def replayed(server: ReplayServer, body: bytes) -> list[ProviderEvent]:
    server.enqueue(200, NDJSON, body)
    return await collect(server.url)


# --- the host -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "url"),
    [
        (None, DEFAULT_HOST),
        ("", DEFAULT_HOST),
        ("  '' ", DEFAULT_HOST),
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("127.0.0.1:8080", "http://127.0.0.1:8080"),
        ('"localhost:11434"', "http://localhost:11434"),
        ("gpu-box", "http://gpu-box:11434"),
        ("gpu-box:99999", "http://gpu-box:11434"),
        ("gpu-box:port", "http://gpu-box:11434"),
        ("http://gpu-box", "http://gpu-box"),
        ("HTTPS://gpu-box", "https://gpu-box"),
        ("https://gpu-box:8443/", "https://gpu-box:8443"),
        ("http://gpu-box:11434/ollama/", "http://gpu-box:11434/ollama"),
        ("gpu-box/ollama", "http://gpu-box:11434/ollama"),
        ("ollama.com", "https://ollama.com"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:11435", "http://127.0.0.1:11435"),
        (":11435", "http://127.0.0.1:11435"),
        ("::", "http://[::1]:11434"),
        ("[::]:11435", "http://[::1]:11435"),
        ("::1", "http://[::1]:11434"),
        ("[fe80::1]", "http://[fe80::1]:11434"),
    ],
)
def test_host_is_read_as_ollama_reads_it(value: str | None, url: str) -> None:
    assert host_url(value) == url


async def test_a_host_without_scheme_reaches_the_server(server: ReplayServer) -> None:
    server.enqueue(200, NDJSON, TEXT_STREAM)
    port = server.url.rsplit(":", 1)[1]
    events = await collect(host_url(f"0.0.0.0:{port}"))
    assert joined_runs(events)[0] == TextDelta("Hello")
    assert server.requests[0].path == "/api/chat"


# --- the request ----------------------------------------------------------------------


async def test_request_body_converts_the_whole_conversation(server: ReplayServer) -> None:
    server.enqueue(200, NDJSON, TEXT_STREAM)
    request = ModelRequest(
        model="qwen3:8b",
        system="Be brief.",
        messages=(
            UserMessage("Read a.txt"),
            AssistantMessage(
                parts=(
                    ThinkingPart("They want a.txt."),
                    TextPart("Reading it."),
                    ToolCall("call_1", "read", '{"path":"a.txt"}'),
                )
            ),
            ToolResultMessage(call_id="call_1", name="read", content="hello"),
            AssistantMessage(parts=(ToolCall("call_2", "read", '{"path": "b'),)),
            ToolResultMessage(call_id="call_2", name="read", content="not run", is_error=True),
            AssistantMessage(parts=(RefusalPart("I can't."),)),
            AssistantMessage(parts=(TextPart("Done."),)),
            UserMessage("Thanks"),
        ),
        tools=(ToolSpec(name="read", description="Read a file.", parameters=SCHEMA),),
        max_output_tokens=256,
    )
    await collect(server.url, request)
    (sent,) = server.requests
    assert (sent.method, sent.path) == ("POST", "/api/chat")
    assert sent.json == {
        "model": "qwen3:8b",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Read a.txt"},
            {
                "role": "assistant",
                "content": "Reading it.",
                "thinking": "They want a.txt.",
                "tool_calls": [
                    {"id": "call_1", "function": {"name": "read", "arguments": {"path": "a.txt"}}}
                ],
            },
            {"role": "tool", "content": "hello", "tool_name": "read", "tool_call_id": "call_1"},
            {
                "role": "assistant",
                "content": "",
                # Cut-off arguments are no object, and Ollama takes nothing else.
                "tool_calls": [{"id": "call_2", "function": {"name": "read", "arguments": {}}}],
            },
            {"role": "tool", "content": "not run", "tool_name": "read", "tool_call_id": "call_2"},
            {"role": "assistant", "content": "I can't."},
            {"role": "assistant", "content": "Done."},
            {"role": "user", "content": "Thanks"},
        ],
        "stream": True,
        "tools": [
            {
                "type": "function",
                "function": {"name": "read", "description": "Read a file.", "parameters": SCHEMA},
            }
        ],
        "options": {"num_predict": 256},
    }


async def test_minimal_request_leaves_thinking_and_loading_to_the_server(
    server: ReplayServer,
) -> None:
    # No `think`: a thinking model thinks by default. No `keep_alive`: the
    # server's own setting decides how long the model stays loaded.
    server.enqueue(200, NDJSON, TEXT_STREAM)
    await collect(server.url)
    assert server.requests[0].json == {
        "model": "qwen3:8b",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }


@pytest.mark.parametrize("think", [True, False, "high"])
async def test_think_and_num_ctx_are_sent_when_configured(
    server: ReplayServer, think: bool | str
) -> None:
    server.enqueue(200, NDJSON, TEXT_STREAM)
    request = ModelRequest("qwen3:8b", "", (UserMessage("hi"),), max_output_tokens=100)
    await collect(server.url, request, think=think, num_ctx=32768)
    sent = server.requests[0].json
    assert sent["think"] == think
    assert sent["options"] == {"num_ctx": 32768, "num_predict": 100}


@pytest.mark.parametrize(
    ("arguments", "sent"),
    [("", {}), ("[1, 2]", {}), ('"a"', {}), ('{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]})],
)
async def test_call_arguments_go_back_as_an_object(
    server: ReplayServer, arguments: str, sent: dict[str, Any]
) -> None:
    server.enqueue(200, NDJSON, TEXT_STREAM)
    called = AssistantMessage(parts=(ToolCall("call_1", "read", arguments),))
    await collect(server.url, ModelRequest("qwen3:8b", "", (UserMessage("hi"), called)))
    (call,) = server.requests[0].json["messages"][1]["tool_calls"]
    assert call["function"]["arguments"] == sent


# --- the stream -----------------------------------------------------------------------


async def test_thinking_then_text_then_usage_and_done(server: ReplayServer) -> None:
    body = ndjson(
        delta(thinking="Just "),
        delta(thinking="greet."),
        delta(content="Hi"),
        done(prompt_eval_count=12, eval_count=7),
    )
    assert joined_runs(await replayed(server, body)) == [
        ThinkingDelta("Just greet."),
        TextDelta("Hi"),
        Usage(input_tokens=12, output_tokens=7),
        Done("end_turn", "stop"),
    ]


@pytest.mark.parametrize(
    ("reason", "stop"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("load", "end_turn"), (None, "end_turn")],
)
async def test_stop_reasons(server: ReplayServer, reason: str | None, stop: StopReason) -> None:
    line = done()
    line["done_reason"] = reason
    events = await replayed(server, ndjson(delta(content="x"), line))
    assert events[-1] == Done(stop, reason)


async def test_think_tags_in_the_content_are_thinking(server: ReplayServer) -> None:
    # What a model Ollama cannot parse the reasoning of streams, and every
    # thinking model on Ollama before 0.9.
    body = ndjson(
        delta(content="<th"),
        delta(content="ink>Count r's.</thi"),
        delta(content="nk>\n\nThree."),
        done(),
    )
    assert assistant_message(await replayed(server, body)).parts == (
        ThinkingPart("Count r's."),
        TextPart("\n\nThree."),
    )


async def test_text_held_back_as_a_possible_tag_stays_before_a_call(server: ReplayServer) -> None:
    call = {"function": {"name": "read", "arguments": {"path": "a.txt"}}}
    body = ndjson(delta(content="\n"), delta(tool_calls=[call]), done())
    assert assistant_message(await replayed(server, body)).parts[0] == TextPart("\n")


async def test_calls_without_ids_get_ids_of_their_own(server: ReplayServer) -> None:
    # The same call in two responses must not share an id (a client shows a
    # call by its id), and the same response must always give the same one.
    call = {"function": {"name": "read", "arguments": {"path": "a.txt"}}}
    first = ndjson(delta(at="2025-10-21T09:14:03.1Z", tool_calls=[call, call]), done())
    later = ndjson(delta(at="2025-10-21T09:15:41.7Z", tool_calls=[call]), done())
    responses = [await replayed(server, body) for body in (first, first, later)]
    ids = [
        [event.call_id for event in events if isinstance(event, ToolCallEnd)]
        for events in responses
    ]
    assert ids[0] == ids[1]
    assert len({*ids[0], *ids[2]}) == 3


async def test_a_call_without_arguments_has_empty_ones(server: ReplayServer) -> None:
    body = ndjson(delta(tool_calls=[{"id": "call_x", "function": {"name": "now"}}]), done())
    events = await replayed(server, body)
    assert ToolCallEnd(0, "call_x", "now", "{}") in events
    assert events[-1] == Done("tool_use", "stop")


async def test_nothing_after_the_done_line_is_read(server: ReplayServer) -> None:
    body = TEXT_STREAM + ndjson(delta(content="late"), done())
    assert joined_runs(await replayed(server, body)) == [
        TextDelta("Hello"),
        Usage(),
        Done("end_turn", "stop"),
    ]


async def test_an_answer_that_is_one_json_object_is_a_stream(server: ReplayServer) -> None:
    # ollama.com answers a streamed request with application/json.
    server.enqueue(200, "application/json", TEXT_STREAM)
    assert (await collect(server.url))[-1] == Done("end_turn", "stop")


# --- failures inside the stream -----------------------------------------------------


async def test_the_lines_before_a_garbage_line_are_read(server: ReplayServer) -> None:
    events = await replayed(server, ndjson(delta(content="Hi")) + b"{not json at all\n")
    assert events[0] == TextDelta("Hi")
    assert final_error(events).kind == "protocol"


async def test_a_stream_cut_inside_a_line_is_a_protocol_error(server: ReplayServer) -> None:
    events = await replayed(server, TEXT_STREAM[: TEXT_STREAM.rindex(b"done")])
    assert events[0] == TextDelta("Hello")
    error = events[-1]
    assert isinstance(error, StreamError)
    assert (error.kind, len(events)) == ("protocol", 2)
    assert "unreadable stream line" in error.message


async def test_context_overflow_sent_in_the_stream_is_recognised(server: ReplayServer) -> None:
    body = (
        ndjson(delta(content="Hi")) + b'{"error":"the input length exceeds the context length"}\n'
    )
    error = (await replayed(server, body))[-1]
    assert isinstance(error, StreamError)
    assert (error.kind, error.retryable) == ("context_overflow", False)


async def test_a_model_loading_longer_than_the_idle_timeout_is_waited_for(
    server: ReplayServer,
) -> None:
    # Ollama answers only once the model is loaded: the silence before the
    # answer starts is a wait, not a failure, until the load timeout.
    server.enqueue(200, NDJSON, TEXT_STREAM, wait=0.6)
    events = await collect(server.url, idle_timeout=0.2, load_timeout=10)
    assert events[-1] == Done("end_turn", "stop")


async def test_a_load_beyond_the_load_timeout_is_a_timeout_naming_the_setting(
    server: ReplayServer,
) -> None:
    server.enqueue(200, NDJSON, TEXT_STREAM, wait=30)
    error = final_error(await collect(server.url, idle_timeout=0.2, load_timeout=0.5))
    assert (error.kind, error.retryable) == ("timeout", True)
    assert error.message == (
        f"{server.url}/api/chat did not answer within 0.5 s, the longest a model may take "
        "to load (model_load_timeout)"
    )


async def test_silence_mid_answer_is_bounded_by_the_idle_timeout_not_the_load_timeout(
    server: ReplayServer,
) -> None:
    lines = TEXT_STREAM.splitlines(keepends=True)
    server.enqueue(200, NDJSON, b"".join(lines), chunk_size=len(lines[0]), delay=30)
    error = final_error(await collect(server.url, idle_timeout=0.2, load_timeout=10))
    assert (error.kind, error.retryable) == ("timeout", True)
    assert error.message == f"{server.url}/api/chat sent nothing for 0.2 s"


# --- failures before the stream -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind", "retryable"),
    [
        (
            500,
            b'{"error":"model requires more system memory (9.5 GiB) than is available (4.0 GiB)"}',
            "server",
            True,
        ),
        (400, b'{"error":"invalid think value: \\"huge\\""}', "bad_request", False),
    ],
)
async def test_an_error_body_gives_its_message(
    server: ReplayServer, status: int, body: bytes, kind: str, retryable: bool
) -> None:
    server.enqueue(status, "application/json; charset=utf-8", body)
    error = final_error(await collect(server.url))
    assert (error.kind, error.status, error.retryable) == (kind, status, retryable)
    message = json.loads(body)["error"]
    assert error.message == f"{server.url}/api/chat answered HTTP {status}: {message}"


# --- a round trip -------------------------------------------------------------------


async def test_two_turns_send_back_thinking_calls_and_results(server: ReplayServer) -> None:
    # Turn one: the model thinks and calls two tools (no ids, as Ollama before
    # 0.12.10 sends them), then, given the results, thinks and answers. Turn
    # two's request carries all of it: the thinking beside the calls it led
    # to, each call with the id it was given and arguments as an object, and
    # each result by tool name and id.
    server.enqueue_fixture("ollama/tool_calls_streamed")
    answer = ndjson(
        delta(thinking="Both came back."),
        delta(content="22\u00b0C and partly cloudy."),
        done(prompt_eval_count=260, eval_count=14),
    )
    server.enqueue(200, NDJSON, answer)
    server.enqueue(200, NDJSON, TEXT_STREAM)
    provider = OllamaProvider(server.url, None, num_ctx=8192)
    history: list[Message] = [UserMessage("What is the weather in New York?")]
    tools = (
        ToolSpec("get_temperature", "The temperature in a city.", SCHEMA),
        ToolSpec("get_conditions", "The weather in a city.", SCHEMA),
    )

    async def respond() -> AssistantMessage:
        request = ModelRequest("qwen3:8b", "Be brief.", tuple(history), tools)
        message = assistant_message([event async for event in provider.stream(request)])
        history.append(message)
        return message

    try:
        first = await respond()
        temperature, conditions = first.tool_calls
        history.append(ToolResultMessage(temperature.id, temperature.name, "22\u00b0C"))
        history.append(ToolResultMessage(conditions.id, conditions.name, "Partly cloudy"))
        await respond()
        history.append(UserMessage("Thanks"))
        await respond()
    finally:
        await provider.aclose()

    assert temperature.id != conditions.id
    *_, last = server.requests
    assert [request.json["options"] for request in server.requests] == [{"num_ctx": 8192}] * 3
    assert last.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the weather in New York?"},
        {
            "role": "assistant",
            "content": "",
            "thinking": "The user wants the weather in New York."
            " I should call get_temperature and get_conditions.",
            "tool_calls": [
                {
                    "id": temperature.id,
                    "function": {"name": "get_temperature", "arguments": {"city": "New York"}},
                },
                {
                    "id": conditions.id,
                    "function": {
                        "name": "get_conditions",
                        "arguments": {"city": "New York", "units": "metric"},
                    },
                },
            ],
        },
        {
            "role": "tool",
            "content": "22\u00b0C",
            "tool_name": "get_temperature",
            "tool_call_id": temperature.id,
        },
        {
            "role": "tool",
            "content": "Partly cloudy",
            "tool_name": "get_conditions",
            "tool_call_id": conditions.id,
        },
        {
            "role": "assistant",
            "content": "22\u00b0C and partly cloudy.",
            "thinking": "Both came back.",
        },
        {"role": "user", "content": "Thanks"},
    ]
