"""OpenAI Responses (`POST {base_url}/responses`, streamed), used statelessly.

Every request carries the whole conversation with `store: false` and never a
`previous_response_id`: nothing depends on the server keeping a response.
Reasoning survives between requests as the encrypted items the API hands back
(`include: ["reasoning.encrypted_content"]`), replayed in order and without
their ids, since an id names a stored item and there is none to name.

The stream is a sequence of typed events around output items (messages,
reasoning, function calls), each numbered by `output_index` and named by an
item id. The same parser serves OpenAI and the servers that copy the format
(DeepSeek and OpenRouter stream `reasoning_text` instead of summaries, and
OpenRouter adds comments and a `[DONE]`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Unpack

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
    RefusalDelta,
    StopReason,
    StreamError,
    TextDelta,
    ThinkingDelta,
    Usage,
)
from parleyd.providers.http_call import Connection, HttpProvider, WireError, stream_error
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
from parleyd.providers.openai_chat import (
    OpenAIError,
    openai_endpoint,
    openai_wire_error,
    read_error,
)
from parleyd.providers.sse import SseEvent, read_sse
from parleyd.providers.user_content import Block, ContentShape

# Between two parts of one reasoning summary: each part opens with its own bold title.
_SUMMARY_PART_BREAK = "\n\n"


@dataclass(frozen=True)
class Reasoning:
    """Ask a reasoning model for its summaries and its encrypted reasoning.

    Only for models that reason: the API refuses `reasoning` and the encrypted
    reasoning `include` for the others. `effort` is the API's own word
    (`minimal`, `low`, `medium`, `high`, ...); None leaves the model's default."""

    effort: str | None = None

    def wire(self) -> dict[str, str]:
        wire = {"summary": "auto"}
        if self.effort is not None:
            wire["effort"] = self.effort
        return wire


# OpenAI's reasoning models: the GPT-5 family and the o-series.
_REASONING_MODEL = re.compile(r"^(gpt-5|o\d)", re.I)


def reasoning_for(model: str) -> Reasoning | None:
    """What to ask `model` for: summaries and encrypted reasoning if it reasons."""
    return Reasoning() if _REASONING_MODEL.match(model.rsplit("/", 1)[-1]) else None


# --- the wire format, as much of it as Parley reads --------------------------
# One flat struct takes every event: each field is read by the events that have
# it, and msgspec skips the rest (obfuscation, logprobs, the response object's
# settings) without materialising them.


class _SummaryText(msgspec.Struct):
    text: str = ""


class _Item(msgspec.Struct):
    type: str
    id: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    encrypted_content: str | None = None
    summary: list[_SummaryText] | None = None


class _InputDetails(msgspec.Struct):
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _WireUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None


class _IncompleteDetails(msgspec.Struct):
    reason: str | None = None


class _Response(msgspec.Struct):
    status: str | None = None
    usage: _WireUsage | None = None
    error: OpenAIError | None = None
    incomplete_details: _IncompleteDetails | None = None


class _Event(msgspec.Struct):
    type: str
    delta: str | None = None
    item_id: str | None = None
    output_index: int | None = None
    summary_index: int | None = None
    arguments: str | None = None
    item: _Item | None = None
    response: _Response | None = None
    # An `error` event: the API reference puts code and message at the top
    # level; a recorded stream nests them in `error`.
    code: str | int | None = None
    message: str | None = None
    error: OpenAIError | None = None


_event_decoder = msgspec.json.Decoder(_Event)


# --- the provider -------------------------------------------------------------


class OpenAIResponsesProvider(HttpProvider):
    name = "openai-responses"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        reasoning: Reasoning | None = None,
        **connection: Unpack[Connection],
    ) -> None:
        endpoint = openai_endpoint(base_url, "/responses", api_key, extra_headers)
        # The same error envelope as Chat Completions.
        super().__init__(endpoint, read_error=read_error, parse=_parse_body, **connection)
        self._reasoning = reasoning

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        return self._call(request_body(request, self._reasoning), request.model)


def _parse_body(chunks: AsyncIterator[bytes]) -> AsyncIterator[ProviderEvent]:
    return parse_responses_stream(read_sse(chunks))


# --- the request --------------------------------------------------------------


def request_body(request: ModelRequest, reasoning: Reasoning | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "input": _input(request.messages, replay_reasoning=reasoning is not None),
        "stream": True,
        "store": False,
    }
    if request.system:
        body["instructions"] = request.system
    if request.tools:
        body["tools"] = [_tool(spec) for spec in request.tools]
    if request.max_output_tokens is not None:
        body["max_output_tokens"] = request.max_output_tokens
    if reasoning is not None:
        body["reasoning"] = reasoning.wire()
        body["include"] = ["reasoning.encrypted_content"]
    return body


def _attachment(attached: Attachment) -> Block | None:
    if attached.is_image:
        return {"type": "input_image", "image_url": attached.data_url}
    if attached.mime_type == "application/pdf":
        return {
            "type": "input_file",
            "filename": attached.file_name,
            "file_data": attached.data_url,
        }
    return None


def _input_text(text: str) -> Block:
    return {"type": "input_text", "text": text}


_CONTENT = ContentShape("Responses", _attachment, _input_text)


def _input(messages: tuple[Message, ...], *, replay_reasoning: bool) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        match message:
            case UserMessage():
                content = _CONTENT.user(message)
                items.append({"type": "message", "role": "user", "content": content})
            case ToolResultMessage(call_id=call_id, content=text, attachments=attachments):
                # Text alone as the string it is; with attachments, input items.
                output = _CONTENT.tool_result(message) if attachments else text
                items.append({"type": "function_call_output", "call_id": call_id, "output": output})
            case AssistantMessage():
                items += _assistant_items(message, replay_reasoning=replay_reasoning)
    return items


def _assistant_items(message: AssistantMessage, *, replay_reasoning: bool) -> list[dict[str, Any]]:
    """The response's parts as the output items they came from, in their order:
    side-by-side text and refusals are one message, each reasoning and each call
    an item of its own."""
    items: list[dict[str, Any]] = []
    for is_content, parts in groupby(message.parts, key=_is_message_content):
        if is_content:
            if content := [entry for part in parts if (entry := _content(part))]:
                items.append({"type": "message", "role": "assistant", "content": content})
            continue
        for part in parts:
            match part:
                case ToolCall(id=call_id, name=name, arguments=arguments):
                    items.append(
                        {
                            "type": "function_call",
                            "call_id": call_id,
                            "name": name,
                            "arguments": arguments,
                        }
                    )
                case ThinkingPart(text=text, redacted=str() as payload) if replay_reasoning:
                    items.append(_reasoning_item(text, payload))
                # Other reasoning stays out. Without its encrypted payload (DeepSeek's,
                # OpenRouter's) an item would have to name a stored one, and
                # `store: false` stores none; a request that asks for no reasoning is
                # for a model that does not reason.
    return items


def _is_message_content(part: Part) -> bool:
    return isinstance(part, TextPart | RefusalPart)


def _content(part: Part) -> dict[str, str] | None:
    match part:
        case TextPart(text=text) if text:
            return {"type": "output_text", "text": text}
        case RefusalPart(text=text) if text:
            return {"type": "refusal", "refusal": text}
    return None


def _reasoning_item(summary: str, payload: str) -> dict[str, Any]:
    # No `id`: with `store: false` the API has no item of that id and refuses it.
    return {
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": summary}] if summary else [],
        "encrypted_content": payload,
    }


def _tool(spec: ToolSpec) -> dict[str, Any]:
    # Left out, `strict` is true here (unlike Chat Completions) whenever the schema
    # allows it, which makes every optional argument required: the model would fill
    # in the optional arguments Parley's tools leave out.
    return {
        "type": "function",
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
        "strict": False,
    }


# --- the stream ---------------------------------------------------------------


def parse_responses_stream(
    batches: AsyncIterator[list[SseEvent]],
) -> AsyncIterator[ProviderEvent]:
    """Normalised events from a Responses event stream, the deltas of each batch
    joined (see JoinedEvents); ends with one Done or StreamError."""
    return assembled(batches, _Assembler())


class _Assembler:
    """Turns decoded events into Parley's, keeping each call's state until it ends."""

    def __init__(self) -> None:
        self._calls = ToolCalls()
        # A call is named by its output index, its item id and its call id; an
        # event may carry any of them, so each leads to the call.
        self._by_key: dict[tuple[str, str | int], PendingCall] = {}
        self._refused = False
        self.ended = False

    def feed(self, sse: SseEvent, out: JoinedEvents) -> None:
        data = sse.data.strip()
        if not data or data == "[DONE]":  # OpenRouter's, after the terminal event
            return
        try:
            event = _event_decoder.decode(data)
        except msgspec.DecodeError as exc:
            # An event Parley does not read may be shaped unlike those it does: passed over.
            if known_type(data, _HANDLERS):
                self._fail(out, unreadable("stream event", data, exc))
            return
        if handler := _HANDLERS.get(event.type):
            handler(self, event, out)

    def finish(self, out: JoinedEvents) -> None:
        out.add(ended_early())

    def text(self, event: _Event, out: JoinedEvents) -> None:
        if event.delta:
            out.text(TextDelta, event.delta)

    def refusal(self, event: _Event, out: JoinedEvents) -> None:
        if event.delta:
            self._refused = True
            out.text(RefusalDelta, event.delta)

    def thinking(self, event: _Event, out: JoinedEvents) -> None:
        if event.delta:
            out.text(ThinkingDelta, event.delta)

    def summary_part(self, event: _Event, out: JoinedEvents) -> None:
        # All parts of a summary become one thinking text, and go back as one.
        if event.summary_index:
            out.text(ThinkingDelta, _SUMMARY_PART_BREAK)

    def item_added(self, event: _Event, out: JoinedEvents) -> None:
        item = event.item
        if item is not None and item.type == "function_call":
            call = self._call(item, event.output_index, out)
            if item.arguments and not call.arguments:
                call.add(item.arguments, out)

    def arguments(self, event: _Event, out: JoinedEvents) -> None:
        call = self._find(("item", event.item_id), ("output", event.output_index))
        if call is None:
            message = "function call arguments arrived for a call never announced"
            self._fail(out, StreamError(kind="protocol", message=message))
        elif event.delta and not call.ended:
            call.add(event.delta, out)

    def arguments_done(self, event: _Event, out: JoinedEvents) -> None:
        call = self._find(("item", event.item_id), ("output", event.output_index))
        if call is not None:
            self._end(call, event.arguments, out)

    def item_done(self, event: _Event, out: JoinedEvents) -> None:
        item = event.item
        if item is None:
            return
        if item.type == "function_call":
            self._end(self._call(item, event.output_index, out), item.arguments, out)
        elif item.type == "reasoning" and item.encrypted_content:
            # Joins the thinking its summary streamed; `.added` had a payload too,
            # but only the finished item's is the whole reasoning.
            out.add(ThinkingDelta("", redacted=item.encrypted_content))

    def finished(self, event: _Event, out: JoinedEvents) -> None:
        """`response.completed` or `response.incomplete`."""
        response = event.response or _Response()
        self._calls.end_all(out)
        self._add_usage(response, out)
        if event.type == "response.incomplete":
            details = response.incomplete_details
            reason = (details.reason if details else None) or "incomplete"
            stop: StopReason = "refusal" if reason == "content_filter" else "max_tokens"
        else:
            reason = response.status or "completed"
            stop = self._stop_reason()
        out.add(Done(stop_reason=stop, raw_reason=reason))
        self.ended = True

    def failed(self, event: _Event, out: JoinedEvents) -> None:
        response = event.response or _Response()
        self._add_usage(response, out)
        self._fail(out, stream_error(_wire_error(response.error or OpenAIError())))

    def error(self, event: _Event, out: JoinedEvents) -> None:
        body = event.error or OpenAIError(message=event.message, code=event.code)
        self._fail(out, stream_error(_wire_error(body)))

    def _call(self, item: _Item, output_index: int | None, out: JoinedEvents) -> PendingCall:
        """The call this item is, announced the first time it is seen."""
        keys = (("item", item.id), ("output", output_index), ("call", item.call_id))
        call = self._find(*keys) or self._calls.start(item.call_id, item.name or "", out)
        for kind, value in keys:
            if value is not None:
                self._by_key[kind, value] = call
        return call

    def _find(self, *keys: tuple[str, str | int | None]) -> PendingCall | None:
        for kind, value in keys:
            if value is not None and (call := self._by_key.get((kind, value))):
                return call
        return None

    def _end(self, call: PendingCall, whole: str | None, out: JoinedEvents) -> None:
        """End the call once; `whole` stands in for arguments that never streamed."""
        if whole and not call.arguments and not call.ended:
            call.add(whole, out)
        call.end(out)

    def _stop_reason(self) -> StopReason:
        # A completed response says nothing of why: its parts tell, in the
        # order every provider's adapter reads them (`assembly.stop_reason`).
        return stop_reason(None, {}, called=bool(self._calls), refused=self._refused)

    def _fail(self, out: JoinedEvents, error: StreamError) -> None:
        out.add(error)
        self.ended = True

    @staticmethod
    def _add_usage(response: _Response, out: JoinedEvents) -> None:
        if response.usage is not None:
            out.add(_usage(response.usage))


_Handler = Callable[[_Assembler, _Event, JoinedEvents], None]
_HANDLERS: dict[str, _Handler] = {
    "response.output_text.delta": _Assembler.text,
    "response.refusal.delta": _Assembler.refusal,
    "response.reasoning_summary_text.delta": _Assembler.thinking,
    "response.reasoning_text.delta": _Assembler.thinking,
    "response.reasoning_summary_part.added": _Assembler.summary_part,
    "response.output_item.added": _Assembler.item_added,
    "response.function_call_arguments.delta": _Assembler.arguments,
    "response.function_call_arguments.done": _Assembler.arguments_done,
    "response.output_item.done": _Assembler.item_done,
    "response.completed": _Assembler.finished,
    "response.incomplete": _Assembler.finished,
    "response.failed": _Assembler.failed,
    "error": _Assembler.error,
}


def _usage(wire: _WireUsage) -> Usage:
    inputs = wire.input_tokens_details or _InputDetails()
    outputs = wire.output_tokens_details or _OutputDetails()
    return Usage(
        input_tokens=wire.input_tokens or 0,
        output_tokens=wire.output_tokens or 0,
        cached_input_tokens=inputs.cached_tokens or 0,
        cache_write_tokens=inputs.cache_write_tokens or 0,
        reasoning_tokens=outputs.reasoning_tokens or 0,
    )


def _wire_error(error: OpenAIError) -> WireError:
    # A failed response's error has only a `code`, and its codes (`server_error`,
    # `rate_limit_exceeded`, ...) are what an HTTP error body calls its `type`.
    wire = openai_wire_error(error)
    return msgspec.structs.replace(wire, type=wire.type or wire.code)
