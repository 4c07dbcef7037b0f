"""Gemini (`POST {base_url}/models/{model}:streamGenerateContent?alt=sse`).

Each event of the stream is a whole `GenerateContentResponse` holding the
next parts of the answer: text, thought summaries (`thought: true`), and
function calls, each whole in one part, or on Vertex AI streamed in pieces
(`willContinue`, `partialArgs`). There is no terminator: the last chunk
carries the `finishReason` and the usage.

Gemini signs the reasoning behind a response with a `thoughtSignature` on
one of its parts: the first function call of a step, or a text part. It has
to come back on the same part, and Gemini 3 refuses a function call sent back
without one. So a call keeps its signature (`ToolCall.signature`), a signed
text or thought part is followed by an empty `ThinkingDelta` that carries
it, and a call whose signature was lost (a conversation begun with another
provider, a response recorded before signatures were kept) goes back with
the placeholder Google documents for that case.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
    StopReason,
    StreamError,
    TextDelta,
    ThinkingDelta,
    Usage,
)
from parleyd.providers.gemini_args import StreamedArguments
from parleyd.providers.gemini_schema import gemini_schema
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

API_KEY_ENV = "GEMINI_API_KEY"
BASE_URL_ENV = "GEMINI_BASE_URL"
# What Google documents for a function call whose signature was not kept
# (https://ai.google.dev/gemini-api/docs/thought-signatures#faqs), and the one
# of its two placeholders Vertex AI takes too. `thoughtSignature` is bytes,
# which JSON carries in base64.
SKIP_SIGNATURE_CHECK = base64.b64encode(b"skip_thought_signature_validator").decode()
# Families that do not think, and refuse a request asking for their thoughts
# ("Thinking is not enabled for models/gemini-2.0-flash-...").
_UNTHINKING = re.compile(r"(models/)?(gemini-1\.|gemini-2\.0-(?!flash-thinking)|gemma-)")


# --- the wire format, as much of it as Parley reads --------------------------
# Decoded into typed structs, validated while parsed; unknown fields (safety
# ratings, citations, model version, token details) are skipped.


class _PartialArg(msgspec.Struct, rename="camel"):
    """One piece of a streamed call's arguments (Vertex AI): the value at
    `json_path`, a string arriving in several pieces while `will_continue`."""

    json_path: str
    string_value: str | None = None
    number_value: int | float | None = None
    bool_value: bool | None = None
    null_value: msgspec.UnsetType | None = msgspec.UNSET
    will_continue: bool = False


class _FunctionCall(msgspec.Struct, rename="camel"):
    name: str | None = None
    args: dict[str, Any] | None = None
    id: str | None = None
    partial_args: list[_PartialArg] = []
    will_continue: bool = False


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    thought_signature: str | None = None
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    finish_message: str | None = None
    index: int = 0


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int | None = None
    cached_content_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    candidates_token_count: int = 0
    thoughts_token_count: int = 0


class _PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class _ErrorDetail(msgspec.Struct, rename="camel"):
    type: str = msgspec.field(default="", name="@type")
    reason: str | None = None  # google.rpc.ErrorInfo
    retry_delay: str | None = None  # google.rpc.RetryInfo, e.g. "17s"


class _Error(msgspec.Struct):
    code: int | None = None
    message: str | None = None
    status: str | None = None
    details: list[_ErrorDetail] = []


class _Chunk(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    usage_metadata: _UsageMetadata | None = None
    prompt_feedback: _PromptFeedback | None = None
    response_id: str | None = None
    error: _Error | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _Error | None = None


_chunk_decoder = msgspec.json.Decoder(_Chunk)
# Google's error body is an object, or (from some front ends) a list of one.
_error_decoder = msgspec.json.Decoder(_ErrorEnvelope | list[_ErrorEnvelope])


# --- the provider -------------------------------------------------------------


class GeminiProvider(HttpProvider):
    """`include_thoughts` asks for the model's thought summaries, streamed as
    thinking (None: from every model that thinks, see `thinks`);
    `thinking_budget` caps the tokens it thinks in (0 turns thinking off on
    the models that allow it, -1 lets the model decide)."""

    name = "gemini"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        include_thoughts: bool | None = None,
        thinking_budget: int | None = None,
        **connection: Unpack[Connection],
    ) -> None:
        # The API's root: each model has an endpoint of its own below it. The
        # key goes in a header: a URL's query string ends up in proxy and server logs.
        root = Endpoint(
            url=base_url.rstrip("/"),
            key_variable=API_KEY_ENV,
            url_variable=BASE_URL_ENV,
            headers=key_header("x-goog-api-key", api_key),
        )
        super().__init__(root, read_error=read_error, parse=_parse_body, **connection)
        self._include_thoughts = include_thoughts
        self._thinking_budget = thinking_budget

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        body = request_body(
            request,
            include_thoughts=self._include_thoughts,
            thinking_budget=self._thinking_budget,
        )
        return self._call(body, request.model, self._endpoint_of(request.model))

    def _endpoint_of(self, model: str) -> Endpoint:
        # The model is part of the path: "gemini-2.5-flash", or a resource name
        # such as "models/gemini-2.5-flash" or "tunedModels/mine".
        resource = model if "/" in model else f"models/{model}"
        url = f"{self._endpoint.url}/{resource}:streamGenerateContent?alt=sse"
        return dataclasses.replace(self._endpoint, url=url)


def _parse_body(chunks: AsyncIterator[bytes]) -> AsyncIterator[ProviderEvent]:
    return parse_gemini_stream(read_sse(chunks))


# --- the request --------------------------------------------------------------


def thinks(model: str) -> bool:
    """Whether the model thinks: all but the Gemini 1.x and 2.0 families and Gemma."""
    return _UNTHINKING.match(model) is None


def request_body(
    request: ModelRequest,
    *,
    include_thoughts: bool | None = None,
    thinking_budget: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(spec) for spec in request.tools]}]
    generation: dict[str, Any] = {}
    if request.max_output_tokens is not None:
        generation["maxOutputTokens"] = request.max_output_tokens
    thinking: dict[str, Any] = {}
    if include_thoughts is None:
        include_thoughts = thinks(request.model)
    if include_thoughts:
        thinking["includeThoughts"] = True
    if thinking_budget is not None:
        thinking["thinkingBudget"] = thinking_budget
    if thinking:
        generation["thinkingConfig"] = thinking
    if generation:
        body["generationConfig"] = generation
    return body


def _contents(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The conversation as Gemini's `contents`: the results of parallel calls
    go back in one content, as Gemini wants them, and so does anything else
    that would make two contents of one role in a row."""
    contents: list[dict[str, Any]] = []
    for message in messages:
        role = "model" if isinstance(message, AssistantMessage) else "user"
        parts = _parts(message)
        if not parts:
            continue  # Gemini refuses a content without parts
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _parts(message: Message) -> list[dict[str, Any]]:
    match message:
        case UserMessage():
            return _CONTENT.user(message)
        case ToolResultMessage(name=name, content=content, is_error=is_error):
            # The keys Gemini documents for a function's result and its failure.
            response = {"error" if is_error else "output": content}
            # A functionResponse holds JSON only: what the call attached follows it.
            attached = _CONTENT.attached(message.attachments)
            return [{"functionResponse": {"name": name, "response": response}}, *attached]
        case AssistantMessage():
            return _model_parts(message)


# What Gemini reads inline (https://ai.google.dev/gemini-api/docs/document-processing,
# .../image-understanding, .../audio, .../video): media, PDFs and text files.
_INLINE_KINDS = ("image/", "audio/", "video/", "text/", "application/pdf")


def _attachment(attached: Attachment) -> Block | None:
    if not attached.mime_type.startswith(_INLINE_KINDS):
        return None
    return {"inlineData": {"mimeType": attached.mime_type, "data": attached.data}}


def _text_part(text: str) -> Block:
    return {"text": text}


_CONTENT = ContentShape("Gemini", _attachment, _text_part)


def _model_parts(message: AssistantMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    calls = 0
    for part in message.parts:
        match part:
            case TextPart(text=text) | RefusalPart(text=text):
                if text:
                    parts.append({"text": text})
            case ThinkingPart(redacted=str()):
                pass  # another provider's opaque reasoning: nothing Gemini can read
            case ThinkingPart(text="", signature=str(signature)):
                _sign_last(parts, signature)
            case ThinkingPart(text=text, signature=signature) if text:
                parts.append(_signed({"text": text, "thought": True}, signature))
            case ToolCall():
                # Gemini checks the first call of each step: that one goes back
                # signed whatever became of its signature.
                signature = part.signature or (None if calls else SKIP_SIGNATURE_CHECK)
                call = {"name": part.name, "args": part.arguments_object() or {}}
                parts.append(_signed({"functionCall": call}, signature))
                calls += 1
    return parts


def _signed(part: dict[str, Any], signature: str | None) -> dict[str, Any]:
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _sign_last(parts: list[dict[str, Any]], signature: str) -> None:
    """An empty thinking part signs the part before it (see the parser); with
    none before it, or one already signed, it stands as the empty text part
    Gemini streams a response's last signature in."""
    if parts and "thoughtSignature" not in parts[-1]:
        parts[-1]["thoughtSignature"] = signature
    else:
        parts.append({"text": "", "thoughtSignature": signature})


def _declaration(spec: ToolSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "parameters": gemini_schema(spec.parameters),
    }


# --- the stream ---------------------------------------------------------------


def parse_gemini_stream(batches: AsyncIterator[list[SseEvent]]) -> AsyncIterator[ProviderEvent]:
    """Normalised events from a `streamGenerateContent?alt=sse` stream, the
    deltas of each batch joined (see JoinedEvents); ends with one Done or
    StreamError."""
    return assembled(batches, _Assembler())


_STOP_REASONS: dict[str, StopReason] = {
    "STOP": "end_turn",
    "MAX_TOKENS": "max_tokens",
    "SAFETY": "refusal",
    "RECITATION": "refusal",
    "LANGUAGE": "refusal",
    "BLOCKLIST": "refusal",
    "PROHIBITED_CONTENT": "refusal",
    "SPII": "refusal",
    "IMAGE_SAFETY": "refusal",
    "IMAGE_PROHIBITED_CONTENT": "refusal",
    "IMAGE_RECITATION": "refusal",
}
# Endings where the model failed to answer: another try usually succeeds.
_FAILED_REASONS = frozenset(
    {"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"}
)


@dataclass
class _StreamedCall:
    """A call whose arguments Vertex AI streams in pieces, until they are whole."""

    call: PendingCall
    signature: str | None
    arguments: StreamedArguments = field(default_factory=StreamedArguments)

    def add(self, pieces: list[_PartialArg]) -> None:
        for piece in pieces:
            path = piece.json_path
            if piece.string_value is not None:
                self.arguments.extend(path, piece.string_value)
            elif piece.number_value is not None:
                self.arguments.set(path, piece.number_value)
            elif piece.bool_value is not None:
                self.arguments.set(path, piece.bool_value)
            elif piece.null_value is None:
                self.arguments.set(path, None)


class _Assembler:
    """Turns decoded chunks into events, keeping what only the end of the stream settles."""

    def __init__(self) -> None:
        self._calls = ToolCalls()
        self._streamed: _StreamedCall | None = None
        self._response_id: str | None = None
        self._usage: Usage | None = None
        self._finish_reason: str | None = None
        self._finish_message: str | None = None
        self._block_reason: str | None = None
        # The stream carried an error, or could not be read. It has no end of
        # its own: the input running out ends it.
        self.ended = False

    def feed(self, sse: SseEvent, out: JoinedEvents) -> None:
        data = sse.data
        if not data.strip():
            return
        try:
            chunk = _chunk_decoder.decode(data)
        except msgspec.DecodeError as exc:
            self._fail(out, unreadable("stream chunk", data, exc))
            return
        if chunk.error is not None:
            self.ended = True
            self._add_usage(out)
            out.add(_in_stream_error(chunk.error))
            return
        self._response_id = self._response_id or chunk.response_id
        metadata = chunk.usage_metadata
        # Vertex AI sends usage without counts until the last chunk; the last counts are the total.
        if metadata is not None and metadata.prompt_token_count is not None:
            self._usage = _usage(metadata)
        if chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason:
            self._block_reason = chunk.prompt_feedback.block_reason
        # Only candidate 0 is Parley's: it never asks for more.
        for candidate in chunk.candidates:
            if candidate.index == 0:
                self._candidate(candidate, out)

    def finish(self, out: JoinedEvents) -> None:
        reason = self._finish_reason or self._block_reason
        if reason is None:
            out.add(ended_early())
            return
        self._end_streamed(out)
        if self.ended:
            return
        self._add_usage(out)
        if reason in _FAILED_REASONS:
            said = f": {self._finish_message}" if self._finish_message else ""
            message = f"Gemini ended its response with {reason}{said}"
            out.add(StreamError(kind="server", message=message, retryable=True, code=reason))
        else:
            out.add(Done(stop_reason=self._stop_reason(), raw_reason=reason))

    def _candidate(self, candidate: _Candidate, out: JoinedEvents) -> None:
        for part in candidate.content.parts if candidate.content else ():
            self._part(part, out)
            if self.ended:
                return
        if candidate.finish_reason:
            self._finish_reason = candidate.finish_reason
            self._finish_message = candidate.finish_message

    def _part(self, part: _Part, out: JoinedEvents) -> None:
        call = part.function_call
        if self._streamed is not None and (call is None or call.name is not None):
            self._end_streamed(out)  # all but its next pieces end the call being streamed
            if self.ended:
                return
        if call is not None:
            self._function_call(call, part.thought_signature, out)
            return
        if part.text:
            out.text(ThinkingDelta if part.thought else TextDelta, part.text)
        if part.thought_signature:
            # On its own delta, after the part it signs: a part of its own in
            # the message, which sends it back on the part before it.
            out.add(ThinkingDelta("", signature=part.thought_signature))

    def _function_call(self, call: _FunctionCall, signature: str | None, out: JoinedEvents) -> None:
        if (streamed := self._streamed) is not None:
            # The next pieces of the call being streamed; an empty call closes it.
            streamed.signature = streamed.signature or signature
            streamed.add(call.partial_args)
            if not call.will_continue:
                self._end_streamed(out)
            return
        if call.name is None:
            return  # a continuation with no call to continue: nothing to run
        call_id = call.id or self._call_id(len(self._calls))
        pending = self._calls.start(call_id, call.name, out)
        if call.will_continue and call.args is None:
            self._streamed = _StreamedCall(pending, signature)
            self._streamed.add(call.partial_args)
        else:
            pending.end_whole(call.args or {}, out, signature=signature)

    def _end_streamed(self, out: JoinedEvents) -> None:
        streamed, self._streamed = self._streamed, None
        if streamed is None:
            return
        try:
            arguments = streamed.arguments.value()
        except ValueError as exc:
            message = f"unreadable streamed arguments of {streamed.call.name}: {exc}"
            self._fail(out, StreamError(kind="protocol", message=message))
            return
        streamed.call.end_whole(arguments, out, signature=streamed.signature)

    def _call_id(self, position: int) -> str:
        """An id for a call Gemini gave none: the response's own id makes it
        unique in the session and the same on every replay of the response."""
        if self._response_id is None:
            self._response_id = uuid.uuid4().hex
        return f"call_{self._response_id}_{position}"

    def _stop_reason(self) -> StopReason:
        if self._finish_reason is None:
            return "refusal"  # no answer at all: the prompt itself was blocked
        # Gemini says STOP after function calls.
        return stop_reason(self._finish_reason, _STOP_REASONS, called=bool(self._calls))

    def _add_usage(self, out: JoinedEvents) -> None:
        if self._usage is not None:
            out.add(self._usage)

    def _fail(self, out: JoinedEvents, error: StreamError) -> None:
        self.ended = True
        out.add(error)


def _usage(metadata: _UsageMetadata) -> Usage:
    # promptTokenCount already counts the cached tokens; thoughts are output
    # (billed as such) that candidatesTokenCount leaves out.
    return Usage(
        input_tokens=(metadata.prompt_token_count or 0) + metadata.tool_use_prompt_token_count,
        output_tokens=metadata.candidates_token_count + metadata.thoughts_token_count,
        cached_input_tokens=metadata.cached_content_token_count,
        reasoning_tokens=metadata.thoughts_token_count,
    )


# --- errors -------------------------------------------------------------------


def read_error(body: bytes) -> WireError:
    """What a non-2xx body says went wrong: Google's error object, alone or in a list."""
    envelope = decoded(_error_decoder, body)
    if envelope is None:
        return WireError()
    if isinstance(envelope, list):
        envelope = envelope[0] if envelope else _ErrorEnvelope()
    return _wire_error(envelope.error) if envelope.error is not None else WireError()


def _wire_error(error: _Error) -> WireError:
    reason = next((detail.reason for detail in error.details if detail.reason), None)
    # A wrong key is a 400 INVALID_ARGUMENT whose reason alone says what it is.
    code = "invalid_api_key" if reason == "API_KEY_INVALID" else error.status
    return WireError(
        message=error.message,
        code=code,
        type=reason,
        status=error.code,
        retry_after=_retry_delay(error),
    )


def _in_stream_error(error: _Error) -> StreamError:
    failure = stream_error(_wire_error(error))
    delay = _retry_delay(error)
    if failure.retryable and delay is not None:
        return msgspec.structs.replace(failure, retry_after=delay)
    return failure


def _retry_delay(error: _Error) -> float | None:
    """Seconds to wait, from a `google.rpc.RetryInfo` detail ("17s", "0.5s")."""
    for detail in error.details:
        if detail.type.endswith("google.rpc.RetryInfo") and detail.retry_delay:
            try:
                return max(float(detail.retry_delay.removesuffix("s")), 0.0)
            except ValueError:
                return None
    return None
