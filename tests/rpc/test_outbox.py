"""Session updates on their lanes: taken in turns, folded while the client is
behind, answers after their session's updates; through a real FrameWriter."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from parley_protocol.acp import (
    AgentMessageChunk,
    SessionNotification,
    TextContent,
    ToolCallStart,
    UsageUpdate,
)
from parley_protocol.parley import PARLEY_META_KEY, ConversationRef
from parleyd.rpc.outbox import TURN_FRAMES, Outbox
from parleyd.rpc.server import ParleyProtocol
from parleyd.rpc.transport import FrameWriter
from parleyd.update_coalescing import UpdateCoalescing
from tests.rpc.fakes import CollectingSink


class StalledSink(CollectingSink):
    """A client that stops reading until `resume_reading`."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self.reading.set()

    async def drain(self) -> None:
        await self.reading.wait()


def _outbox(sink: CollectingSink) -> Outbox[SessionNotification]:
    def encode(params: SessionNotification) -> bytes:
        return ParleyProtocol.notification_body("session/update", params)

    return Outbox(FrameWriter(sink), encode, UpdateCoalescing())


def _meta(conversation: str = "conv_1") -> dict[str, Any]:
    return {PARLEY_META_KEY: {"conversation": ConversationRef(id=conversation)}}


def _chunk(session: str, text: str, message: str = "msg_1") -> SessionNotification:
    update = AgentMessageChunk(content=TextContent(text=text), message_id=message, meta=_meta())
    return SessionNotification(session_id=session, update=update)


def _usage(session: str, used: int) -> SessionNotification:
    return SessionNotification(
        session_id=session, update=UsageUpdate(used=used, size=1000, meta=_meta())
    )


def _call(session: str, call_id: str) -> SessionNotification:
    update = ToolCallStart(tool_call_id=call_id, title="Read a", status="pending", meta=_meta())
    return SessionNotification(session_id=session, update=update)


def _written(sink: CollectingSink) -> list[dict[str, Any]]:
    return [json.loads(line)["params"] for line in bytes(sink.data).splitlines()]


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_lane_with_little_to_say_is_not_kept_behind_a_busy_one() -> None:
    sink = StalledSink()
    outbox = _outbox(sink)
    sink.reading.clear()  # the busy lane's backlog builds up
    for n in range(60):
        await outbox.put("busy", _call("busy", f"call_{n}"))
    await outbox.put("quiet", _call("quiet", "call_q"))
    sink.reading.set()
    await outbox.flushed("quiet")
    await outbox.flushed("busy")
    sessions = [params["sessionId"] for params in _written(sink)]
    assert sorted(sessions) == ["busy"] * 60 + ["quiet"]
    # Written within one turn of the busy lane, not after all of it.
    assert sessions.index("quiet") <= 2 * TURN_FRAMES
    calls = [p["update"]["toolCallId"] for p in _written(sink) if p["sessionId"] == "busy"]
    assert calls == [f"call_{n}" for n in range(60)]
    await outbox.close()


async def test_while_the_client_is_behind_deltas_join_and_usage_is_replaced() -> None:
    sink = StalledSink()
    outbox = _outbox(sink)
    sink.reading.clear()
    await outbox.put("s", _chunk("s", "first "))
    await _settle()  # written; the writer now waits for the client
    for text in ("a ", "b ", "c "):
        await outbox.put("s", _chunk("s", text))
    await outbox.put("s", _usage("s", 10))
    await outbox.put("s", _call("s", "call_1"))
    await outbox.put("s", _chunk("s", "d "))
    await outbox.put("s", _chunk("s", "e "))
    await outbox.put("s", _usage("s", 20))
    sink.reading.set()
    await outbox.flushed("s")
    updates = [p["update"] for p in _written(sink)]
    # Nothing lost, nothing out of order: the text of each run joined, the
    # newest figures where the first queued ones stood.
    assert [(u["sessionUpdate"], u.get("content", {}).get("text")) for u in updates] == [
        ("agent_message_chunk", "first "),
        ("agent_message_chunk", "a b c "),
        ("usage_update", None),
        ("tool_call", None),
        ("agent_message_chunk", "d e "),
    ]
    assert updates[2]["used"] == 20
    await outbox.close()


async def test_a_client_keeping_up_gets_every_delta_as_it_came() -> None:
    sink = CollectingSink()
    outbox = _outbox(sink)
    for text in ("a ", "b ", "c "):
        await outbox.put("s", _chunk("s", text))
    await outbox.flushed("s")
    assert [p["update"]["content"]["text"] for p in _written(sink)] == ["a ", "b ", "c "]
    await outbox.close()


async def test_flushed_waits_for_the_lane_and_a_closed_client_holds_nobody() -> None:
    sink = StalledSink()
    outbox = _outbox(sink)
    sink.reading.clear()
    await outbox.put("s", _call("s", "call_1"))
    await _settle()  # written; the writer now waits for the client
    await outbox.put("s", _call("s", "call_2"))
    flushed = asyncio.create_task(outbox.flushed("s"))
    await _settle()
    assert not flushed.done()  # the second call still waits in its lane
    sink.reading.set()
    await asyncio.wait_for(flushed, 5)

    gone = StalledSink()
    closing = _outbox(gone)
    gone.reading.clear()
    await closing.put("s", _call("s", "call_1"))
    await closing.put("s", _call("s", "call_2"))
    closing._writer.closed = True  # the client went away
    await asyncio.wait_for(closing.put("s", _call("s", "call_3")), 5)
    await asyncio.wait_for(closing.flushed("s"), 5)
    await outbox.close()
