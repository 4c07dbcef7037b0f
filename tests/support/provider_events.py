"""Provider events in the one form byte boundaries cannot change, and the
response they make."""

from __future__ import annotations

from collections.abc import Iterable

from parleyd.providers.events import (
    JoinedEvents,
    ProviderEvent,
    RefusalDelta,
    TextDelta,
    ThinkingDelta,
    ToolCallEnd,
)
from parleyd.providers.messages import (
    AssistantMessage,
    Part,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCall,
)


def joined_runs(events: Iterable[ProviderEvent]) -> list[ProviderEvent]:
    """The events with every run of side-by-side deltas of one kind joined:
    which deltas arrived together (and were joined) depends on the network."""
    out = JoinedEvents()
    for event in events:
        out.add(event)
    return out.take()


def assistant_message(events: Iterable[ProviderEvent]) -> AssistantMessage:
    """The response the events stream, as the ordered parts a session keeps of
    it: side-by-side deltas of one kind make one part, a thinking part is whole
    once it has its signature or opaque payload (the next thinking is another
    part), and each tool call is a part where it ended."""
    parts: list[Part] = []
    for event in events:
        last = parts[-1] if parts else None
        match event:
            case TextDelta(text=text) | RefusalDelta(text=text):
                kind = TextPart if isinstance(event, TextDelta) else RefusalPart
                if isinstance(last, kind):
                    parts[-1] = kind(last.text + text)
                else:
                    parts.append(kind(text))
            case ThinkingDelta(text=text, signature=signature, redacted=redacted):
                if isinstance(last, ThinkingPart) and not (last.signature or last.redacted):
                    parts[-1] = ThinkingPart(last.text + text, signature, redacted)
                else:
                    parts.append(ThinkingPart(text, signature, redacted))
            case ToolCallEnd(call_id=call_id, name=name, arguments=arguments, signature=signature):
                parts.append(ToolCall(call_id, name, arguments, signature))
    return AssistantMessage(parts=tuple(parts))
