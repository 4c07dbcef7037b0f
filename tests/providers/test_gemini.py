"""The Gemini provider: what it sends, how the failures only its API has end
its stream, and a conversation carried over two requests with its thinking,
signatures, calls and results (the failures every provider has:
`test_every_provider.py`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parleyd.providers.events import (
    Done,
    ProviderEvent,
    StreamError,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from parleyd.providers.gemini import SKIP_SIGNATURE_CHECK, GeminiProvider, request_body
from parleyd.providers.gemini_schema import gemini_schema
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
from tests.support.api_errors import google_error
from tests.support.fixtures import load_case
from tests.support.provider_events import assistant_message, joined_runs
from tests.support.providers_under_test import collected, final_error
from tests.support.replay_server import ReplayServer

SSE = "text/event-stream"
MODEL = "gemini-test"
HELLO = ModelRequest(model=MODEL, system="", messages=(UserMessage("hi"),))
DONE_CHUNK = {"candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": "STOP"}]}


def sse(*chunks: dict[str, Any]) -> bytes:
    """An event stream laid out as Gemini's: CRLF between events."""
    return b"".join(b"data: %b\r\n\r\n" % json.dumps(chunk).encode() for chunk in chunks)


def parts_chunk(*parts: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "responseId": "resp1"}


TEXT_STREAM = sse(parts_chunk({"text": "Hel"}), parts_chunk({"text": "lo"}, finish="STOP"))


async def collect(
    base_url: str,
    request: ModelRequest = HELLO,
    *,
    include_thoughts: bool | None = None,
    thinking_budget: int | None = None,
) -> list[ProviderEvent]:
    provider = GeminiProvider(
        base_url,
        "gemini-test-key",
        include_thoughts=include_thoughts,
        thinking_budget=thinking_budget,
    )
    return await collected(provider, request)


async def streamed(server: ReplayServer, body: bytes) -> list[ProviderEvent]:
    server.enqueue(200, SSE, body)
    return joined_runs(await collect(f"{server.url}/v1beta"))


async def failure(server: ReplayServer, status: int, body: bytes) -> StreamError:
    server.enqueue(status, "application/json; charset=UTF-8", body)
    return final_error(await collect(f"{server.url}/v1beta"))


# --- the request ---------------------------------------------------------------


async def test_request_body_converts_the_whole_conversation(server: ReplayServer) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    schema: dict[str, object] = {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
        "additionalProperties": False,
    }
    request = ModelRequest(
        model=MODEL,
        system="Be brief.",
        messages=(
            UserMessage("Read a.txt and b.txt"),
            AssistantMessage(
                parts=(
                    ThinkingPart("Both files are needed."),
                    TextPart("Reading them."),
                    ToolCall("call_a", "read", '{"path":"a.txt"}', signature="c2lnLWE="),
                    ToolCall("call_b", "read", '{"path":"b.txt"}'),
                )
            ),
            ToolResultMessage(call_id="call_a", name="read", content="alpha"),
            ToolResultMessage(call_id="call_b", name="read", content="no such file", is_error=True),
            AssistantMessage(parts=(TextPart("a.txt says alpha."), ThinkingPart("", "c2lnLXQ="))),
            UserMessage("Thanks"),
            AssistantMessage(
                parts=(
                    ThinkingPart("another provider's", redacted="opaque-payload"),
                    RefusalPart("I can't."),
                )
            ),
            AssistantMessage(parts=(TextPart("Done."),)),
            UserMessage(""),
            UserMessage("Bye"),
        ),
        tools=(ToolSpec(name="read", description="Read a file.", parameters=schema),),
        max_output_tokens=256,
    )
    await collect(f"{server.url}/v1beta", request, thinking_budget=1024)
    (sent,) = server.requests
    assert sent.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Read a.txt and b.txt"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Both files are needed.", "thought": True},
                    {"text": "Reading them."},
                    {
                        "functionCall": {"name": "read", "args": {"path": "a.txt"}},
                        "thoughtSignature": "c2lnLWE=",
                    },
                    {"functionCall": {"name": "read", "args": {"path": "b.txt"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "read", "response": {"output": "alpha"}}},
                    {"functionResponse": {"name": "read", "response": {"error": "no such file"}}},
                ],
            },
            {
                "role": "model",
                "parts": [{"text": "a.txt says alpha.", "thoughtSignature": "c2lnLXQ="}],
            },
            {"role": "user", "parts": [{"text": "Thanks"}]},
            {"role": "model", "parts": [{"text": "I can't."}, {"text": "Done."}]},
            {"role": "user", "parts": [{"text": "Bye"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "read",
                        "description": "Read a file.",
                        "parameters": {
                            "type": "object",
                            "properties": {"path": {"type": "string"}},
                            "required": ["path"],
                        },
                    }
                ]
            }
        ],
        "generationConfig": {
            "maxOutputTokens": 256,
            "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 1024},
        },
    }


THOUGHTS = {"generationConfig": {"thinkingConfig": {"includeThoughts": True}}}


@pytest.mark.parametrize(
    ("model", "include_thoughts", "extra"),
    [
        ("gemini-2.5-flash", None, THOUGHTS),
        ("gemini-3-pro-preview", None, THOUGHTS),
        ("gemini-flash-latest", None, THOUGHTS),
        ("gemini-2.0-flash-thinking-exp", None, THOUGHTS),
        # These refuse a request for thoughts ("Thinking is not enabled for ...").
        ("gemini-2.0-flash", None, {}),
        ("models/gemini-1.5-pro", None, {}),
        ("gemma-3-27b-it", None, {}),
        ("gemini-2.5-flash", False, {}),
        ("gemini-2.0-flash", True, THOUGHTS),
    ],
)
async def test_minimal_request_asks_for_thoughts_from_models_that_think(
    server: ReplayServer, model: str, include_thoughts: bool | None, extra: dict[str, Any]
) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    request = ModelRequest(model, "", (UserMessage("hi"),))
    await collect(f"{server.url}/v1beta", request, include_thoughts=include_thoughts)
    assert server.requests[0].json == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        **extra,
    }


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("models/gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash"),
        ("tunedModels/mine", "/v1beta/tunedModels/mine"),
    ],
)
async def test_a_model_resource_name_is_used_as_it_is(
    server: ReplayServer, model: str, path: str
) -> None:
    server.enqueue(200, SSE, TEXT_STREAM)
    await collect(f"{server.url}/v1beta", ModelRequest(model, "", (UserMessage("hi"),)))
    assert server.requests[0].path == f"{path}:streamGenerateContent?alt=sse"


def model_turn(*assistants: AssistantMessage) -> list[dict[str, Any]]:
    """The `parts` of the request's one model content made of `assistants`."""
    messages: tuple[Message, ...] = (UserMessage("go"), *assistants)
    body = request_body(ModelRequest(MODEL, "", messages))
    parts: list[dict[str, Any]] = body["contents"][1]["parts"]
    return parts


def call_part(name: str, args: dict[str, Any], signature: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def test_a_step_whose_first_call_lost_its_signature_gets_googles_placeholder() -> None:
    # A conversation begun with another provider: its calls were never signed.
    # Gemini 3 checks the first call of each step, so each step's first call
    # goes back with the documented placeholder, and the others as they are.
    foreign = AssistantMessage(
        parts=(ToolCall("call_1", "read", '{"path":"a"}'), ToolCall("call_2", "read", "{}"))
    )
    signed = AssistantMessage(parts=(ToolCall("call_3", "read", "{}", signature="cmVhbA=="),))
    assert model_turn(foreign, signed) == [
        call_part("read", {"path": "a"}, SKIP_SIGNATURE_CHECK),
        call_part("read", {}),
        call_part("read", {}, "cmVhbA=="),
    ]
    assert SKIP_SIGNATURE_CHECK == "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="


def test_arguments_that_are_not_a_json_object_go_as_none() -> None:
    broken = AssistantMessage(
        parts=(
            ToolCall("call_1", "read", '{"path": "a'),
            ToolCall("call_2", "read", "[1, 2]"),
            ToolCall("call_3", "read", ""),
        )
    )
    assert [part["functionCall"]["args"] for part in model_turn(broken)] == [{}, {}, {}]


def test_a_signature_with_no_unsigned_part_before_it_stands_alone() -> None:
    # The empty text part Gemini streams a response's last signature in.
    alone = AssistantMessage(parts=(ThinkingPart("", "c2lnLTE="),))
    after_signed_call = AssistantMessage(
        parts=(ToolCall("call_1", "read", "{}", signature="c2lnLWM="), ThinkingPart("", "c2lnLTI="))
    )
    assert model_turn(alone) == [{"text": "", "thoughtSignature": "c2lnLTE="}]
    assert model_turn(after_signed_call) == [
        call_part("read", {}, "c2lnLWM="),
        {"text": "", "thoughtSignature": "c2lnLTI="},
    ]


# --- tool schemas ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "sent"),
    [
        (
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 1, "exclusiveMinimum": 0}},
                "additionalProperties": False,
            },
            {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
        ),
        (
            {
                "anyOf": [{"type": "string", "description": "a title"}, {"type": "null"}],
                "default": None,
            },
            {"type": "string", "description": "a title", "nullable": True, "default": None},
        ),
        (
            {"type": ["string", "null"]},
            {"type": "string", "nullable": True},
        ),
        (
            {"type": ["string", "integer"]},
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        ),
        (
            {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string", "const": "x"}},
                ]
            },
            {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string", "enum": ["x"]}},
                ]
            },
        ),
        (
            {"type": "integer", "enum": [1, 2]},
            {"type": "integer"},
        ),
    ],
    ids=[
        "unknown-keys",
        "optional-field",
        "type-list-with-null",
        "type-list",
        "one-of",
        "int-enum",
    ],
)
def test_tool_schemas_keep_only_what_gemini_accepts(
    schema: dict[str, Any], sent: dict[str, Any]
) -> None:
    assert gemini_schema(schema) == sent


def test_parleys_own_tool_schemas_reach_gemini_whole() -> None:
    from parleyd.tools.registry import builtin_registry

    specs = builtin_registry().specs()
    subagent = next(spec for spec in specs if spec.name == "subagent")
    budget = gemini_schema(subagent.parameters)["properties"]["budget"]
    assert budget["nullable"] is True
    assert budget["properties"]["cost"] == {"type": "number", "nullable": True, "default": None}
    for spec in specs:
        assert "additionalProperties" not in json.dumps(gemini_schema(spec.parameters))


# --- failures before the stream ------------------------------------------------


async def test_403_is_an_auth_error_naming_the_key_variable(server: ReplayServer) -> None:
    message = "Method doesn't allow unregistered callers."
    error = await failure(server, 403, google_error(403, "PERMISSION_DENIED", message))
    assert (error.kind, error.code) == ("auth", "PERMISSION_DENIED")
    assert "GEMINI_API_KEY" in error.message


@pytest.mark.parametrize(
    ("status", "word"), [(500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")]
)
async def test_server_errors_are_retryable(server: ReplayServer, status: int, word: str) -> None:
    body = google_error(status, word, "The model is overloaded. Please try again later.")
    error = await failure(server, status, body)
    assert (error.kind, error.retryable, error.code) == ("server", True, word)
    assert error.message.endswith("The model is overloaded. Please try again later.")


async def test_an_error_in_a_list_is_read_too(server: ReplayServer) -> None:
    body = b"[" + google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted") + b"]"
    error = await failure(server, 429, body)
    assert (error.kind, error.retryable, error.code) == ("rate_limit", True, "RESOURCE_EXHAUSTED")
    assert error.message.endswith("answered HTTP 429: Resource has been exhausted")


# --- inside the stream ---------------------------------------------------------------


async def test_an_error_inside_the_stream_honours_its_retry_info(server: ReplayServer) -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7.5s"}
    error = json.loads(google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", retry))
    events = await streamed(server, sse(parts_chunk({"text": "Hel"}), error, DONE_CHUNK))
    assert events == [
        TextDelta("Hel"),
        StreamError(
            kind="rate_limit",
            message="Quota exceeded",
            retryable=True,
            retry_after=7.5,
            status=429,
            code="RESOURCE_EXHAUSTED",
        ),
    ]


async def test_a_server_error_inside_the_stream_is_retryable(server: ReplayServer) -> None:
    error = json.loads(google_error(500, "INTERNAL", "An internal error has occurred."))
    (failed,) = await streamed(server, sse(error))
    assert failed == StreamError(
        kind="server",
        message="An internal error has occurred.",
        retryable=True,
        status=500,
        code="INTERNAL",
    )


async def test_a_malformed_function_call_ends_in_a_retryable_error(server: ReplayServer) -> None:
    chunk = {
        "candidates": [
            {
                "content": {"parts": []},
                "finishReason": "MALFORMED_FUNCTION_CALL",
                "finishMessage": "Malformed function call: print(default_api.read(path=))",
            }
        ],
        "usageMetadata": {"promptTokenCount": 40, "totalTokenCount": 40},
    }
    events = await streamed(server, sse(chunk))
    assert events == [
        Usage(input_tokens=40),
        StreamError(
            kind="server",
            message="Gemini ended its response with MALFORMED_FUNCTION_CALL:"
            " Malformed function call: print(default_api.read(path=))",
            retryable=True,
            code="MALFORMED_FUNCTION_CALL",
        ),
    ]


@pytest.mark.parametrize("reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"])
async def test_a_response_withheld_by_a_filter_is_a_refusal(
    server: ReplayServer, reason: str
) -> None:
    events = await streamed(server, sse(parts_chunk({"text": "Sure"}, finish=reason)))
    assert events == [TextDelta("Sure"), Done("refusal", reason)]


async def test_a_blocked_prompt_is_a_refusal(server: ReplayServer) -> None:
    chunk = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 12, "totalTokenCount": 12},
    }
    events = await streamed(server, sse(chunk))
    assert events == [Usage(input_tokens=12), Done("refusal", "PROHIBITED_CONTENT")]


async def test_cached_and_tool_prompt_tokens_are_counted_as_input(server: ReplayServer) -> None:
    usage = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 800,
        "toolUsePromptTokenCount": 20,
        "candidatesTokenCount": 5,
        "thoughtsTokenCount": 30,
        "totalTokenCount": 1055,
    }
    chunk = {**parts_chunk({"text": "ok"}, finish="STOP"), "usageMetadata": usage}
    events = await streamed(server, sse(chunk))
    assert events[1] == Usage(
        input_tokens=1020, output_tokens=35, cached_input_tokens=800, reasoning_tokens=30
    )
    assert events[1].total_tokens == 1055


async def test_a_call_keeps_the_id_gemini_gives_it(server: ReplayServer) -> None:
    call = {"functionCall": {"id": "fc-7", "name": "read", "args": {"path": "a"}}}
    events = await streamed(server, sse(parts_chunk(call, finish="STOP")))
    assert events == [
        ToolCallStart(0, "fc-7", "read"),
        ToolCallArgumentsDelta(0, "fc-7", '{"path":"a"}'),
        ToolCallEnd(0, "fc-7", "read", '{"path":"a"}'),
        Done("tool_use", "STOP"),
    ]


async def test_streamed_arguments_at_every_kind_of_path(server: ReplayServer) -> None:
    def piece(path: str, **value: Any) -> dict[str, Any]:
        return {
            "functionCall": {"partialArgs": [{"jsonPath": path, **value}], "willContinue": True}
        }

    body = sse(
        parts_chunk({"functionCall": {"name": "plan", "willContinue": True}}),
        parts_chunk(piece("$.stops[1].name", stringValue="Ly", willContinue=True)),
        parts_chunk(piece("$.stops[1].name", stringValue="on")),
        parts_chunk(piece("$['odd key']", numberValue=2)),
        parts_chunk(piece("$.flags.fast", boolValue=True)),
        parts_chunk(piece("$.note", nullValue=None)),
        parts_chunk({"functionCall": {}}, finish="STOP"),
    )
    events = await streamed(server, body)
    end = events[-2]
    assert isinstance(end, ToolCallEnd)
    assert json.loads(end.arguments) == {
        "stops": [None, {"name": "Lyon"}],
        "odd key": 2,
        "flags": {"fast": True},
        "note": None,
    }


async def test_any_other_part_ends_the_call_being_streamed(server: ReplayServer) -> None:
    city = {"partialArgs": [{"jsonPath": "$.city", "stringValue": "Lyon"}], "willContinue": True}
    body = sse(
        parts_chunk({"functionCall": {"name": "plan", "willContinue": True}}),
        parts_chunk({"functionCall": city}),
        parts_chunk({"functionCall": {"name": "read", "args": {}}}, {"text": "Done."}),
        parts_chunk({"text": ""}, finish="STOP"),
    )
    assert await streamed(server, body) == [
        ToolCallStart(0, "call_resp1_0", "plan"),
        ToolCallArgumentsDelta(0, "call_resp1_0", '{"city":"Lyon"}'),
        ToolCallEnd(0, "call_resp1_0", "plan", '{"city":"Lyon"}'),
        ToolCallStart(1, "call_resp1_1", "read"),
        ToolCallArgumentsDelta(1, "call_resp1_1", "{}"),
        ToolCallEnd(1, "call_resp1_1", "read", "{}"),
        TextDelta("Done."),
        Done("tool_use", "STOP"),
    ]


async def test_an_unreadable_argument_path_is_a_protocol_error(server: ReplayServer) -> None:
    body = sse(
        parts_chunk({"functionCall": {"name": "plan", "willContinue": True}}),
        parts_chunk(
            {"functionCall": {"partialArgs": [{"jsonPath": "stops", "stringValue": "x"}]}},
            finish="STOP",
        ),
    )
    events = await streamed(server, body)
    assert events[0] == ToolCallStart(0, "call_resp1_0", "plan")
    error = events[-1]
    assert isinstance(error, StreamError)
    assert error.kind == "protocol"
    assert "'stops'" in error.message


async def test_a_stream_cut_while_a_call_streams_leaves_it_unfinished(server: ReplayServer) -> None:
    body = sse(
        parts_chunk({"functionCall": {"name": "plan", "willContinue": True}}),
        parts_chunk(
            {
                "functionCall": {
                    "partialArgs": [
                        {"jsonPath": "$.city", "stringValue": "Ly", "willContinue": True}
                    ],
                    "willContinue": True,
                }
            }
        ),
    )
    assert await streamed(server, body) == [
        ToolCallStart(0, "call_resp1_0", "plan"),
        StreamError(kind="protocol", message="stream ended before the model finished"),
    ]


# --- a conversation over two requests ------------------------------------------------


async def test_round_trip_sends_back_thinking_signed_calls_and_their_results(
    server: ReplayServer,
) -> None:
    # Turn one: Gemini thinks, makes a signed call without arguments, then
    # three whose arguments stream (recorded on Vertex AI). Turn two carries
    # all of it back, each signature on the part it came on.
    server.enqueue_fixture("gemini/vertex_streamed_function_call_args")
    server.enqueue_fixture("gemini/text")
    first = ModelRequest(
        MODEL, "You build screens.", (UserMessage("Read the theme, then A, B, C"),)
    )
    response = assistant_message(await collect(f"{server.url}/v1beta", first))
    results = tuple(
        ToolResultMessage(call_id=call.id, name=call.name, content=f"{call.name} {call.arguments}")
        for call in response.tool_calls
    )
    second = ModelRequest(MODEL, "You build screens.", (*first.messages, response, *results))
    events = await collect(f"{server.url}/v1beta", second)
    assert events[-1] == Done("end_turn", "STOP")

    recorded = [
        json.loads(line.removeprefix("data: "))
        for line in fixture_events("vertex_streamed_function_call_args")
    ]
    thought = recorded[0]["candidates"][0]["content"]["parts"][0]["text"]
    signature = recorded[1]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    _, sent = server.requests
    assert sent.json["contents"] == [
        {"role": "user", "parts": [{"text": "Read the theme, then A, B, C"}]},
        {
            "role": "model",
            "parts": [
                {"text": thought, "thought": True},
                call_part("read_theme", {}, signature),
                call_part("read_screen", {"id": "A"}),
                call_part("read_screen", {"id": "B"}),
                call_part("read_screen", {"id": "C"}),
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "read_theme",
                        "response": {"output": "read_theme {}"},
                    }
                },
                *(
                    {
                        "functionResponse": {
                            "name": "read_screen",
                            "response": {"output": f'read_screen {{"id":"{screen}"}}'},
                        }
                    }
                    for screen in "ABC"
                ),
            ],
        },
    ]


async def test_round_trip_sends_a_text_signature_back_on_its_part(server: ReplayServer) -> None:
    server.enqueue_fixture("gemini/thought_parts_with_signature")
    server.enqueue_fixture("gemini/text")
    first = ModelRequest(MODEL, "", (UserMessage("How do I cross the street?"),))
    response = assistant_message(await collect(f"{server.url}/v1beta", first))
    second = ModelRequest(MODEL, "", (*first.messages, response, UserMessage("Thanks")))
    await collect(f"{server.url}/v1beta", second)

    parts = [
        part
        for line in fixture_events("thought_parts_with_signature")
        for part in json.loads(line.removeprefix("data: "))["candidates"][0]["content"]["parts"]
    ]
    thoughts = "".join(part["text"] for part in parts if part.get("thought"))
    signed, *rest = [part for part in parts if not part.get("thought")]
    _, sent = server.requests
    assert sent.json["contents"][1] == {
        "role": "model",
        "parts": [
            {"text": thoughts, "thought": True},
            {"text": signed["text"], "thoughtSignature": signed["thoughtSignature"]},
            {"text": "".join(part["text"] for part in rest)},
        ],
    }
    assert sent.json["contents"][2] == {"role": "user", "parts": [{"text": "Thanks"}]}


def fixture_events(case: str) -> list[str]:
    """The `data:` lines of a recorded stream, read plainly."""
    body = load_case(f"gemini/{case}").body.decode()
    return [line for line in body.splitlines() if line.startswith("data: ")]
