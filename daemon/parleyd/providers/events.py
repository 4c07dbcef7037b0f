"""The normalised stream every provider yields, whatever its wire format.

A stream is a sequence of deltas and usage, closed by exactly one `Done` or one
`StreamError` (never both, never neither): providers report failures as events
rather than exceptions so the agent loop has one path for every ending.
Cancellation is the exception: it propagates as `asyncio.CancelledError`.
"""

from __future__ import annotations

from itertools import groupby
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
    """The call is complete; `arguments` is the whole JSON text."""

    index: int
    call_id: str
    name: str
    arguments: str


class Usage(msgspec.Struct, tag="usage", frozen=True):
    """Token counts for one model response. `input_tokens` includes cached ones."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

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
)


def _join_key(event: ProviderEvent) -> object:
    """Events with equal keys side by side join into one; any other event is its own key."""
    match event:
        case TextDelta() | RefusalDelta():
            return type(event)
        case ThinkingDelta(signature=None, redacted=None):
            return ThinkingDelta
        case ToolCallArgumentsDelta(call_id=call_id):
            return call_id
        case _:
            return id(event)


def _joined(group: list[ProviderEvent]) -> ProviderEvent:
    # Every event of a group has the first one's type (see _join_key).
    match group[0]:
        case ToolCallArgumentsDelta(index=index, call_id=call_id):
            arguments = (
                event.delta for event in group if isinstance(event, ToolCallArgumentsDelta)
            )
            return ToolCallArgumentsDelta(index, call_id, "".join(arguments))
        case TextDelta() | ThinkingDelta() | RefusalDelta() as first:
            texts = (event.text for event in group if isinstance(event, type(first)))
            return type(first)("".join(texts))
    return group[0]


def joined_deltas(events: list[ProviderEvent]) -> list[ProviderEvent]:
    """The same stream in fewer events: side-by-side deltas of one kind (text,
    plain thinking, refusal, one call's arguments) joined into one.

    Providers join what one network read delivered: a delta that arrives on its
    own still goes on alone, at once, and a burst (a server that sends faster
    than the daemon reads, or batches its tokens) costs one step downstream
    instead of one per token. Signed or redacted thinking is never joined: its
    payload belongs to that delta alone."""
    if len(events) < 2:
        return events
    return [
        group[0] if len(group) == 1 else _joined(group)
        for group in (list(run) for _, run in groupby(events, key=_join_key))
    ]
