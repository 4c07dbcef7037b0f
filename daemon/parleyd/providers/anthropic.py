"""Anthropic Messages (`POST {base_url}/v1/messages`, streamed).

A response is a sequence of content blocks, each opened, streamed and closed
by index: text, thinking (its signature on a delta of its own), redacted
thinking (one opaque payload), and tool use (its input as JSON text in
pieces). Thinking goes back on the next request exactly as it came, in its
place among the text and tool calls: the API checks the signatures and
refuses a conversation whose thinking was reordered or edited. Server tools
(web search, code execution) stream blocks of their own, which are the
server's business and are skipped; the text that cites them stays text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Unpack, get_args

import msgspec

from parleyd.providers.assembly import (
    PendingCall,
    ToolCalls,
    assembled,
    ended_early,
    known_type,
    stop_reason,
    unreadable,
)
from parleyd.providers.events import (
    Done,
    JoinedEvents,
    ProviderEvent,
    StopReason,
    TextDelta,
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
    Part,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
)
from parleyd.providers.sse import SseEvent, read_sse
from parleyd.providers.user_content import Block, ContentShape

API_KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
API_VERSION = "2023-06-01"
# The API requires max_tokens; this many when the session sets no limit.
DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024  # the API's own floor for budget_tokens
# Breakpoints on the latest two user turns: the last one writes the cache the
# next request reads, the one before reads what the previous request wrote.
_CACHED_USER_TURNS = 2

CacheTtl = Literal["5m", "1h"]


# --- the wire format, as much of it as Parley reads --------------------------
# Events are decoded by their `type` into typed structs, validated as they are
# parsed. Content blocks and their deltas are read loosely (one struct each,
# every field optional) because the API keeps adding block types, server
# tools' above all, which must pass without breaking the stream.


class _CacheCreation(msgspec.Struct):
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


class _OutputTokensDetails(msgspec.Struct):
    thinking_tokens: int = 0


class _WireUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: _CacheCreation | None = None
    output_tokens_details: _OutputTokensDetails | None = None


class _Message(msgspec.Struct):
    usage: _WireUsage | None = None


class _Block(msgspec.Struct):
    type: str
    text: str = ""
    thinking: str = ""
    signature: str = ""
    data: str = ""  # redacted_thinking
    id: str = ""
    name: str = ""


class _BlockDelta(msgspec.Struct):
    type: str
    text: str = ""
    thinking: str = ""
    signature: str = ""
    partial_json: str = ""


class _MessageDelta(msgspec.Struct):
    stop_reason: str | None = None


class _ErrorBody(msgspec.Struct):
    type: str | None = None
    message: str | None = None


class _Event(msgspec.Struct, tag_field="type"):
    pass


class _MessageStart(_Event, tag="message_start"):
    message: _Message


class _BlockStart(_Event, tag="content_block_start"):
    index: int
    content_block: _Block


class _BlockDeltaEvent(_Event, tag="content_block_delta"):
    index: int
    delta: _BlockDelta


class _BlockStop(_Event, tag="content_block_stop"):
    index: int


class _MessageDeltaEvent(_Event, tag="message_delta"):
    delta: _MessageDelta
    usage: _WireUsage | None = None


class _MessageStop(_Event, tag="message_stop"):
    pass


class _Ping(_Event, tag="ping"):
    pass


class _ErrorEvent(_Event, tag="error"):
    error: _ErrorBody


_KnownEvent = (
    _MessageStart
    | _BlockStart
    | _BlockDeltaEvent
    | _BlockStop
    | _MessageDeltaEvent
    | _MessageStop
    | _Ping
    | _ErrorEvent
)


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody | None = None


_event_decoder = msgspec.json.Decoder(_KnownEvent)
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)
_KNOWN_TYPES = frozenset(cls.__struct_config__.tag for cls in get_args(_KnownEvent))


# --- the provider -------------------------------------------------------------


class AnthropicProvider(HttpProvider):
    """`cache_ttl` is how long the prompt cache keeps what a request writes
    (an hour's writes cost more); `thinking_budget` turns extended thinking on
    with that many tokens to think in, on top of the answer's own."""

    name = "anthropic"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        cache_ttl: CacheTtl = "5m",
        thinking_budget: int | None = None,
        **connection: Unpack[Connection],
    ) -> None:
        if thinking_budget is not None and thinking_budget < MIN_THINKING_BUDGET:
            raise ValueError(
                f"the Anthropic thinking budget must be at least {MIN_THINKING_BUDGET} tokens,"
                f" not {thinking_budget}"
            )
        endpoint = Endpoint(
            url=f"{base_url.rstrip('/')}/v1/messages",
            key_variable=API_KEY_ENV,
            url_variable=BASE_URL_ENV,
            headers={"anthropic-version": API_VERSION, **key_header("x-api-key", api_key)},
        )
        super().__init__(endpoint, read_error=read_error, parse=_parse_body, **connection)
        self._cache_ttl: CacheTtl = cache_ttl
        self._thinking_budget = thinking_budget

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        body = request_body(
            request, cache_ttl=self._cache_ttl, thinking_budget=self._thinking_budget
        )
        return self._call(body, request.model)


def _parse_body(chunks: AsyncIterator[bytes]) -> AsyncIterator[ProviderEvent]:
    return parse_anthropic_stream(read_sse(chunks))


# --- the request --------------------------------------------------------------


def request_body(
    request: ModelRequest, *, cache_ttl: CacheTtl = "5m", thinking_budget: int | None = None
) -> dict[str, Any]:
    cache_control = {"type": "ephemeral", "ttl": cache_ttl}
    answer_tokens = request.max_output_tokens or DEFAULT_MAX_TOKENS
    body: dict[str, Any] = {"model": request.model, "max_tokens": answer_tokens}
    if request.system:
        body["system"] = [{"type": "text", "text": request.system, "cache_control": cache_control}]
    body["messages"] = turns = _messages(request.messages, cache_control)
    if request.tools:
        body["tools"] = [_tool(spec) for spec in request.tools]
    if thinking_budget is not None and _may_think(turns):
        # max_tokens counts the thinking too, and must exceed the budget.
        body["max_tokens"] = answer_tokens + thinking_budget
        body["thinking"] = {"type": "enabled", "budget_tokens": thinking_budget}
    body["stream"] = True
    return body


def _messages(messages: tuple[Message, ...], cache_control: dict[str, str]) -> list[dict[str, Any]]:
    """The API's alternating turns: the results of one response's calls and
    anything the user said after them share one user turn. The history is
    repaired (`repair.py`): results come right after their calls, every
    call's arguments are a JSON object, and nothing is empty."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = "assistant" if isinstance(message, AssistantMessage) else "user"
        blocks = _blocks(message)
        if not blocks:
            continue  # all its thinking unsigned: nothing the API would take
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] += blocks
        else:
            turns.append({"role": role, "content": blocks})
    user_turns = [turn for turn in turns if turn["role"] == "user"]
    for turn in user_turns[-_CACHED_USER_TURNS:]:
        turn["content"][-1]["cache_control"] = cache_control
    return turns


def _blocks(message: Message) -> list[dict[str, Any]]:
    match message:
        case UserMessage():
            return _CONTENT.user(message)
        case ToolResultMessage(call_id=call_id, content=content, is_error=is_error):
            result: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": call_id,
                # Text alone as the string it is; with attachments, text and image
                # or document blocks.
                "content": _CONTENT.tool_result(message) if message.attachments else content,
            }
            if is_error:
                result["is_error"] = True
            return [result]
        case AssistantMessage(parts=parts):
            return [block for part in parts if (block := _assistant_block(part)) is not None]


# The images the API takes (https://docs.claude.com/en/docs/build-with-claude/vision).
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def _attachment(attached: Attachment) -> Block | None:
    source = {"type": "base64", "media_type": attached.mime_type, "data": attached.data}
    if attached.mime_type in _IMAGE_TYPES:
        return {"type": "image", "source": source}
    if attached.mime_type == "application/pdf":
        return {"type": "document", "source": source, "title": attached.file_name}
    return None


def _text_block(text: str) -> Block:
    return {"type": "text", "text": text}


_CONTENT = ContentShape("Anthropic Messages", _attachment, _text_block)


def _assistant_block(part: Part) -> dict[str, Any] | None:
    match part:
        case ThinkingPart(redacted=str(data)):
            return {"type": "redacted_thinking", "data": data}
        case ThinkingPart(text=text, signature=str(signature)):
            return {"type": "thinking", "thinking": text, "signature": signature}
        case ThinkingPart():
            return None  # unsigned reasoning (another provider's) cannot pass as Claude's
        case TextPart(text=text) | RefusalPart(text=text):
            return {"type": "text", "text": text}
        case ToolCall(id=call_id, name=name):
            return {
                "type": "tool_use",
                "id": call_id,
                "name": name,
                "input": part.arguments_object() or {},
            }


def _may_think(turns: list[dict[str, Any]]) -> bool:
    """Whether thinking can be on for this request. While the model is still
    answering the results of its own calls, the API wants the response that
    made them to begin with thinking; one that does not (made with thinking
    off, or by another provider) can only be continued with thinking off."""
    if len(turns) < 2 or not any(block["type"] == "tool_result" for block in turns[-1]["content"]):
        return True
    return turns[-2]["content"][0]["type"] in ("thinking", "redacted_thinking")


def _tool(spec: ToolSpec) -> dict[str, Any]:
    return {"name": spec.name, "description": spec.description, "input_schema": spec.parameters}


# --- the stream ---------------------------------------------------------------


def parse_anthropic_stream(
    batches: AsyncIterator[list[SseEvent]],
) -> AsyncIterator[ProviderEvent]:
    """Normalised events from a Messages event stream, the deltas of each batch
    joined (see JoinedEvents); ends with one Done or StreamError."""
    return assembled(batches, _Assembler())


_STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "end_turn",
    # A server tool's long turn, paused: what streamed is the answer so far.
    "pause_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "model_context_window_exceeded": "max_tokens",
    "refusal": "refusal",
}


class _Assembler:
    """Turns decoded events into normalised ones, keeping what the blocks
    streaming need: which kind each open block is, and each call's arguments."""

    def __init__(self) -> None:
        # By block index: the text and thinking blocks open, and the calls.
        # Other blocks (server tools', and any newer kind) are skipped.
        self._blocks: dict[int, Literal["text", "thinking"]] = {}
        self._calls = ToolCalls()
        self._open_calls: dict[int, PendingCall] = {}
        self._usage = _WireUsage()
        self._stop_reason: str | None = None
        self.ended = False

    def feed(self, sse: SseEvent, out: JoinedEvents) -> None:
        data = sse.data
        if not data.strip():
            return
        try:
            event = _event_decoder.decode(data)
        except msgspec.DecodeError as exc:
            if not known_type(data, _KNOWN_TYPES):
                return  # an event type newer than this parser
            self.ended = True
            out.add(unreadable("stream event", data, exc))
            return
        match event:
            case _BlockDeltaEvent(index=index, delta=delta):
                self._delta(index, delta, out)
            case _BlockStart(index=index, content_block=block):
                self._start(index, block, out)
            case _BlockStop(index=index):
                self._stop(index, out)
            case _MessageStart(message=message):
                self._add_usage(message.usage)
            case _MessageDeltaEvent(delta=delta, usage=usage):
                self._stop_reason = delta.stop_reason or self._stop_reason
                self._add_usage(usage)
            case _MessageStop():
                self._end_message(out)
            case _ErrorEvent(error=error):
                self.ended = True
                out.add(stream_error(_wire_error(error)))
            case _Ping():
                pass

    def finish(self, out: JoinedEvents) -> None:
        out.add(ended_early("no message_stop"))

    def _start(self, index: int, block: _Block, out: JoinedEvents) -> None:
        match block.type:
            case "text":
                self._blocks[index] = "text"
                if block.text:
                    out.text(TextDelta, block.text)
            case "thinking":
                self._blocks[index] = "thinking"
                if block.thinking:
                    out.text(ThinkingDelta, block.thinking)
                if block.signature:
                    out.add(ThinkingDelta("", signature=block.signature))
            case "redacted_thinking":
                out.add(ThinkingDelta("", redacted=block.data))
            case "tool_use":
                self._open_calls[index] = self._calls.start(block.id, block.name, out)

    def _delta(self, index: int, delta: _BlockDelta, out: JoinedEvents) -> None:
        kind = self._blocks.get(index)
        match delta.type:
            case "text_delta" if kind == "text" and delta.text:
                out.text(TextDelta, delta.text)
            case "thinking_delta" if kind == "thinking" and delta.thinking:
                out.text(ThinkingDelta, delta.thinking)
            case "signature_delta" if kind == "thinking" and delta.signature:
                out.add(ThinkingDelta("", signature=delta.signature))
            case "input_json_delta" if (call := self._open_calls.get(index)) and delta.partial_json:
                call.add(delta.partial_json, out)

    def _stop(self, index: int, out: JoinedEvents) -> None:
        self._blocks.pop(index, None)
        if (call := self._open_calls.pop(index, None)) is not None:
            # A call without arguments streams one empty piece: its input is `{}`.
            call.end(out, arguments=call.text or "{}")

    def _end_message(self, out: JoinedEvents) -> None:
        self.ended = True
        if self._usage != _WireUsage():
            out.add(_usage(self._usage))
        # Anthropic says `tool_use` itself after its calls.
        reason = self._stop_reason
        out.add(Done(stop_reason=stop_reason(reason, _STOP_REASONS), raw_reason=reason))

    def _add_usage(self, wire: _WireUsage | None) -> None:
        # message_delta's counts are cumulative, and carry only some fields:
        # each one given replaces message_start's.
        if wire is not None:
            given = {k: v for k, v in msgspec.structs.asdict(wire).items() if v is not None}
            self._usage = msgspec.structs.replace(self._usage, **given)


def _usage(wire: _WireUsage) -> Usage:
    cache_read = wire.cache_read_input_tokens or 0
    cache_write = wire.cache_creation_input_tokens or 0
    creation = wire.cache_creation
    details = wire.output_tokens_details
    return Usage(
        input_tokens=(wire.input_tokens or 0) + cache_read + cache_write,
        output_tokens=wire.output_tokens or 0,
        cached_input_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=min(creation.ephemeral_1h_input_tokens, cache_write)
        if creation
        else 0,
        reasoning_tokens=details.thinking_tokens if details else 0,
    )


# --- errors -------------------------------------------------------------------


def _wire_error(error: _ErrorBody) -> WireError:
    # Anthropic's error `type` (overloaded_error, rate_limit_error, ...) is the
    # only code it gives, so it stands as the code too.
    return WireError(message=error.message, code=error.type, type=error.type)


def read_error(body: bytes) -> WireError:
    """What a non-2xx body says went wrong: `{"type": "error", "error": {type, message}}`."""
    envelope = decoded(_error_decoder, body)
    return _wire_error(envelope.error) if envelope and envelope.error else WireError()
