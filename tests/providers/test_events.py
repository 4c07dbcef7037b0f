"""Joining the deltas that arrived together: fewer events, the same stream."""

from __future__ import annotations

from parleyd.providers.events import (
    Done,
    ProviderEvent,
    RefusalDelta,
    TextDelta,
    ThinkingDelta,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from tests.support.provider_events import joined_runs


def test_side_by_side_deltas_of_one_kind_join_in_order() -> None:
    events: list[ProviderEvent] = [
        ThinkingDelta("Let me "),
        ThinkingDelta("think."),
        TextDelta("Hel"),
        TextDelta("lo"),
        TextDelta("!"),
        RefusalDelta("No"),
        RefusalDelta("pe"),
        TextDelta(" again"),
        Usage(input_tokens=3, output_tokens=4),
        Done("end_turn", "stop"),
    ]
    assert joined_runs(events) == [
        ThinkingDelta("Let me think."),
        TextDelta("Hello!"),
        RefusalDelta("Nope"),
        TextDelta(" again"),
        Usage(input_tokens=3, output_tokens=4),
        Done("end_turn", "stop"),
    ]


def test_arguments_join_per_call_and_lifecycle_events_stay_apart() -> None:
    events: list[ProviderEvent] = [
        ToolCallStart(0, "call_a", "read_file"),
        ToolCallArgumentsDelta(0, "call_a", '{"pa'),
        ToolCallArgumentsDelta(0, "call_a", 'th":"a"}'),
        ToolCallStart(1, "call_b", "read_file"),
        ToolCallArgumentsDelta(1, "call_b", "{}"),
        ToolCallArgumentsDelta(0, "call_a", ""),
        ToolCallEnd(0, "call_a", "read_file", '{"path":"a"}'),
        ToolCallEnd(1, "call_b", "read_file", "{}"),
    ]
    assert joined_runs(events) == [
        ToolCallStart(0, "call_a", "read_file"),
        ToolCallArgumentsDelta(0, "call_a", '{"path":"a"}'),
        ToolCallStart(1, "call_b", "read_file"),
        ToolCallArgumentsDelta(1, "call_b", "{}"),
        ToolCallArgumentsDelta(0, "call_a", ""),
        ToolCallEnd(0, "call_a", "read_file", '{"path":"a"}'),
        ToolCallEnd(1, "call_b", "read_file", "{}"),
    ]


def test_signed_and_redacted_thinking_keep_their_own_delta() -> None:
    events: list[ProviderEvent] = [
        ThinkingDelta("a"),
        ThinkingDelta("b"),
        ThinkingDelta("", signature="sig"),
        ThinkingDelta("", redacted="opaque"),
        ThinkingDelta("", redacted="opaque"),
        ThinkingDelta("c"),
    ]
    assert joined_runs(events) == [
        ThinkingDelta("ab"),
        ThinkingDelta("", signature="sig"),
        ThinkingDelta("", redacted="opaque"),
        ThinkingDelta("", redacted="opaque"),
        ThinkingDelta("c"),
    ]


def test_equal_lifecycle_events_side_by_side_are_not_taken_for_one() -> None:
    usage = Usage(input_tokens=1)
    assert joined_runs([usage, Usage(input_tokens=1)]) == [usage, usage]
