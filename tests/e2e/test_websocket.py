"""`parleyd --listen ws://`: ACP over WebSocket at `/acp`, each text message one
JSON-RPC message, for a client that presents the listener's token on the
upgrade; the daemon outlives its clients and cleans up after itself.

The editor here is the `websockets` client: what a remote editor would use."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.daemon import offline_env
from tests.support.listeners import listening, token_in
from tests.support.raw_daemon import RawDaemon

WS_LINE = re.compile(r"parleyd listening on ws://([\d.]+):(\d+)/acp token-file (.+)")


@dataclass(frozen=True)
class Listener:
    process: asyncio.subprocess.Process
    url: str
    token_file: Path
    token: str


@asynccontextmanager
async def ws_listening(home: Path, *flags: str) -> AsyncIterator[Listener]:
    """parleyd on a WebSocket at a free port. Unless it exited by itself, it is
    stopped with SIGTERM, as a service manager would; either way it must exit
    0 and take its token file with it."""
    async with listening(offline_env(home), "ws://127.0.0.1:0", *flags) as (process, line):
        found = WS_LINE.fullmatch(line)
        assert found, line
        token_file = Path(found.group(3))
        url = f"ws://{found.group(1)}:{found.group(2)}/acp"
        yield Listener(process, url, token_file, token_in(token_file))
    assert not await asyncio.to_thread(token_file.exists)


@asynccontextmanager
async def upgraded(listener: Listener) -> AsyncIterator[ClientConnection]:
    headers = {"Authorization": f"Bearer {listener.token}"}
    async with connect(listener.url, additional_headers=headers) as websocket:
        yield websocket


class _MessageWriter:
    """RawDaemon's writer: each frame it writes goes out as one text message."""

    def __init__(self, websocket: ClientConnection) -> None:
        self._websocket = websocket
        self._frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        self._frames.append(data)

    async def drain(self) -> None:
        frames, self._frames = self._frames, []
        for frame in frames:
            await self._websocket.send(frame.removesuffix(b"\n"), text=True)


async def _lines_from(websocket: ClientConnection, reader: asyncio.StreamReader) -> None:
    """Every message the daemon sends, as one line for RawDaemon to read; each
    must be one text message holding one frame."""
    try:
        async for message in websocket:
            if not isinstance(message, str) or "\n" in message:
                reader.set_exception(AssertionError(f"not one text frame: {message!r:.200}"))
                return
            reader.feed_data(message.encode() + b"\n")
    except ConnectionClosed:
        pass
    reader.feed_eof()


@asynccontextmanager
async def over(websocket: ClientConnection) -> AsyncIterator[RawDaemon]:
    """The daemon at the other end of `websocket`, every frame it sends checked
    against ACP's schema."""
    reader = asyncio.StreamReader()
    reading = asyncio.create_task(_lines_from(websocket, reader))
    try:
        yield RawDaemon(reader, _MessageWriter(websocket))  # type: ignore[arg-type]
    finally:
        reading.cancel()


@asynccontextmanager
async def editor(listener: Listener) -> AsyncIterator[RawDaemon]:
    async with upgraded(listener) as websocket, over(websocket) as daemon:
        yield daemon


def _update(frame: dict[str, Any]) -> dict[str, Any]:
    if frame.get("method") != "session/update":
        return {}
    update: dict[str, Any] = frame["params"]["update"]
    return update


def _agent_text(frames: list[dict[str, Any]]) -> str:
    return "".join(
        update["content"]["text"]
        for update in map(_update, frames)
        if update.get("sessionUpdate") == "agent_message_chunk"
    )


async def test_a_turn_over_a_websocket_and_its_replay_after_reconnecting(
    home: Path, workspace: Path
) -> None:
    async with ws_listening(home) as listener:
        async with editor(listener) as daemon:
            # Admitted at the upgrade: initialize needs no token.
            initialized = await daemon.initialize()
            assert initialized["result"]["protocolVersion"] == 1
            session_id = await daemon.new_session(workspace)
            await daemon.start_prompt(session_id, "Hi", 7)
            answer = await daemon.until(lambda frame: frame.get("id") == 7)
            assert answer["result"] == {"stopReason": "end_turn"}
            told = _agent_text(daemon.frames)
            assert told.strip()
        # The session outlives the connection; a replay is many frames at once.
        async with editor(listener) as again:
            await again.initialize()
            assert "result" in await again.load_session(session_id, workspace)
            assert _agent_text(again.frames) == told


async def test_a_permission_round_trip(home: Path, workspace: Path) -> None:
    async with ws_listening(home) as listener, editor(listener) as daemon:
        await daemon.initialize()
        session_id = await daemon.new_session(workspace)
        await daemon.start_prompt(session_id, 'Write a note saying "later"', 9)
        ask = await daemon.until(lambda frame: frame.get("method") == "session/request_permission")
        assert ask["params"]["sessionId"] == session_id
        outcome = {"outcome": "selected", "optionId": "allow_once"}
        await daemon.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"outcome": outcome}})
        answer = await daemon.until(lambda frame: frame.get("id") == 9)
        assert answer["result"] == {"stopReason": "end_turn"}
    assert "- later" in (workspace / "NOTES.md").read_text()


async def test_each_message_is_one_json_rpc_message(home: Path) -> None:
    async with (
        ws_listening(home) as listener,
        upgraded(listener) as websocket,
        over(websocket) as daemon,
    ):
        await daemon.initialize()
        # Pretty-printed: its newlines are whitespace, not frame ends.
        listing = {"jsonrpc": "2.0", "id": 1, "method": "session/list", "params": {}}
        daemon.checker.sent(listing)
        await websocket.send(json.dumps(listing, indent=2))
        assert (await daemon.receive())["result"] == {"sessions": []}
        # Binary is read as JSON too.
        daemon.checker.sent({**listing, "id": 2})
        await websocket.send(json.dumps({**listing, "id": 2}).encode())
        assert (await daemon.receive())["id"] == 2
        # A batch is one message each way.
        await daemon.send_batch([{**listing, "id": 3}, {**listing, "id": 4}])
        answers = await daemon.receive_frame()
        assert isinstance(answers, list)
        assert [answer["id"] for answer in answers] == [3, 4]
        await websocket.send("no json here")
        broken = await daemon.receive()
        assert broken["id"] is None
        assert broken["error"]["code"] == -32700
        # ... and the connection goes on.
        assert "result" in await daemon.request("session/list", {})


async def test_the_upgrade_names_the_connection(home: Path) -> None:
    async with (
        ws_listening(home) as listener,
        upgraded(listener) as first,
        upgraded(listener) as second,
    ):
        assert first.response is not None and second.response is not None
        named = {first.response.headers["Acp-Connection-Id"]}
        named.add(second.response.headers["Acp-Connection-Id"])
        assert len(named) == 2


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer guess", "Basic {token}", "Bearer {token}x"],
    ids=["none", "wrong", "not-bearer", "longer"],
)
async def test_without_the_token_there_is_no_upgrade(home: Path, authorization: str | None) -> None:
    async with ws_listening(home) as listener:
        headers = (
            {}
            if authorization is None
            else {"Authorization": authorization.format(token=listener.token)}
        )
        with pytest.raises(InvalidStatus) as refused:
            async with connect(listener.url, additional_headers=headers):
                pass
        response = refused.value.response
        assert response.status_code == 401
        assert b"Authorization: Bearer" in response.body
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        # The refusal tells a stranger nothing about the owner's files.
        assert str(listener.token_file.parent).encode() not in response.body


async def test_acp_is_served_at_acp_only(home: Path) -> None:
    async with ws_listening(home) as listener:
        headers = {"Authorization": f"Bearer {listener.token}"}
        with pytest.raises(InvalidStatus) as refused:
            async with connect(listener.url.replace("/acp", "/"), additional_headers=headers):
                pass
        assert refused.value.response.status_code == 404
        assert b"/acp" in refused.value.response.body


async def test_plain_http_is_told_to_upgrade(home: Path) -> None:
    async with ws_listening(home) as listener:
        host, _, port = listener.url.removeprefix("ws://").removesuffix("/acp").partition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"GET /acp HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {listener.token}\r\n\r\n".encode()
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 30)  # the server closes after it
        writer.close()
        await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 426 ")
    assert b"\r\nUpgrade: websocket" in head
    assert b"Upgrade: websocket" in body and b"Streamable HTTP" in body


async def test_a_client_that_drops_mid_turn_does_not_stop_the_daemon(
    home: Path, workspace: Path
) -> None:
    async with ws_listening(home) as listener:
        async with upgraded(listener) as websocket, over(websocket) as first:
            await first.initialize()
            session_id = await first.new_session(workspace)
            await first.start_prompt(session_id, "Tell me a long story", 9)
            await first.until(
                lambda frame: _update(frame).get("sessionUpdate") == "agent_message_chunk"
            )
            # Gone without a closing handshake, as when a network drops.
            websocket.transport.abort()
        async with editor(listener) as second:
            await second.initialize()
            listed = await second.request("session/list", {})
            assert session_id in {session["sessionId"] for session in listed["result"]["sessions"]}


async def test_an_idle_daemon_exits_and_removes_its_token_file(home: Path) -> None:
    async with ws_listening(home, "--idle-exit", "0.2") as listener:
        async with editor(listener) as daemon:
            assert "result" in await daemon.initialize()
        assert await asyncio.wait_for(listener.process.wait(), 30) == 0
