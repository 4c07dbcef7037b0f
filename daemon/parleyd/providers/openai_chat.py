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

import re
from collections.abc import AsyncIterator, Mapping
from itertools import groupby
from typing import Any, Unpack

import msgspec

from parleyd.providers.assembly import (
    PendingCall,
    ToolCalls,
    assembled,
    ended_early,
    stop_reason,
    unreadable,
)
from parleyd.providers.events import (
    Done,
    JoinedEvents,
    ProviderEvent,
    RefusalDelta,
    StopReason,
    ThinkingDelta,
    Usage,
)
from parleyd.providers.http_call import (
    Connection,
    Endpoint,
    HttpProvider,
    WireError,
    decoded,
    key_header,
    stream_error,
)
from parleyd.providers.messages import (
    AssistantMessage,
    Attachment,
    Message,
    ModelRequest,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
)
from parleyd.providers.sse import SseEvent, parse_sse, read_sse
from parleyd.providers.think_tags import ThinkTagStream
from parleyd.providers.user_content import Block, ContentShape

API_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


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


class OpenAIError(msgspec.Struct):
    """An error object, in a body or a chunk, and in the Responses API too."""

    message: str | None = None
    code: str | int | None = None
    type: str | None = None
    status_code: int | None = None  # Groq


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = []
    usage: _WireUsage | None = None
    x_groq: _XGroq | None = None
    error: OpenAIError | str | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: OpenAIError | str | None = None
    message: str | None = None


_chunk_decoder = msgspec.json.Decoder(_Chunk)
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)


# --- the provider -------------------------------------------------------------


class OpenAIChatProvider(HttpProvider):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        **connection: Unpack[Connection],
    ) -> None:
        endpoint = openai_endpoint(base_url, "/chat/completions", api_key, extra_headers)
        super().__init__(endpoint, read_error=read_error, parse=_parse_body, **connection)

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        return self._call(request_body(request), request.model)


def openai_endpoint(
    base_url: str, path: str, api_key: str | None, extra_headers: Mapping[str, str] | None
) -> Endpoint:
    """An OpenAI API's `path`, and the look-alikes' (see the module's doc)."""
    return Endpoint(
        url=f"{base_url.rstrip('/')}{path}",
        key_variable=API_KEY_ENV,
        url_variable=BASE_URL_ENV,
        headers={**(extra_headers or {}), **key_header("Authorization", api_key, prefix="Bearer ")},
    )


def _parse_body(chunks: AsyncIterator[bytes]) -> AsyncIterator[ProviderEvent]:
    return parse_chat_stream(read_sse(chunks))


# --- the request --------------------------------------------------------------


def request_body(request: ModelRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        # An empty list is rejected by OpenAI ("[] is too short"), so absent it is.
        body["tools"] = [function_tool(spec) for spec in request.tools]
    if request.max_output_tokens is not None:
        body["max_completion_tokens"] = request.max_output_tokens
    return body


# Thinking models that refuse the next request unless the reasoning that led
# to a tool call comes back with it, as `reasoning_content`: DeepSeek's own API
# in thinking mode, Kimi K2's thinking models. Everyone else is sent no
# reasoning: OpenAI has no field for it, and servers that check their input
# (the older DeepSeek R1 among them) refuse the unknown one.
_RETURNS_REASONING = re.compile(
    r"^(deepseek-(chat|reasoner|flash|v\d)|kimi-k2([.-]\d+)?-thinking|kimi-k2\.5)", re.I
)


def _messages(request: ModelRequest) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = (
        [{"role": "system", "content": request.system}] if request.system else []
    )
    reasoning = _RETURNS_REASONING.match(request.model) is not None
    # A `tool` message takes text only: what a run of results attached follows
    # the run, in one user message.
    for _, run in groupby(request.messages, key=type):
        messages = list(run)
        wire += [_message(message, reasoning) for message in messages]
        if attached := [block for message in messages for block in _attached(message)]:
            wire.append({"role": "user", "content": attached})
    return wire


def _message(message: Message, reasoning: bool) -> dict[str, Any]:
    match message:
        case UserMessage(attachments=()):
            return {"role": "user", "content": message.text}
        case UserMessage():
            return {"role": "user", "content": _CONTENT.user(message)}
        case ToolResultMessage(call_id=call_id, content=content):
            return {"role": "tool", "tool_call_id": call_id, "content": content}
        case AssistantMessage():
            return _assistant(message, reasoning)


# The audio Chat Completions takes, as its `input_audio` formats.
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/mp3": "mp3"}


def _attachment(attached: Attachment) -> Block | None:
    if attached.is_image:
        return {"type": "image_url", "image_url": {"url": attached.data_url}}
    if attached.mime_type == "application/pdf":
        file = {"filename": attached.file_name, "file_data": attached.data_url}
        return {"type": "file", "file": file}
    if (audio_format := _AUDIO_FORMATS.get(attached.mime_type)) is not None:
        return {
            "type": "input_audio",
            "input_audio": {"data": attached.data, "format": audio_format},
        }
    return None


def _text_block(text: str) -> Block:
    return {"type": "text", "text": text}


_CONTENT = ContentShape("Chat Completions", _attachment, _text_block)


def _attached(message: Message) -> list[Block]:
    """A tool result's attachments, after a text naming the call they came from."""
    if not isinstance(message, ToolResultMessage) or not message.attachments:
        return []
    heading = f"Attached to the result of the {message.name} call {message.call_id}:"
    return [_text_block(heading), *_CONTENT.attached(message.attachments)]


def _assistant(message: AssistantMessage, reasoning: bool) -> dict[str, Any]:
    # A refusal stands in for the text so the model still sees what it answered.
    content = message.text or message.refusal or None
    wire: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning and message.tool_calls and message.thinking:
        wire["reasoning_content"] = message.thinking
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


def function_tool(spec: ToolSpec) -> dict[str, Any]:
    """A tool as Chat Completions declares it, and Ollama's native API too."""
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.parameters,
        },
    }


# --- the stream ---------------------------------------------------------------


def parse_chat_stream(batches: AsyncIterator[list[SseEvent]]) -> AsyncIterator[ProviderEvent]:
    """Normalised events from a Chat Completions event stream, the deltas of each
    batch joined (see JoinedEvents); ends with one Done or StreamError."""
    return assembled(batches, _Assembler())


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
        self._content = ThinkTagStream()
        self._calls = ToolCalls()
        self._by_index: dict[int, PendingCall] = {}
        self._by_id: dict[str, PendingCall] = {}
        self._usage: Usage | None = None
        self._finish_reason: str | None = None
        self._refused = False
        self.ended = False

    def feed(self, sse: SseEvent, out: JoinedEvents) -> None:
        data = sse.data.strip()
        if data == "[DONE]":
            self.ended = True
            self.finish(out)  # what settles the stream is its finish reason, not the marker
            return
        if not data:
            return
        try:
            chunk = _chunk_decoder.decode(data)
        except msgspec.DecodeError as exc:
            out.add(unreadable("stream chunk", data, exc))
            self.ended = True
            return
        # Perplexity repeats usage on every chunk and OpenAI sends it last, so the
        # last one seen is the total. Groq's may only be inside x_groq.
        wire_usage = chunk.usage or (chunk.x_groq.usage if chunk.x_groq else None)
        if wire_usage is not None:
            self._usage = _usage(wire_usage)
        if chunk.error is not None:
            self.ended = True
            self._add_usage(out)
            out.add(stream_error(openai_wire_error(chunk.error)))
            return
        # Only choice 0 is Parley's: it never asks for n > 1.
        for choice in chunk.choices:
            if choice.index == 0:
                self._choice(choice, out)

    def finish(self, out: JoinedEvents) -> None:
        self._content.flush(out)
        if self._finish_reason is None:
            out.add(ended_early())
            return
        self._calls.end_all(out)
        self._add_usage(out)
        reason = stop_reason(
            self._finish_reason, _STOP_REASONS, called=bool(self._calls), refused=self._refused
        )
        out.add(Done(stop_reason=reason, raw_reason=self._finish_reason))

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
        if delta.content:
            self._content.feed(delta.content, out)
        if delta.refusal:
            self._refused = True
            out.text(RefusalDelta, delta.refusal)
        for call_delta in delta.tool_calls or ():
            self._tool_call(call_delta, out)

    def _tool_call(self, delta: _ToolCallDelta, out: JoinedEvents) -> None:
        call = self._find_call(delta)
        function = delta.function or _FunctionDelta()
        if call is None:
            call = self._calls.start(delta.id, function.name or "", out)
            self._by_id[call.call_id] = call
            if delta.index is not None:
                self._by_index[delta.index] = call
        if function.arguments:
            call.add(function.arguments, out)

    def _find_call(self, delta: _ToolCallDelta) -> PendingCall | None:
        # OpenAI and most copies number calls (from 0, or from 1 behind some
        # proxies) and send id and name only on a call's first delta. Mistral
        # sends no index at all: its calls are told apart by id, and a delta
        # with neither continues the call before it.
        if delta.index is not None:
            return self._by_index.get(delta.index)
        if delta.id:
            return self._by_id.get(delta.id)
        return self._calls.last

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


def openai_wire_error(error: OpenAIError | str) -> WireError:
    if isinstance(error, str):
        return WireError(message=error)
    # OpenRouter puts the HTTP status in `code`; Groq uses `status_code` beside a word code.
    status = (
        error.status_code
        if error.status_code is not None
        else (error.code if isinstance(error.code, int) else None)
    )
    code = error.code if isinstance(error.code, str) else None
    return WireError(message=error.message, code=code, type=error.type, status=status)


def read_error(body: bytes) -> WireError:
    """What a non-2xx body says went wrong: a JSON error envelope, or one sent as
    event-stream data by servers that stream every answer, errors included."""
    candidates: list[bytes | str] = [body, *(event.data for event in parse_sse(body))]
    for candidate in candidates:
        envelope = decoded(_error_decoder, candidate)
        if envelope is None:
            continue
        if isinstance(envelope.error, OpenAIError):
            return openai_wire_error(envelope.error)
        if envelope.error or envelope.message:
            return WireError(message=envelope.error or envelope.message)
    return WireError()
