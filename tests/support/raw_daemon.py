"""The real daemon over raw pipes, for what a well-behaved client never sends:
broken JSON, wrong framing, huge frames, requests out of order. Every frame the
daemon answers with is still checked against ACP's schema."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import PARLEYD

# Long enough for any answer on a loaded CI machine; a hang fails instead of blocking.
_RECEIVE_TIMEOUT = 30.0


class RawDaemon:
    def __init__(self, process: asyncio.subprocess.Process, framing: str) -> None:
        self.process = process
        self.framing = framing
        self.checker = FrameChecker()
        self._ids = 1000
        self.frames: list[dict[str, Any]] = []

    async def send_bytes(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    def frame(self, body: bytes) -> bytes:
        if self.framing == "content-length":
            return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        return body + b"\n"

    async def send(self, message: dict[str, Any]) -> None:
        self.checker.sent(message)
        await self.send_bytes(self.frame(json.dumps(message).encode()))

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

    async def receive(self) -> dict[str, Any]:
        body = await asyncio.wait_for(self._read_body(), _RECEIVE_TIMEOUT)
        frame: dict[str, Any] = json.loads(body)
        self.frames.append(frame)
        self.checker.received(frame)
        return frame

    async def _read_body(self) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        if self.framing == "ndjson":
            line = await stdout.readline()
            if not line:
                raise EOFError("the daemon closed its stdout")
            return line
        length = None
        while True:
            header = await stdout.readline()
            if not header:
                raise EOFError("the daemon closed its stdout")
            if header in (b"\r\n", b"\n"):
                break
            name, _, value = header.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        assert length is not None, "a header block without Content-Length"
        return await stdout.readexactly(length)

    async def initialize(self) -> dict[str, Any]:
        return await self.request("initialize", {"protocolVersion": 1})


@asynccontextmanager
async def raw_daemon(env: Mapping[str, str], framing: str = "ndjson") -> AsyncIterator[RawDaemon]:
    process = await asyncio.create_subprocess_exec(
        *PARLEYD,
        env=dict(env),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=64 * 1024 * 1024,
    )
    try:
        yield RawDaemon(process, framing)
    finally:
        if process.returncode is None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
