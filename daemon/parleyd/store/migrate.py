"""Reading logs written by older formats: their lines decode into the legacy
Structs here and are converted to current records on read, so an old session
loads (and replays) like a new one.
"""

from __future__ import annotations

import msgspec

from parleyd.providers.messages import (
    AssistantMessage,
    Part,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCall,
)
from parleyd.store.records import (
    AssistantResponse,
    CurrentRecord,
    Record,
    ToolCallView,
)


class _ToolCallV1(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str


class _FlatMessageV1(msgspec.Struct, frozen=True):
    type: str = "assistant"
    text: str = ""
    thinking: str = ""
    thinking_signature: str | None = None
    refusal: str | None = None
    tool_calls: tuple[_ToolCallV1, ...] = ()


class AssistantTurnV1(Record, tag="assistant"):
    """Format 1's response record (its streamed deltas are no longer read)."""

    message: _FlatMessageV1
    message_id: str
    model: str
    tool_views: list[ToolCallView] = []
    interrupted: bool = False


def _parts_of(message: _FlatMessageV1) -> tuple[Part, ...]:
    # Format 1 streamed thinking before the text and the text before the calls.
    parts: list[Part] = []
    if message.thinking or message.thinking_signature:
        parts.append(ThinkingPart(text=message.thinking, signature=message.thinking_signature))
    if message.text:
        parts.append(TextPart(message.text))
    if message.refusal:
        parts.append(RefusalPart(message.refusal))
    parts += [ToolCall(call.id, call.name, call.arguments) for call in message.tool_calls]
    return tuple(parts)


def _response_of(record: AssistantTurnV1) -> AssistantResponse:
    return AssistantResponse(
        seq=record.seq,
        conv=record.conv,
        ts=record.ts,
        turn=record.turn,
        message=AssistantMessage(parts=_parts_of(record.message)),
        message_id=record.message_id,
        model=record.model,
        tool_views=record.tool_views,
        interrupted=record.interrupted,
    )


AnyRecord = CurrentRecord | AssistantTurnV1


def current(record: AnyRecord) -> CurrentRecord:
    """The record in the current format."""
    if isinstance(record, AssistantTurnV1):
        return _response_of(record)
    return record
