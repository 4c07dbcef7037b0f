"""What every adapter's parser shares between the wire items it decodes and
the normalised events it yields (see `events.py`): the loop over the batches
one network read delivered, the tool calls being put together, the stop
reason, and the errors a stream reports of itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Container, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import msgspec

from parleyd.providers.events import (
    JoinedEvents,
    ProviderEvent,
    StopReason,
    StreamError,
    ToolCallEnd,
    ToolCallStart,
)

_EXCERPT = 120
_Item = TypeVar("_Item")
_Item_contra = TypeVar("_Item_contra", contravariant=True)


class Assembler(Protocol[_Item_contra]):
    """Turns one provider's wire items (SSE events, NDJSON lines) into events
    on `out`, keeping what the items still to come need."""

    # The stream ended itself (its terminator, or an error): nothing after is read.
    ended: bool

    def feed(self, item: _Item_contra, out: JoinedEvents) -> None: ...

    def finish(self, out: JoinedEvents) -> None:
        """The input ran out before the stream ended itself."""
        ...


async def assembled(
    batches: AsyncIterator[list[_Item]], assembler: Assembler[_Item]
) -> AsyncIterator[ProviderEvent]:
    """The events `assembler` makes of `batches`, the deltas of each batch
    joined (see JoinedEvents); ends with one Done or StreamError."""
    out = JoinedEvents()
    async for batch in batches:
        for item in batch:
            assembler.feed(item, out)
            if assembler.ended:
                break
        for event in out.take():
            yield event
        if assembler.ended:
            return
    assembler.finish(out)
    for event in out.take():
        yield event


@dataclass
class PendingCall:
    """A tool call of the response being read: its arguments so far."""

    position: int
    call_id: str
    name: str
    arguments: list[str] = field(default_factory=list)
    ended: bool = False

    @property
    def text(self) -> str:
        return "".join(self.arguments)

    def add(self, delta: str, out: JoinedEvents) -> None:
        self.arguments.append(delta)
        out.arguments(self.position, self.call_id, delta)

    def end(
        self, out: JoinedEvents, *, arguments: str | None = None, signature: str | None = None
    ) -> None:
        """The call is whole (once: a call already ended stays as it was);
        `arguments` stands for what streamed where the provider says otherwise."""
        if self.ended:
            return
        self.ended = True
        whole = self.text if arguments is None else arguments
        out.add(ToolCallEnd(self.position, self.call_id, self.name, whole, signature))

    def end_whole(
        self, arguments: dict[str, Any], out: JoinedEvents, *, signature: str | None = None
    ) -> None:
        """The call's arguments, which came whole as an object, as their one
        delta, and the call's end."""
        self.add(msgspec.json.encode(arguments).decode(), out)
        self.end(out, signature=signature)


class ToolCalls:
    """The tool calls of one response, in the order they began. Events number
    calls by that position, whatever the server's own numbering, so every
    provider's calls look alike downstream."""

    def __init__(self) -> None:
        self._calls: list[PendingCall] = []

    def __len__(self) -> int:
        return len(self._calls)

    @property
    def last(self) -> PendingCall | None:
        return self._calls[-1] if self._calls else None

    def start(self, call_id: str | None, name: str, out: JoinedEvents) -> PendingCall:
        """A new call, announced; one the server gave no id is named by its position."""
        position = len(self._calls)
        call = PendingCall(position, call_id or f"call_{position}", name)
        self._calls.append(call)
        out.add(ToolCallStart(index=position, call_id=call.call_id, name=name))
        return call

    def end_all(self, out: JoinedEvents) -> None:
        for call in self._calls:
            call.end(out)


def stop_reason(
    raw: str | None,
    words: Mapping[str, StopReason],
    *,
    called: bool = False,
    refused: bool = False,
) -> StopReason:
    """The provider's word for why it stopped (`words` translates it; unknown
    or none is `end_turn`) as Parley's. A response that says it simply ended
    but refused, or made calls, ended for that: some servers say "stop" after
    tool calls. A refusal beside calls is a refusal: the model would not go
    on, so its calls are not run (the next request answers them "not
    executed", `repair.py`)."""
    reason = words.get(raw or "", "end_turn")
    if refused and reason in ("end_turn", "tool_use"):
        return "refusal"
    if reason != "end_turn":
        return reason
    return "tool_use" if called else "end_turn"


class _Typed(msgspec.Struct):
    type: str


_typed_decoder = msgspec.json.Decoder(_Typed)


def known_type(data: str, types: Container[str]) -> bool:
    """Whether an event that did not decode is of one of `types`, or of no
    readable type at all: a broken event, to report. One of another type is
    newer than the parser (APIs keep adding them), and is passed over."""
    try:
        return _typed_decoder.decode(data).type in types
    except msgspec.DecodeError:
        return True


def ended_early(detail: str | None = None) -> StreamError:
    """The error of a stream that stopped before the model finished its answer."""
    said = f" ({detail})" if detail else ""
    return StreamError(kind="protocol", message=f"stream ended before the model finished{said}")


def unreadable(what: str, data: str | bytes, error: msgspec.DecodeError) -> StreamError:
    """The error of a wire item that does not decode, quoting its start."""
    return StreamError(kind="protocol", message=f"unreadable {what} ({error}): {data[:_EXCERPT]!r}")
