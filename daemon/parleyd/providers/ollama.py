"""Ollama's native chat API (`POST {host}/api/chat`, streamed as NDJSON).

Native rather than Ollama's OpenAI-compatible `/v1`, which drops what this
keeps: reasoning in its own `message.thinking` field (thinking models think
unless told not to, since Ollama 0.12.5, so it streams by default and must be
shown, not mistaken for a hang), and sent back in the history so a model that
thinks between tool calls sees what it thought; tool calls whose arguments are
JSON objects, each whole in one line; `num_ctx`, which only the native API
takes; and the final `done: true` line with token counts and `done_reason`.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import AsyncIterator
from typing import Any, Unpack

import msgspec

from parleyd.providers.assembly import ToolCalls, assembled, ended_early, stop_reason, unreadable
from parleyd.providers.events import (
    Done,
    JoinedEvents,
    ProviderEvent,
    StopReason,
    StreamError,
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
    UserMessage,
)
from parleyd.providers.ndjson import read_ndjson
from parleyd.providers.openai_chat import function_tool
from parleyd.providers.think_tags import ThinkTagStream
from parleyd.providers.user_content import Block, ContentShape

HOST_ENV = "OLLAMA_HOST"
API_KEY_ENV = "OLLAMA_API_KEY"  # only ollama.com asks for one
DEFAULT_HOST = "http://127.0.0.1:11434"  # where Ollama listens unless told otherwise
_DEFAULT_PORT = 11434
_SCHEME_PORTS = {"http": 80, "https": 443}


# --- the host -------------------------------------------------------------------


def host_url(value: str | None) -> str:
    """The base URL an `OLLAMA_HOST` value names, read as Ollama's own client
    reads it: no scheme is http, no port is 11434 (a scheme written out brings
    its own default), a bare `ollama.com` is the cloud over https, and a path is
    kept. A bind-all address (`0.0.0.0`, `::`, or no host at all) becomes the
    loopback: the same variable tells the server where to listen, and a client
    cannot connect to that address everywhere. Empty or unset: the local default.
    """
    raw = (value or "").strip().strip("\"'").strip()
    if not raw:
        return DEFAULT_HOST
    if raw == "ollama.com":
        return "https://ollama.com"
    scheme, separator, rest = raw.partition("://")
    if separator:
        scheme = scheme.lower()
        default_port = _SCHEME_PORTS.get(scheme, _DEFAULT_PORT)
    else:
        scheme, rest, default_port = "http", raw, _DEFAULT_PORT
    host_port, _, path = rest.partition("/")
    host, port_text = _split_host_port(host_port)
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else 0
    if not 0 < port <= 65535:
        port = default_port  # Ollama's own client, too, takes a port it cannot use as none
    host = _connectable(host)
    netloc = f"[{host}]" if ":" in host else host
    if port != _SCHEME_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    path = path.strip("/")
    return f"{scheme}://{netloc}/{path}" if path else f"{scheme}://{netloc}"


def _split_host_port(host_port: str) -> tuple[str, str]:
    """(host, port text) the way Go's net.SplitHostPort reads them; the port
    is "" when there is none, as in a bare name or IPv6 address."""
    if host_port.startswith("["):
        host, _, after = host_port[1:].partition("]")
        return host, after.removeprefix(":")
    if host_port.count(":") == 1:
        host, _, port = host_port.partition(":")
        return host, port
    return host_port, ""


def _connectable(host: str) -> str:
    if not host:
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a name
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return host


# --- the wire format, as much of it as Parley reads -----------------------------
# Decoding into typed structs validates as it parses; unknown fields (created_at,
# durations, images, logprobs, function.index, ...) are skipped unread.


class _Function(msgspec.Struct):
    name: str = ""
    arguments: dict[str, Any] | None = None


class _ToolCall(msgspec.Struct):
    function: _Function
    id: str | None = None  # sent since Ollama 0.12.10


class _Message(msgspec.Struct):
    content: str | None = None
    thinking: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Line(msgspec.Struct):
    message: _Message | None = None
    done: bool = False
    done_reason: str | None = None
    prompt_eval_count: int = 0
    eval_count: int = 0
    error: str | None = None


class _ErrorBody(msgspec.Struct):
    error: str | None = None


_line_decoder = msgspec.json.Decoder(_Line)
_error_decoder = msgspec.json.Decoder(_ErrorBody)


# --- the provider -----------------------------------------------------------------


class OllamaProvider(HttpProvider):
    """`num_ctx` sets the context window the model is loaded with (Ollama's own
    default otherwise). `think` is sent only when set: `True`/`False`, or a
    level (`"low"`, `"medium"`, `"high"`) for models that take one. Left unset,
    a thinking model thinks. Ollama answers only once it has loaded the model,
    which takes minutes for a large one: `load_timeout` bounds that wait."""

    name = "ollama"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        num_ctx: int | None = None,
        think: bool | str | None = None,
        **connection: Unpack[Connection],
    ) -> None:
        endpoint = Endpoint(
            url=f"{base_url.rstrip('/')}/api/chat",
            key_variable=API_KEY_ENV,
            url_variable=HOST_ENV,
            headers=key_header("Authorization", api_key, prefix="Bearer "),
            # ollama.com answers a stream as application/json.
            media_types=("application/x-ndjson", "application/json"),
        )
        super().__init__(endpoint, read_error=read_error, parse=_parse_body, **connection)
        self._num_ctx = num_ctx
        self._think = think

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        body = request_body(request, num_ctx=self._num_ctx, think=self._think)
        return self._call(body, request.model)


def _parse_body(chunks: AsyncIterator[bytes]) -> AsyncIterator[ProviderEvent]:
    return parse_ollama_stream(read_ndjson(chunks))


def read_error(body: bytes) -> WireError:
    """What a non-2xx answer says: Ollama's errors are `{"error": "..."}`."""
    envelope = decoded(_error_decoder, body)
    return WireError(message=envelope.error if envelope else None)


# --- the request ------------------------------------------------------------------


def request_body(
    request: ModelRequest, *, num_ctx: int | None = None, think: bool | str | None = None
) -> dict[str, Any]:
    # `keep_alive` is never sent: how long a model stays loaded is the
    # server's to decide (OLLAMA_KEEP_ALIVE), not one client's.
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request.system, request.messages),
        "stream": True,
    }
    if request.tools:
        body["tools"] = [function_tool(spec) for spec in request.tools]
    if think is not None:
        body["think"] = think
    options: dict[str, int] = {}
    if num_ctx is not None:
        options["num_ctx"] = num_ctx
    if request.max_output_tokens is not None:
        options["num_predict"] = request.max_output_tokens
    if options:
        body["options"] = options
    return body


def _messages(system: str, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    wire = [{"role": "system", "content": system}] if system else []
    return wire + [_message(message) for message in messages]


def _message(message: Message) -> dict[str, Any]:
    match message:
        case UserMessage():
            return _with_images("user", _CONTENT.user(message))
        case ToolResultMessage(call_id=call_id, name=name):
            # Templates match a result to its call by tool name; newer ones by id.
            wire = _with_images("tool", _CONTENT.tool_result(message))
            return {**wire, "tool_name": name, "tool_call_id": call_id}
        case AssistantMessage():
            return _assistant(message)


def _with_images(role: str, blocks: list[Block]) -> dict[str, Any]:
    """Ollama takes images (base64, for vision models) beside the text, not in it."""
    wire: dict[str, Any] = {
        "role": role,
        "content": "\n\n".join(b["text"] for b in blocks if "text" in b),
    }
    if images := [block["image"] for block in blocks if "image" in block]:
        wire["images"] = images
    return wire


def _image(attached: Attachment) -> Block | None:
    return {"image": attached.data} if attached.is_image else None


def _text(text: str) -> Block:
    return {"text": text}


_CONTENT = ContentShape("Ollama", _image, _text)


def _assistant(message: AssistantMessage) -> dict[str, Any]:
    # The thinking goes back whole: the model's template decides what of it
    # the model sees again (gpt-oss keeps what came before a tool call).
    # A refusal stands in for the text so the model still sees what it answered.
    wire: dict[str, Any] = {"role": "assistant", "content": message.text or message.refusal or ""}
    if message.thinking:
        wire["thinking"] = message.thinking
    if message.tool_calls:
        wire["tool_calls"] = [
            {
                "id": call.id,
                # Ollama refuses a whole request over one call whose arguments
                # are not an object, which would leave the session unable to go on.
                "function": {"name": call.name, "arguments": call.arguments_object() or {}},
            }
            for call in message.tool_calls
        ]
    return wire


# --- the stream -------------------------------------------------------------------


def parse_ollama_stream(batches: AsyncIterator[list[bytes]]) -> AsyncIterator[ProviderEvent]:
    """Normalised events from `/api/chat` lines, the deltas of each batch joined
    (see JoinedEvents); ends with one Done or StreamError."""
    return assembled(batches, _Assembler())


_STOP_REASONS: dict[str, StopReason] = {"stop": "end_turn", "length": "max_tokens"}


class _Assembler:
    """Turns lines into events, up to the `done: true` line or an error."""

    def __init__(self) -> None:
        # A model Ollama cannot parse the reasoning of (an imported GGUF whose
        # template it does not know, or any thinking model on Ollama before
        # 0.9) puts it in the content between <think> tags.
        self._content = ThinkTagStream()
        self._calls = ToolCalls()
        self.ended = False

    def feed(self, raw: bytes, out: JoinedEvents) -> None:
        try:
            line = _line_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            self._end(unreadable("stream line", raw, exc), out)
            return
        if line.error is not None:
            # Sent when generation fails after the answer began, so with no
            # status: the message is all there is to classify it by.
            self._end(stream_error(WireError(message=line.error)), out)
            return
        if line.message is not None:
            self._read_message(line.message, raw, out)
        if line.done:
            self._content.flush(out)
            out.add(Usage(input_tokens=line.prompt_eval_count, output_tokens=line.eval_count))
            # Ollama says "stop" after tool calls.
            reason = stop_reason(line.done_reason, _STOP_REASONS, called=bool(self._calls))
            out.add(Done(stop_reason=reason, raw_reason=line.done_reason))
            self.ended = True

    def finish(self, out: JoinedEvents) -> None:
        self._end(ended_early(), out)

    def _end(self, error: StreamError, out: JoinedEvents) -> None:
        """The stream ends here, with `error`, after what was held back."""
        self._content.flush(out)
        out.add(error)
        self.ended = True

    def _read_message(self, message: _Message, raw: bytes, out: JoinedEvents) -> None:
        if message.thinking:
            out.text(ThinkingDelta, message.thinking)
        if message.content:
            self._content.feed(message.content, out)
        for call in message.tool_calls or ():
            self._content.flush(out)  # text held back as a possible tag came before the call
            self._tool_call(call, raw, out)

    def _tool_call(self, call: _ToolCall, raw: bytes, out: JoinedEvents) -> None:
        # Each call arrives whole in one line (its `function.index` numbers it
        # as its position here does), so it starts, streams and ends at once.
        call_id = call.id or _generated_id(raw, len(self._calls))
        pending = self._calls.start(call_id, call.function.name, out)
        pending.end_whole(call.function.arguments or {}, out)


def _generated_id(line: bytes, position: int) -> str:
    """An id for a call sent without one (Ollama before 0.12.10): the same
    whenever the same stream is read, and another in every other response,
    whose lines carry their own `created_at`."""
    digest = hashlib.blake2b(line, digest_size=6).hexdigest()
    return f"call_{digest}_{position}"
