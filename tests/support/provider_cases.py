"""What a provider's recorded cases are expected to give, and the tests that
replay every one of them over loopback through the real httpx path. The
expectations were written by reading each capture, not by running the provider.

A provider's module states what each of its cases gives and inherits the tests:

    class TestRecordedCases(RecordedCases):
        provider = ANTHROPIC
        expected = {"text": InOrder(parts=(Text("Hello"),), end=Done("end_turn", "end_turn"))}

Texts, signatures and payloads too long to spell out are pinned by length,
SHA-256, and their first and last characters (`Long`).
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec
import pytest

from parleyd.providers.events import (
    Done,
    ProviderEvent,
    RefusalDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from parleyd.providers.messages import Part, TextPart, ThinkingPart, ToolCall
from tests.support.fixtures import case_names, load_case
from tests.support.provider_events import assistant_message, joined_runs
from tests.support.providers_under_test import ProviderUnderTest
from tests.support.replay_server import ReplayServer

# Stands in an expected error message for the URL the provider posted to.
URL = "{url}"
# Where the bytes of a stream break: every replay is cut at each of these sizes too.
CHUNK_SIZES = (1, 5, 7, 64, 1000)


@dataclass(frozen=True)
class Long:
    """A text too long to write out in a test: pinned by its length, SHA-256,
    and its first and last 40 characters."""

    length: int
    sha256: str
    head: str
    tail: str


def assert_text(actual: str | None, expected: str | Long | None) -> None:
    """`actual` is `expected`; None expects none."""
    if expected is None or isinstance(expected, str):
        assert actual == expected
        return
    assert actual is not None
    assert (len(actual), actual[:40], actual[-40:]) == (
        expected.length,
        expected.head,
        expected.tail,
    )
    assert hashlib.sha256(actual.encode()).hexdigest() == expected.sha256


# --- the parts of a response ------------------------------------------------------


@dataclass(frozen=True)
class Text:
    text: str | Long


@dataclass(frozen=True)
class Thinking:
    """`signature` signs the text, `redacted` is an opaque payload: each one
    left out must be absent."""

    text: str | Long = ""
    signature: str | Long | None = None
    redacted: str | Long | None = None


@dataclass(frozen=True)
class Call:
    """`id` as a pattern: an id Parley made for a call that came without one.
    `arguments` parsed, or as a string the exact JSON text."""

    id: str | re.Pattern[str]
    name: str
    arguments: dict[str, Any] | str
    signature: Long | None = None


ExpectedPart = Text | Thinking | Call


def assert_parts(parts: Sequence[Part], expected: Sequence[ExpectedPart]) -> None:
    assert len(parts) == len(expected), parts
    for part, expected_part in zip(parts, expected, strict=True):
        assert_part(part, expected_part)


def assert_part(part: Part, expected: ExpectedPart) -> None:
    match expected:
        case Text(text=text):
            assert isinstance(part, TextPart), part
            assert_text(part.text, text)
        case Thinking(text=text, signature=signature, redacted=redacted):
            assert isinstance(part, ThinkingPart), part
            assert_text(part.text, text)
            assert_text(part.signature, signature)
            assert_text(part.redacted, redacted)
        case Call(id=call_id, name=name, arguments=arguments, signature=signature):
            assert isinstance(part, ToolCall), part
            if isinstance(call_id, str):
                assert part.id == call_id
            else:
                assert call_id.fullmatch(part.id), part.id
            assert part.name == name
            if isinstance(arguments, str):
                assert part.arguments == arguments
            else:
                assert json.loads(part.arguments) == arguments
            assert_text(part.signature, signature)


# --- what a case gives --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Outcome(ABC):
    """How the stream ends (an error's message may hold `URL`), its usage, and
    what it says (`assert_content`)."""

    end: Done | StreamError
    usage: Usage | None = None

    @abstractmethod
    def assert_content(self, events: Sequence[ProviderEvent]) -> None: ...

    def assert_given_by(self, events: Sequence[ProviderEvent], url: str) -> None:
        self.assert_content(events)
        usage = [event for event in events if isinstance(event, Usage)]
        assert usage == ([self.usage] if self.usage else [])
        end = self.end
        if isinstance(end, StreamError):
            end = msgspec.structs.replace(end, message=end.message.replace(URL, url))
        assert events[-1] == end


@dataclass(frozen=True, kw_only=True)
class ByKind(Outcome):
    """The response as each kind of delta joined whole, the encrypted
    reasoning payloads, and the calls."""

    text: str | Long = ""
    thinking: str | Long = ""
    refusal: str = ""
    payloads: tuple[str | Long, ...] = ()
    tool_calls: tuple[Call, ...] = ()

    def assert_content(self, events: Sequence[ProviderEvent]) -> None:
        assert_text(_joined(events, TextDelta), self.text)
        assert_text(_joined(events, ThinkingDelta), self.thinking)
        assert_text(_joined(events, RefusalDelta), self.refusal)
        payloads = [e.redacted for e in events if isinstance(e, ThinkingDelta) and e.redacted]
        assert len(payloads) == len(self.payloads)
        for payload, expected in zip(payloads, self.payloads, strict=True):
            assert_text(payload, expected)
        assert_parts(assistant_message(events).tool_calls, self.tool_calls)


@dataclass(frozen=True, kw_only=True)
class InOrder(Outcome):
    """The response as the ordered parts a session keeps of it."""

    parts: tuple[ExpectedPart, ...] = ()

    def assert_content(self, events: Sequence[ProviderEvent]) -> None:
        assert_parts(assistant_message(events).parts, self.parts)


def _joined(
    events: Sequence[ProviderEvent], kind: type[TextDelta | ThinkingDelta | RefusalDelta]
) -> str:
    return "".join(event.text for event in events if isinstance(event, kind))


# --- the shape of every stream ------------------------------------------------------


def assert_well_formed(events: Sequence[ProviderEvent], *, unstreamed_arguments: str = "") -> None:
    """One terminal event, last, with the usage (if any) just before it. The
    calls are numbered in the order they start, each under an id of its own;
    a call's argument deltas (none empty) come after its start and before its
    one end, which has its start's index and name and the deltas joined
    (`unstreamed_arguments` when none came). Only a failed stream leaves a call
    open."""
    terminal = [event for event in events if isinstance(event, Done | StreamError)]
    assert terminal == [events[-1]]
    usage = [i for i, event in enumerate(events) if isinstance(event, Usage)]
    assert usage in ([], [len(events) - 2])
    starts = {e.call_id: (i, e) for i, e in enumerate(events) if isinstance(e, ToolCallStart)}
    numbers = [e.index for e in events if isinstance(e, ToolCallStart)]
    assert numbers == list(range(len(starts))), "numbered out of order, or an id used twice"
    ends = {e.call_id: (i, e) for i, e in enumerate(events) if isinstance(e, ToolCallEnd)}
    assert len(ends) == len([e for e in events if isinstance(e, ToolCallEnd)]), "ended twice"
    assert ends.keys() <= starts.keys(), "ended without a start"
    if isinstance(events[-1], Done):
        assert ends.keys() == starts.keys(), "a finished stream left a call open"
    for call_id, (start_at, start) in starts.items():
        end_at = ends[call_id][0] if call_id in ends else len(events)
        streamed = [
            (i, e)
            for i, e in enumerate(events)
            if isinstance(e, ToolCallArgumentsDelta) and e.call_id == call_id
        ]
        assert all(start_at < i < end_at for i, _ in streamed)
        assert all(delta.index == start.index for _, delta in streamed)
        assert all(delta.delta for _, delta in streamed), "empty argument deltas are noise"
        if call_id in ends:
            end = ends[call_id][1]
            assert start_at < end_at
            assert (end.index, end.name) == (start.index, start.name)
            joined = "".join(delta.delta for _, delta in streamed)
            assert end.arguments == (joined or unstreamed_arguments)


# --- the tests every provider's cases get -------------------------------------------


async def replay(
    provider: ProviderUnderTest, server: ReplayServer, case: str, chunk_size: int | None = None
) -> list[ProviderEvent]:
    server.enqueue_fixture(f"{provider.name}/{case}", chunk_size=chunk_size)
    return await provider.stream(provider.base_url(server))


class RecordedCases:
    """Every case in the provider's folder of `tests/fixtures/providers`, and
    what each gives. A provider whose streams have more shape to them than
    every stream has extends `assert_well_formed`."""

    provider: ClassVar[ProviderUnderTest]
    expected: ClassVar[Mapping[str, Outcome]]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        # pytest asks the class of each test method: the cases are the subclass's.
        if "case" in metafunc.fixturenames:
            metafunc.parametrize("case", sorted(self.expected))

    def assert_well_formed(self, events: Sequence[ProviderEvent]) -> None:
        assert_well_formed(events)

    def test_every_recorded_case_has_expectations(self) -> None:
        assert case_names(self.provider.name) == sorted(self.expected)

    def test_written_cases_say_so_and_what_they_follow(self) -> None:
        for case in self.expected:
            meta = load_case(f"{self.provider.name}/{case}").meta
            if meta.get("written"):
                assert meta["documentation"].startswith(self.provider.documentation), case
                assert meta["written_note"], case
            else:
                assert meta["source"]["repository"], case

    async def test_replayed_case_gives_the_recorded_outcome(
        self, server: ReplayServer, case: str
    ) -> None:
        events = await replay(self.provider, server, case)
        self.assert_well_formed(events)
        self.expected[case].assert_given_by(events, self.provider.endpoint_url(server))

    async def test_byte_boundaries_do_not_change_the_events(
        self, server: ReplayServer, case: str
    ) -> None:
        # Where the bytes break decides which deltas arrive together and are
        # joined, nothing else: joined whole, every replay is the same stream.
        whole = joined_runs(await replay(self.provider, server, case))
        for chunk_size in CHUNK_SIZES:
            pieces = await replay(self.provider, server, case, chunk_size)
            assert joined_runs(pieces) == whole, f"chunk_size={chunk_size}"

    async def test_replay_records_the_request(self, server: ReplayServer) -> None:
        await replay(self.provider, server, self.provider.text_case)
        (request,) = server.requests
        assert (request.method, request.path) == ("POST", self.provider.endpoint)
        assert isinstance(request.json, dict)
        assert '"hi"' in json.dumps(request.json)  # the prompt, parsed back
        assert server.pending == 0
