"""The normalised stream every provider yields, whatever its wire format.

A stream is a sequence of deltas and usage, closed by exactly one `Done` or one
`StreamError` (never both, never neither): providers report failures as events
rather than exceptions so the agent loop has one path for every ending.
Cancellation is the exception: it propagates as `asyncio.CancelledError`.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class TextDelta(msgspec.Struct, tag="text", frozen=True):
    text: str


class ThinkingDelta(msgspec.Struct, tag="thinking", frozen=True):
    """Reasoning text; `signature` arrives on its own delta where the provider
    signs it, and `redacted` carries reasoning the provider hands back only
    as an opaque payload (kept byte for byte, shown to nobody)."""

    text: str
    signature: str | None = None
    redacted: str | None = None


class RefusalDelta(msgspec.Struct, tag="refusal", frozen=True):
    text: str


class ToolCallStart(msgspec.Struct, tag="tool_call_start", frozen=True):
    index: int
    call_id: str
    name: str


class ToolCallArgumentsDelta(msgspec.Struct, tag="tool_call_args", frozen=True):
    index: int
    call_id: str
    delta: str


class ToolCallEnd(msgspec.Struct, tag="tool_call_end", frozen=True):
    """The call is complete; `arguments` is the whole JSON text. `signature` is
    the provider's signature of the reasoning behind the call, where it signs
    the call itself (Gemini's `thoughtSignature` on a `functionCall` part)."""

    index: int
    call_id: str
    name: str
    arguments: str
    signature: str | None = None


class Usage(msgspec.Struct, tag="usage", frozen=True):
    """Token counts for one model response. `input_tokens` includes the cache
    reads (`cached_input_tokens`) and writes; `output_tokens` includes
    `reasoning_tokens`, billed as output; `cache_write_tokens` includes
    `cache_write_1h_tokens`, the writes kept for an hour rather than five
    minutes (Anthropic prices the two apart)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


StopReason = Literal["end_turn", "tool_use", "max_tokens", "refusal"]


class Done(msgspec.Struct, tag="done", frozen=True):
    """`raw_reason` is the provider's own word (`stop`, `length`, ...), kept for logs."""

    stop_reason: StopReason
    raw_reason: str | None = None


ErrorKind = Literal[
    "auth",
    "rate_limit",
    "server",
    "context_overflow",
    "bad_request",
    "network",
    "timeout",
    "protocol",
    "fatal",
]


class StreamError(msgspec.Struct, tag="error", frozen=True):
    """`retryable` errors may be retried after `retry_after` seconds (None: caller's backoff)."""

    kind: ErrorKind
    message: str
    retryable: bool = False
    retry_after: float | None = None
    status: int | None = None
    code: str | None = None


class Retrying(msgspec.Struct, tag="retry", frozen=True):
    """The call failed before any output (`error`) and goes again in `delay`
    seconds, as try `attempt` of `attempts`."""

    attempt: int
    attempts: int
    delay: float
    error: StreamError


class FallingBack(msgspec.Struct, tag="fallback", frozen=True):
    """The provider could not take the call (`error`): `provider`, with
    `model`, takes it instead."""

    provider: str
    model: str
    error: StreamError


ProviderEvent = (
    TextDelta
    | ThinkingDelta
    | RefusalDelta
    | ToolCallStart
    | ToolCallArgumentsDelta
    | ToolCallEnd
    | Usage
    | Done
    | StreamError
    | Retrying
    | FallingBack
)


TextKind = type[TextDelta] | type[ThinkingDelta] | type[RefusalDelta]


class JoinedEvents:
    """A provider's events as it adds them, side-by-side deltas of one kind
    (text, plain thinking, refusal, one call's arguments) joined into one.

    Providers gather what one network read delivered: a delta that arrives on
    its own still goes on alone, at once, and a burst (a server that sends
    faster than the daemon reads, or batches its tokens) costs one step
    downstream instead of one per token. Signed or redacted thinking is never
    joined: its payload belongs to that delta alone."""

    def __init__(self) -> None:
        self._events: list[ProviderEvent] = []
        # What the pieces are: a delta type, or the id of the call whose arguments they are.
        self._run: TextKind | str | None = None
        self._run_index = 0
        self._pieces: list[str] = []

    def text(self, kind: TextKind, text: str) -> None:
        if self._run is not kind:
            self._end_run()
            self._run = kind
        self._pieces.append(text)

    def arguments(self, index: int, call_id: str, delta: str) -> None:
        if self._run != call_id:
            self._end_run()
            self._run, self._run_index = call_id, index
        self._pieces.append(delta)

    def add(self, event: ProviderEvent) -> None:
        match event:
            case TextDelta(text=text) | RefusalDelta(text=text):
                self.text(type(event), text)
            case ThinkingDelta(text=text, signature=None, redacted=None):
                self.text(ThinkingDelta, text)
            case ToolCallArgumentsDelta(index=index, call_id=call_id, delta=delta):
                self.arguments(index, call_id, delta)
            case _:
                self._end_run()
                self._events.append(event)

    def take(self) -> list[ProviderEvent]:
        """The events added since the last take."""
        self._end_run()
        events, self._events = self._events, []
        return events

    def _end_run(self) -> None:
        run, pieces = self._run, self._pieces
        self._run = None
        if not pieces:
            return
        self._pieces = []
        joined = pieces[0] if len(pieces) == 1 else "".join(pieces)
        if isinstance(run, str):
            self._events.append(ToolCallArgumentsDelta(self._run_index, run, joined))
        elif run is not None:
            self._events.append(run(joined))
