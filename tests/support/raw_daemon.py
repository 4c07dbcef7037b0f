"""The real daemon over raw pipes, for what a well-behaved client never sends:
broken JSON, wrong framing, huge frames, requests out of order. Every frame the
daemon answers with is still checked against ACP's schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import PARLEYD

# Long enough for any answer on a loaded CI machine; a hang fails instead of blocking.
_RECEIVE_TIMEOUT = 30.0


class RawDaemon:
    """Raw frames to and from a daemon: its stdio, or one connection to a listener."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        framing: str = "ndjson",
        process: asyncio.subprocess.Process | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.framing = framing
        self._process = process
        self.checker = FrameChecker()
        self._ids = 1000
        self.frames: list[dict[str, Any]] = []

    @property
    def process(self) -> asyncio.subprocess.Process:
        assert self._process is not None, "this daemon was not started here"
        return self._process

    async def send_bytes(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def frame(self, body: bytes) -> bytes:
        if self.framing == "content-length":
            return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        return body + b"\n"

    async def send(self, message: dict[str, Any]) -> None:
        self.checker.sent(message)
        await self.send_bytes(self.frame(json.dumps(message).encode()))

    async def send_batch(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.checker.sent(message)
        await self.send_bytes(self.frame(json.dumps(messages).encode()))

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        """Send a request and return its response, keeping notifications aside."""
        self._ids += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._ids, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        while True:
            frame = await self.receive()
            if frame.get("id") == self._ids and "method" not in frame:
                return frame

    async def until(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read frames until one satisfies `wanted`."""
        while True:
            frame = await self.receive()
            if wanted(frame):
                return frame

    async def start_prompt(self, session_id: str, text: str, request_id: int) -> None:
        """Send a `session/prompt` without waiting for its answer."""
        prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
        await self.send(
            {"jsonrpc": "2.0", "id": request_id, "method": "session/prompt", "params": prompt}
        )

    async def receive(self, *, check: bool = True) -> dict[str, Any]:
        frame = await self.receive_frame(check=check)
        assert isinstance(frame, dict), f"expected one message, got {frame!r:.200}"
        return frame

    async def receive_frame(self, *, check: bool = True) -> dict[str, Any] | list[dict[str, Any]]:
        """The next frame: one message, or the array that answers a batch.
        `check=False` skips the schema check, for reading thousands of frames."""
        body = await asyncio.wait_for(self._read_body(), _RECEIVE_TIMEOUT)
        frame: dict[str, Any] | list[dict[str, Any]] = json.loads(body)
        for message in frame if isinstance(frame, list) else [frame]:
            self.frames.append(message)
            if check:
                self.checker.received(message)
        return frame

    async def _read_body(self) -> bytes:
        stdout = self._reader
        if self.framing == "ndjson":
            line = await stdout.readline()
            if not line:
                raise EOFError("the daemon closed its end")
            return line
        length = None
        while True:
            header = await stdout.readline()
            if not header:
                raise EOFError("the daemon closed its end")
            if header in (b"\r\n", b"\n"):
                break
            name, _, value = header.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None, "a header block without Content-Length"
        return await stdout.readexactly(length)

    async def new_session(self, cwd: Path) -> str:
        """A `session/new` in `cwd`; its session id."""
        answer = await self.request("session/new", {"cwd": str(cwd), "mcpServers": []})
        session_id: str = answer["result"]["sessionId"]
        return session_id

    async def load_session(self, session_id: str, cwd: Path) -> dict[str, Any]:
        """A `session/load`, answered (its replay is in `frames`)."""
        params = {"sessionId": session_id, "cwd": str(cwd), "mcpServers": []}
        return await self.request("session/load", params)

    async def initialize(self) -> dict[str, Any]:
        return await self.request("initialize", {"protocolVersion": 1})


def split_frames(data: bytes, framing: str) -> list[Any]:
    """Every frame in a daemon's whole stdout, decoded; fails on any byte that is
    not part of a well-formed frame in `framing`."""
    if framing == "ndjson":
        assert data.endswith(b"\n") or not data, f"output ends mid-line: {data[-80:]!r}"
        return [json.loads(line) for line in data.splitlines()]
    frames: list[Any] = []
    while data:
        header, separator, rest = data.partition(b"\r\n\r\n")
        assert separator and header.startswith(b"Content-Length: "), f"not a frame: {data[:80]!r}"
        length = int(header.removeprefix(b"Content-Length: "))
        assert len(rest) >= length, f"output ends inside a frame: {data[:80]!r}"
        frames.append(json.loads(rest[:length]))
        data = rest[length:]
    return frames


@asynccontextmanager
async def raw_daemon(
    env: Mapping[str, str], framing: str = "ndjson", read_ahead: int = 64 * 1024 * 1024
) -> AsyncIterator[RawDaemon]:
    """The daemon on pipes. Of what it writes, this side buffers up to about
    twice `read_ahead` bytes before it stops reading (asyncio's StreamReader)."""
    process = await asyncio.create_subprocess_exec(
        *PARLEYD,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=read_ahead,
    )
    assert process.stdout is not None and process.stdin is not None
    try:
        yield RawDaemon(process.stdout, process.stdin, framing, process)
    finally:
        if process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
