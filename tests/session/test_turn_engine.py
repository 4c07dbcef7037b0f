"""The turn engine's own guarantees, on a real session with its real log,
index and loop: what a provider or a tool can do wrong that the recorded
streams and the built-in tools cannot be made to do on purpose (raise a
bug's exception, fail mid-stream), and cancels that land at the worst moments.

The provider and the faulty tools are stand-ins; everything else is Parley's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from parleyd.providers.events import (
    Done,
    ProviderEvent,
    TextDelta,
    ToolCallEnd,
    ToolCallStart,
)
from parleyd.providers.messages import ModelRequest, ToolResultMessage
from parleyd.session.errors import TurnCrashed
from parleyd.session.session import Session, TurnState
from parleyd.store.log import read_log
from parleyd.store.records import AssistantResponse, ToolOutcome, TurnEnded
from parleyd.tools.base import ToolContext, ToolKind, ToolResult
from tests.support.in_process import RecordingChannel, in_process_session


class ScriptedProvider:
    """Plays one list of events per model call; an exception in the list is raised."""

    name = "scripted"

    def __init__(self, *calls: list[ProviderEvent | BaseException]) -> None:
        self.calls = list(calls)
        self.requests: list[ModelRequest] = []
        self.streaming = asyncio.Event()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        self.requests.append(request)
        for event in self.calls.pop(0):
            if isinstance(event, BaseException):
                raise event
            self.streaming.set()
            await asyncio.sleep(0)
            yield event

    async def aclose(self) -> None:
        return None


class BrokenTool:
    name = "broken"
    description = "Raises what a bug raises."
    parameters: Mapping[str, Any] = {"type": "object", "properties": {}}
    kind: ToolKind = "read"
    needs_permission = False

    def title(self, arguments: Mapping[str, Any]) -> str:
        return "Broken"

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        b"\xff".decode("utf-8")
        raise AssertionError("unreachable")


class SlowTool(BrokenTool):
    name = "slow"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        self.started.set()
        await asyncio.sleep(60)
        return ToolResult("never")


def _call(call_id: str, name: str) -> list[ProviderEvent | BaseException]:
    return [
        ToolCallStart(index=0, call_id=call_id, name=name),
        ToolCallEnd(index=0, call_id=call_id, name=name, arguments="{}"),
        Done(stop_reason="tool_use"),
    ]


def _answer(text: str) -> list[ProviderEvent | BaseException]:
    return [TextDelta(text), Done(stop_reason="end_turn")]


def _records(session: Session) -> list[Any]:
    return read_log(session.log.folder).records


async def test_a_tool_raising_any_exception_is_a_failed_result_the_model_reads(
    tmp_path: Path,
) -> None:
    provider = ScriptedProvider(_call("c1", "broken"), _answer("It broke."))
    session = in_process_session(tmp_path, provider, BrokenTool())

    assert await session.prompt("go", []) == "end_turn"

    result = provider.requests[1].messages[-1]
    assert isinstance(result, ToolResultMessage) and result.is_error
    assert "UnicodeDecodeError" in result.content
    (outcome,) = [r for r in _records(session) if isinstance(r, ToolOutcome)]
    assert outcome.status == "failed"
    assert session.state is TurnState.IDLE


async def test_an_exception_mid_stream_ends_the_turn_recorded_and_the_session_usable(
    tmp_path: Path,
) -> None:
    provider = ScriptedProvider(
        [TextDelta("Half an answer"), RuntimeError("the provider module has a bug")],
        _answer("Whole."),
    )
    session = in_process_session(tmp_path, provider)

    with pytest.raises(TurnCrashed, match="RuntimeError: the provider module has a bug"):
        await session.prompt("one", [])
    assert await session.prompt("two", []) == "end_turn"

    records = _records(session)
    ends = [r for r in records if isinstance(r, TurnEnded)]
    assert [(e.stop_reason, e.error is not None) for e in ends] == [
        ("error", True),
        ("end_turn", False),
    ]
    partial = next(r for r in records if isinstance(r, AssistantResponse))
    assert partial.interrupted and partial.message.text == "Half an answer"
    # The second call saw the partial answer in its history.
    assert [type(m).__name__ for m in provider.requests[1].messages] == [
        "UserMessage",
        "AssistantMessage",
        "UserMessage",
    ]


async def test_cancels_during_the_closing_change_nothing(tmp_path: Path) -> None:
    slow = SlowTool()
    provider = ScriptedProvider(_call("c1", "slow"), _answer("Here again."))
    session = in_process_session(tmp_path, provider, slow)
    channel = session.channel
    assert isinstance(channel, RecordingChannel)

    async def cancel_again(update: Any) -> None:
        # Every update of the closing triggers more cancels and a close.
        if getattr(update, "status", None) == "failed":
            session.cancel()
            session.cancel()

    channel.on_update = cancel_again
    prompt = asyncio.ensure_future(session.prompt("go", []))
    await slow.started.wait()
    session.cancel()
    session.cancel()
    assert session.state is TurnState.CANCELLING
    # A prompt while the turn closes is the next turn, once the closing is done.
    after = asyncio.ensure_future(session.prompt("while cancelling", []))
    assert await prompt == "cancelled"
    assert await after == "end_turn"

    records = _records(session)
    (outcome,) = [r for r in records if isinstance(r, ToolOutcome)]
    assert outcome.status == "cancelled"
    first, second = [r for r in records if isinstance(r, TurnEnded)]
    assert first.stop_reason == "cancelled" and first.turn == outcome.turn
    assert second.stop_reason == "end_turn" and second.turn != first.turn
    assert session.state is TurnState.IDLE


async def test_one_tool_call_cancelled_alone_and_the_turn_goes_on(tmp_path: Path) -> None:
    slow = SlowTool()
    provider = ScriptedProvider(_call("c1", "slow"), _answer("Stopped, as asked."))
    session = in_process_session(tmp_path, provider, slow)
    prompt = asyncio.ensure_future(session.prompt("go", []))
    await slow.started.wait()

    assert session.cancel_tool_call("c1") is True
    assert await prompt == "end_turn"

    result = provider.requests[1].messages[-1]
    assert isinstance(result, ToolResultMessage) and result.is_error
    assert "Cancelled" in result.content
    assert session.cancel_tool_call("c1") is False


async def test_close_during_a_turn_waits_for_its_recorded_end(tmp_path: Path) -> None:
    slow = SlowTool()
    session = in_process_session(tmp_path, ScriptedProvider(_call("c1", "slow")), slow)
    prompt = asyncio.ensure_future(session.prompt("go", []))
    await slow.started.wait()

    await session.close()

    assert await prompt == "cancelled"
    ends = [r for r in read_log(session.log.folder).records if isinstance(r, TurnEnded)]
    assert [e.stop_reason for e in ends] == ["cancelled"]
