"""OpenAI Chat Completions (`POST {base_url}/chat/completions`, streamed) and its look-alikes.

One parser serves OpenAI and the servers that copy its wire format (DeepSeek,
Groq, OpenRouter, Mistral, Together, Perplexity, Z.ai, vLLM, Ollama's `/v1`).
Their differences, each seen in a recorded stream, are handled here rather
than configured: reasoning in `reasoning_content` or `reasoning` or inside
`<think>` tags, tool calls numbered from 0 or 1 or not at all, usage in the
last chunk or on every chunk or under `x_groq`, and errors sent as a chunk of
an HTTP 200 stream.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec

from parleyd.providers.events import (
    Done,
    ErrorKind,
    JoinedEvents,
    ProviderEvent,
    RefusalDelta,
    StopReason,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from parleyd.providers.messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
)
from parleyd.providers.sse import SseEvent, parse_sse, read_sse
from parleyd.providers.think_tags import ThinkTagSplitter
from parleyd.providers.transport import model_client

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
_BODY_EXCERPT = 500
_DATA_EXCERPT = 120
_UNREACHABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)


# --- the wire format, as much of it as Parley reads --------------------------
# Decoding into typed structs validates as it parses: a chunk of the wrong shape
# becomes a protocol error instead of an AttributeError deep in the assembler.
# Unknown fields (obfuscation, reasoning_details, Perplexity's `message`,
# citations, logprobs, ...) are skipped by msgspec without being materialised.


class _FunctionDelta(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(msgspec.Struct):
    index: int | None = None
    id: str | None = None
    function: _FunctionDelta | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    refusal: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _Choice(msgspec.Struct):
    index: int = 0
    delta: _Delta | None = None
    finish_reason: str | None = None


class _PromptTokensDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _CompletionTokensDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _WireUsage(msgspec.Struct):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptTokensDetails | None = None
    completion_tokens_details: _CompletionTokensDetails | None = None
    prompt_cache_hit_tokens: int | None = None  # DeepSeek
    cached_tokens: int | None = None  # Together, at the top level of usage


class _XGroq(msgspec.Struct):
    usage: _WireUsage | None = None


class _WireError(msgspec.Struct):
    message: str | None = None
    code: str | int | None = None
    type: str | None = None
    status_code: int | None = None  # Groq


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _WireUsage | None = None
    x_groq: _XGroq | None = None
    error: _WireError | str | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _WireError | str | None = None
    message: str | None = None


_chunk_decoder = msgspec.json.Decoder(_Chunk)
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)


# --- the provider -------------------------------------------------------------


class OpenAIChatProvider:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        client: httpx.AsyncClient | None = None,
        idle_timeout: float = 60.0,
        connect_timeout: float = 10.0,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/chat/completions"
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            **(extra_headers or {}),
        }
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._idle_timeout = idle_timeout
        # httpx's read timeout bounds each socket read, so it is exactly an idle timeout.
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=idle_timeout, write=idle_timeout, pool=connect_timeout
        )
        self._owns_client = client is None
        self._client = client or model_client()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        body = msgspec.json.encode(request_body(request))
        try:
            async with self._client.stream(
                "POST", self._url, content=body, headers=self._headers, timeout=self._timeout
            ) as response:
                failure = await self._check_response(response, request.model)
                if failure is not None:
                    yield failure
                    return
                async for event in parse_chat_stream(read_sse(response.aiter_bytes())):
                    yield event
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            yield self._transport_error(exc)

    async def _check_response(self, response: httpx.Response, model: str) -> StreamError | None:
        """Why this response is not a stream to parse, or None when it is one."""
        if not response.is_success:
            return http_error(
                response.status_code,
                response.headers,
                await response.aread(),
                url=self._url,
                model=model,
            )
        content_type = response.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() == "text/event-stream":
            return None
        excerpt = _excerpt(await response.aread())
        return StreamError(
            kind="protocol",
            message=f"{self._url} answered {content_type or 'without a content type'}, "
            f"not an event stream: {excerpt}",
            status=response.status_code,
        )

    def _transport_error(self, exc: httpx.HTTPError | httpx.InvalidURL) -> StreamError:
        if isinstance(exc, httpx.ReadTimeout):
            return StreamError(
                kind="timeout",
                message=f"{self._url} sent nothing for {self._idle_timeout:g} s",
                retryable=True,
            )
        if isinstance(exc, _UNREACHABLE):
            # Refused, unresolvable, failed TLS or not a URL: nearly always the configuration.
            return StreamError(
                kind="network",
                message=f"cannot connect to {self._url} ({exc or type(exc).__name__}); "
                f"check {BASE_URL_ENV}",
                retryable=isinstance(exc, httpx.ConnectTimeout),
            )
        return StreamError(
            kind="network",
            message=f"connection to {self._url} failed: {exc or type(exc).__name__}",
            retryable=True,
        )


# --- the request --------------------------------------------------------------


def request_body(request: ModelRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request.system, request.messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        # An empty list is rejected by OpenAI ("[] is too short"), so absent it is.
        body["tools"] = [_tool(spec) for spec in request.tools]
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    return body


def _messages(system: str, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    wire = [{"role": "system", "content": system}] if system else []
    return wire + [_message(message) for message in messages]


def _message(message: Message) -> dict[str, Any]:
    match message:
        case UserMessage(text=text):
            return {"role": "user", "content": text}
        case ToolResultMessage(call_id=call_id, content=content):
            return {"role": "tool", "tool_call_id": call_id, "content": content}
        case AssistantMessage():
            return _assistant(message)


def _assistant(message: AssistantMessage) -> dict[str, Any]:
    # Reasoning is not sent back: DeepSeek rejects `reasoning_content` in input
    # messages and OpenAI has no field for it. A refusal stands in for the text
    # so the model still sees what it answered.
    content = message.text or message.refusal or None
    wire: dict[str, Any] = {"role": "assistant", "content": content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    elif content is None:
        wire["content"] = ""  # null content is only valid beside tool calls
    return wire


def _tool(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


# --- the stream ---------------------------------------------------------------


async def parse_chat_stream(
    batches: AsyncIterator[list[SseEvent]],
) -> AsyncIterator[ProviderEvent]:
    """Normalised events from a Chat Completions event stream, the deltas of each
    batch joined (see JoinedEvents); ends with one Done or StreamError."""
    assembler = _Assembler()
    out = JoinedEvents()
    async for batch in batches:
        _batch_events(assembler, batch, out)
        for event in out.take():
            yield event
        if assembler.ended:
            break
    if not assembler.failed:
        assembler.finish(out)
        for event in out.take():
            yield event


def _batch_events(assembler: _Assembler, batch: list[SseEvent], out: JoinedEvents) -> None:
    """The events of one batch, up to the stream's end if the batch holds it."""
    for sse in batch:
        data = sse.data.strip()
        if data == "[DONE]":
            assembler.ended = True
            break
        if not data:
            continue
        try:
            chunk = _chunk_decoder.decode(data)
        except msgspec.DecodeError as exc:
            out.add(
                StreamError(
                    kind="protocol",
                    message=f"unreadable stream chunk ({exc}): {data[:_DATA_EXCERPT]!r}",
                )
            )
            assembler.failed = assembler.ended = True
            break
        assembler.chunk(chunk, out)
        if assembler.failed:
            break


@dataclass
class _PendingCall:
    position: int
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)


_STOP_REASONS: dict[str, StopReason] = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "content_filter": "refusal",
}


class _Assembler:
    """Turns decoded chunks into events, keeping what only the end of the stream settles."""

    def __init__(self) -> None:
        self._think = ThinkTagSplitter()
        self._calls: list[_PendingCall] = []
        self._by_index: dict[int, _PendingCall] = {}
        self._by_id: dict[str, _PendingCall] = {}
        self._usage: Usage | None = None
        self._finish_reason: str | None = None
        self._refused = False
        # `failed`: the stream carried its own error, which ends it. `ended`:
        # nothing after this point is read (an error, or `[DONE]`).
        self.failed = False
        self.ended = False

    def chunk(self, chunk: _Chunk, out: JoinedEvents) -> None:
        # Perplexity repeats usage on every chunk and OpenAI sends it last, so the
        # last one seen is the total. Groq's may only be inside x_groq.
        wire_usage = chunk.usage or (chunk.x_groq.usage if chunk.x_groq else None)
        if wire_usage is not None:
            self._usage = _usage(wire_usage)
        if chunk.error is not None:
            self.failed = self.ended = True
            self._add_usage(out)
            out.add(stream_error(chunk.error))
            return
        # Only choice 0 is Parley's: it never asks for n > 1.
        for choice in chunk.choices:
            if choice.index == 0:
                self._choice(choice, out)

    def finish(self, out: JoinedEvents) -> None:
        for is_thinking, text in self._think.flush():
            out.text(ThinkingDelta if is_thinking else TextDelta, text)
        if self._finish_reason is None:
            out.add(StreamError(kind="protocol", message="stream ended before the model finished"))
            return
        for call in self._calls:
            out.add(
                ToolCallEnd(
                    index=call.position,
                    call_id=call.call_id,
                    name=call.name,
                    arguments="".join(call.arguments),
                )
            )
        self._add_usage(out)
        out.add(Done(stop_reason=self._stop_reason(), raw_reason=self._finish_reason))

    def _choice(self, choice: _Choice, out: JoinedEvents) -> None:
        if choice.finish_reason:
            self._finish_reason = choice.finish_reason
        delta = choice.delta
        if delta is None:
            return
        # vLLM has sent the same text in both fields; either is the whole reasoning.
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            out.text(ThinkingDelta, reasoning)
        if content := delta.content:
            if self._think.passing:
                out.text(TextDelta, content)
            else:
                for is_thinking, text in self._think.feed(content):
                    out.text(ThinkingDelta if is_thinking else TextDelta, text)
        if delta.refusal:
            self._refused = True
            out.text(RefusalDelta, delta.refusal)
        for call_delta in delta.tool_calls or ():
            self._tool_call(call_delta, out)

    def _tool_call(self, delta: _ToolCallDelta, out: JoinedEvents) -> None:
        call = self._find_call(delta)
        function = delta.function or _FunctionDelta()
        if call is None:
            call = self._new_call(delta, function.name or "")
            out.add(ToolCallStart(index=call.position, call_id=call.call_id, name=call.name))
        if function.arguments:
            call.arguments.append(function.arguments)
            out.arguments(call.position, call.call_id, function.arguments)

    def _find_call(self, delta: _ToolCallDelta) -> _PendingCall | None:
        # OpenAI and most copies number calls (from 0, or from 1 behind some
        # proxies) and send id and name only on a call's first delta. Mistral
        # sends no index at all: its calls are told apart by id, and a delta
        # with neither continues the call before it.
        if delta.index is not None:
            return self._by_index.get(delta.index)
        if delta.id:
            return self._by_id.get(delta.id)
        return self._calls[-1] if self._calls else None

    def _new_call(self, delta: _ToolCallDelta, name: str) -> _PendingCall:
        # Events number calls by their position in this response, whatever the
        # server's own numbering, so every provider's calls look alike downstream.
        position = len(self._calls)
        call = _PendingCall(position=position, call_id=delta.id or f"call_{position}", name=name)
        self._calls.append(call)
        self._by_id[call.call_id] = call
        if delta.index is not None:
            self._by_index[delta.index] = call
        return call

    def _stop_reason(self) -> StopReason:
        reason = _STOP_REASONS.get(self._finish_reason or "", "end_turn")
        if reason == "end_turn" and self._refused:
            return "refusal"
        if reason == "end_turn" and self._calls:
            return "tool_use"  # some servers (older vLLM, Ollama) say "stop" after tool calls
        return reason

    def _add_usage(self, out: JoinedEvents) -> None:
        if self._usage is not None:
            out.add(self._usage)


def _usage(wire: _WireUsage) -> Usage:
    prompt = wire.prompt_tokens_details
    completion = wire.completion_tokens_details
    cached = (prompt.cached_tokens if prompt else None) or wire.prompt_cache_hit_tokens
    return Usage(
        input_tokens=wire.prompt_tokens or 0,
        output_tokens=wire.completion_tokens or 0,
        cached_input_tokens=cached or wire.cached_tokens or 0,
        reasoning_tokens=(completion.reasoning_tokens if completion else None) or 0,
    )


# --- errors -------------------------------------------------------------------

_CONTEXT_OVERFLOW = re.compile(
    r"context[ _-]?(length|window)|maximum context|prompt is too long|too many tokens", re.I
)


def classify(
    status: int | None, code: str | None, error_type: str | None, message: str
) -> tuple[ErrorKind, bool]:
    """(kind, retryable) for an error the server described, over HTTP or inside a stream."""
    if _CONTEXT_OVERFLOW.search(f"{code or ''} {message}"):
        return "context_overflow", False
    if status in (401, 403) or code == "invalid_api_key":
        return "auth", False
    if code == "insufficient_quota":
        return "rate_limit", False  # an empty account: waiting will not refill it
    if status == 429 or "rate_limit" in f"{code or ''} {error_type or ''}":
        return "rate_limit", True
    if (status or 0) >= 500 or error_type == "server_error":
        return "server", True
    if status is not None and 400 <= status < 500:
        return "bad_request", False
    return "fatal", False


def stream_error(error: _WireError | str) -> StreamError:
    """The StreamError for an `error` object sent inside a 200 stream."""
    if isinstance(error, str):
        error = _WireError(message=error)
    # OpenRouter puts the HTTP status in `code`; Groq uses `status_code` beside a word code.
    status = (
        error.status_code
        if error.status_code is not None
        else (error.code if isinstance(error.code, int) else None)
    )
    code = error.code if isinstance(error.code, str) else None
    message = error.message or "the server reported an error without a message"
    kind, retryable = classify(status, code, error.type, message)
    return StreamError(kind=kind, message=message, retryable=retryable, status=status, code=code)


def http_error(
    status: int, headers: httpx.Headers, body: bytes, *, url: str, model: str
) -> StreamError:
    """The StreamError for a non-2xx answer, before any stream began."""
    error = _error_in_body(body)
    detail = error.message or _excerpt(body)
    code = error.code if isinstance(error.code, str) else None
    kind, retryable = classify(status, code, error.type, detail)
    if kind == "auth":
        message = f"{url} rejected the API key (HTTP {status}): {detail}. Check {API_KEY_ENV}."
    elif status == 404:
        message = (
            f"{url} answered 404 for model {model!r}: {detail}. "
            f"Check the model name and {BASE_URL_ENV}."
        )
    else:
        message = f"{url} answered HTTP {status}: {detail}"
    return StreamError(
        kind=kind,
        message=message,
        retryable=retryable,
        retry_after=retry_after(headers) if retryable else None,
        status=status,
        code=code,
    )


def _error_in_body(body: bytes) -> _WireError:
    """What a non-2xx body says went wrong: a JSON error envelope, or one sent as
    event-stream data by servers that stream every answer, errors included."""
    candidates: list[bytes | str] = [body, *(event.data for event in parse_sse(body))]
    for candidate in candidates:
        try:
            envelope = _error_decoder.decode(candidate)
        except msgspec.DecodeError:
            continue
        if isinstance(envelope.error, _WireError):
            return envelope.error
        if envelope.error or envelope.message:
            return _WireError(message=envelope.error or envelope.message)
    return _WireError()


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or a date)."""
    if (millis := _float(headers.get("retry-after-ms"))) is not None:
        return max(millis / 1000, 0.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    if (seconds := _float(value)) is not None:
        return max(seconds, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text[:_BODY_EXCERPT] or "(empty body)"
