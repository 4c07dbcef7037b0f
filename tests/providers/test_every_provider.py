"""What every provider does alike: the headers it sends, and how each failure
before, instead of or inside a stream ends it. Where the APIs write the same
failure differently, each row gives that API's own bytes."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from parleyd.providers.events import StreamError, TextDelta
from tests.support.api_errors import anthropic_error, google_error
from tests.support.fixtures import load_case
from tests.support.provider_events import joined_runs
from tests.support.providers_under_test import (
    ANTHROPIC,
    EVERY_PROVIDER,
    GEMINI,
    HELLO,
    MODEL,
    OLLAMA,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    ProviderUnderTest,
    collected,
    final_error,
)
from tests.support.replay_server import ReplayServer

each_provider = pytest.mark.parametrize("provider", EVERY_PROVIDER, ids=lambda p: p.name)


def row(provider: ProviderUnderTest, *values: object, case: str = "") -> Any:
    """A parametrize row named by its provider, and `case` where it has several."""
    return pytest.param(provider, *values, id="-".join(filter(None, (provider.name, case))))


# --- the request ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "header", "sent_as", "accept"),
    [
        row(OPENAI_CHAT, "authorization", "Bearer {}", "text/event-stream"),
        row(OPENAI_RESPONSES, "authorization", "Bearer {}", "text/event-stream"),
        row(ANTHROPIC, "x-api-key", "{}", "text/event-stream"),
        row(GEMINI, "x-goog-api-key", "{}", "text/event-stream"),
        row(OLLAMA, "authorization", "Bearer {}", "application/x-ndjson"),
    ],
)
async def test_headers_carry_the_key_only_when_set_and_never_the_path(
    server: ReplayServer, provider: ProviderUnderTest, header: str, sent_as: str, accept: str
) -> None:
    for api_key in ("secret-key", None):
        server.enqueue_fixture(provider.text_answer)
        made = provider.provider_class(provider.base_url(server), api_key, idle_timeout=10)
        await collected(made, HELLO)
    with_key, without_key = server.requests
    assert with_key.headers[header] == sent_as.format("secret-key")
    assert header not in without_key.headers
    assert with_key.headers["content-type"] == "application/json"
    assert with_key.headers["accept"] == accept
    assert with_key.path == provider.endpoint
    assert "secret-key" not in with_key.path


@each_provider
async def test_a_base_url_ending_in_a_slash_posts_to_the_same_path(
    server: ReplayServer, provider: ProviderUnderTest
) -> None:
    server.enqueue_fixture(provider.text_answer)
    await provider.stream(provider.base_url(server) + "/")
    assert server.requests[0].path == provider.endpoint


# --- failures before the stream ------------------------------------------------


@each_provider
async def test_connection_refused_names_the_url_variable(provider: ProviderUnderTest) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (error,) = await provider.stream(f"http://127.0.0.1:{port}{provider.base_path}")
    assert isinstance(error, StreamError)
    assert error.kind == "network"
    assert provider.url_variable in error.message
    assert f"http://127.0.0.1:{port}{provider.endpoint}" in error.message


@pytest.mark.parametrize(
    ("provider", "body", "words"),
    [
        row(
            OPENAI_CHAT,
            b'{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}',
            "Incorrect API key provided",
        ),
        row(
            OPENAI_RESPONSES,
            b'{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}',
            "Incorrect API key provided",
        ),
        row(
            ANTHROPIC,
            anthropic_error("authentication_error", "invalid x-api-key"),
            "invalid x-api-key",
        ),
        row(
            GEMINI,
            google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
            "Request had invalid authentication credentials.",
        ),
        row(OLLAMA, b'{"error":"unauthorized"}', "unauthorized"),
    ],
)
async def test_401_names_the_key_variable(
    server: ReplayServer, provider: ProviderUnderTest, body: bytes, words: str
) -> None:
    server.enqueue(401, "application/json; charset=utf-8", body)
    (error,) = await provider.stream(provider.base_url(server))
    assert isinstance(error, StreamError)
    assert (error.kind, error.status, error.retryable) == ("auth", 401, False)
    assert words in error.message
    assert provider.key_variable in error.message
    assert provider.api_key not in error.message


@pytest.mark.parametrize(
    ("provider", "body", "words", "code"),
    [
        row(OPENAI_CHAT, b'{"error":{"message":"model not found"}}', "model not found", None),
        row(OPENAI_RESPONSES, b'{"error":{"message":"model not found"}}', "model not found", None),
        row(
            ANTHROPIC,
            anthropic_error("not_found_error", f"model: {MODEL}"),
            f"model: {MODEL}",
            "not_found_error",
        ),
        row(
            GEMINI,
            google_error(404, "NOT_FOUND", f"models/{MODEL} is not found for API version v1beta"),
            f"models/{MODEL} is not found for API version v1beta",
            "NOT_FOUND",
        ),
        row(OLLAMA, b'{"error":"model \'llama9\' not found"}', "model 'llama9' not found", None),
    ],
)
async def test_404_names_the_model_and_the_url_variable(
    server: ReplayServer, provider: ProviderUnderTest, body: bytes, words: str, code: str | None
) -> None:
    server.enqueue(404, "application/json", body)
    (error,) = await provider.stream(provider.base_url(server))
    assert isinstance(error, StreamError)
    assert (error.kind, error.status, error.code) == ("bad_request", 404, code)
    assert words in error.message
    assert f"'{MODEL}'" in error.message
    assert provider.url_variable in error.message
    assert provider.endpoint_url(server) in error.message


@pytest.mark.parametrize(
    ("provider", "body", "words", "code"),
    [
        row(
            OPENAI_CHAT,
            b'{"error":{"message":"This model\'s maximum context length is 128000 tokens.",'
            b'"type":"invalid_request_error","code":"context_length_exceeded"}}',
            "This model's maximum context length is 128000 tokens.",
            "context_length_exceeded",
        ),
        row(
            OPENAI_RESPONSES,
            b'{"error":{"message":"Your input exceeds the context window of this model.",'
            b'"type":"invalid_request_error","code":"context_length_exceeded"}}',
            "Your input exceeds the context window of this model.",
            "context_length_exceeded",
        ),
        row(
            ANTHROPIC,
            anthropic_error("invalid_request_error", "prompt is too long: 215433 tokens > 200000"),
            "prompt is too long: 215433 tokens > 200000",
            "invalid_request_error",
        ),
        row(
            GEMINI,
            google_error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed"
                " (1048576).",
            ),
            "The input token count (1200000) exceeds the maximum number of tokens allowed"
            " (1048576).",
            "INVALID_ARGUMENT",
        ),
        row(
            OLLAMA,
            b'{"error":"the input length exceeds the context length"}',
            "the input length exceeds the context length",
            None,
        ),
    ],
)
async def test_a_prompt_too_long_for_the_model_is_a_context_overflow(
    server: ReplayServer, provider: ProviderUnderTest, body: bytes, words: str, code: str | None
) -> None:
    server.enqueue(400, "application/json", body)
    (error,) = await provider.stream(provider.base_url(server))
    assert error == StreamError(
        kind="context_overflow",
        message=f"{provider.endpoint_url(server)} answered HTTP 400: {words}",
        status=400,
        code=code,
    )


@each_provider
async def test_a_page_that_is_no_api_error_is_quoted_in_a_retryable_server_error(
    server: ReplayServer, provider: ProviderUnderTest
) -> None:
    server.enqueue(502, "text/html", b"<h1>Bad Gateway</h1>")
    (error,) = await provider.stream(provider.base_url(server))
    assert error == StreamError(
        kind="server",
        message=f"{provider.endpoint_url(server)} answered HTTP 502: <h1>Bad Gateway</h1>",
        retryable=True,
        status=502,
    )


@each_provider
async def test_a_long_error_page_is_cut_short(
    server: ReplayServer, provider: ProviderUnderTest
) -> None:
    server.enqueue(500, "text/html", b"<h1>upstream exploded</h1>" + b"x" * 2000)
    error = final_error(await provider.stream(provider.base_url(server)))
    assert (error.kind, error.status, error.retryable) == ("server", 500, True)
    assert error.message.startswith(
        f"{provider.endpoint_url(server)} answered HTTP 500: <h1>upstream exploded</h1>"
    )
    assert len(error.message) < 700


@pytest.mark.parametrize(
    ("provider", "content_type"),
    [
        *(row(provider, "text/html", case="html") for provider in EVERY_PROVIDER),
        # Ollama's own answer to a streamed request may be application/json.
        *(
            row(provider, "application/json", case="json")
            for provider in EVERY_PROVIDER
            if provider != OLLAMA
        ),
    ],
)
async def test_an_answer_that_is_not_a_stream_is_a_protocol_error(
    server: ReplayServer, provider: ProviderUnderTest, content_type: str
) -> None:
    server.enqueue(200, content_type, b'{"answer": "not streamed"}')
    (error,) = await provider.stream(provider.base_url(server))
    assert isinstance(error, StreamError)
    assert error.kind == "protocol"
    assert content_type in error.message


# --- failures inside the stream --------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "body", "quoted"),
    [
        row(OPENAI_CHAT, b"data: {not json at all\n\n", "{not json at all", case="not-json"),
        row(OPENAI_CHAT, b'data: {"choices":"nope"}\n\n', '{"choices":"nope"}', case="misshapen"),
        row(OPENAI_RESPONSES, b"data: {not json at all\n\n", "{not json at all", case="not-json"),
        row(
            OPENAI_RESPONSES,
            b"event: response.output_text.delta\n"
            b'data: {"type":"response.output_text.delta","delta":["no"]}\n\n',
            '{"type":"response.output_text.delta","delta":["no"]}',
            case="misshapen",
        ),
        row(
            ANTHROPIC,
            b"event: message_start\ndata: {not json at all\n\n",
            "{not json at all",
            case="not-json",
        ),
        row(
            ANTHROPIC,
            b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":"nope"}\n\n',
            '{"type":"content_block_delta","delta":"nope"}',
            case="misshapen",
        ),
        row(GEMINI, b"data: {not json at all\r\n\r\n", "{not json at all", case="not-json"),
        row(
            GEMINI,
            b'data: {"candidates":"nope"}\r\n\r\n',
            '{"candidates":"nope"}',
            case="misshapen",
        ),
        row(OLLAMA, b"{not json at all\n", "{not json at all", case="not-json"),
        row(
            OLLAMA,
            b'{"message":"nope","done":false}\n',
            '{"message":"nope","done":false}',
            case="misshapen",
        ),
    ],
)
async def test_an_unreadable_or_misshapen_event_is_a_protocol_error_quoting_it(
    server: ReplayServer, provider: ProviderUnderTest, body: bytes, quoted: str
) -> None:
    text = load_case(provider.text_answer)
    server.enqueue(200, text.content_type, body)
    (error,) = await provider.stream(provider.base_url(server))
    assert isinstance(error, StreamError)
    assert error.kind == "protocol"
    assert quoted in error.message


def stalling_answer(server: ReplayServer, provider: ProviderUnderTest) -> None:
    """Queue the provider's recorded text answer to arrive all but its last
    line, and then nothing for far longer than any idle timeout here."""
    text = load_case(provider.text_answer)
    all_but_the_last_line = text.body.rstrip().rfind(b"\n") + 1
    server.enqueue(200, text.content_type, text.body, chunk_size=all_but_the_last_line, delay=30)


@each_provider
async def test_a_stalled_stream_times_out_after_the_text_that_came(
    server: ReplayServer, provider: ProviderUnderTest
) -> None:
    stalling_answer(server, provider)
    arrived, error = await provider.stream(provider.base_url(server), idle_timeout=0.2)
    assert isinstance(error, StreamError)
    assert (error.kind, error.retryable) == ("timeout", True)
    server.enqueue_fixture(provider.text_answer)
    answer = joined_runs(await provider.stream(provider.base_url(server)))[0]
    assert isinstance(arrived, TextDelta) and isinstance(answer, TextDelta)
    assert arrived.text
    assert answer.text.startswith(arrived.text)


@each_provider
async def test_cancellation_propagates(server: ReplayServer, provider: ProviderUnderTest) -> None:
    stalling_answer(server, provider)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider.stream(provider.base_url(server), idle_timeout=60), 0.3)
