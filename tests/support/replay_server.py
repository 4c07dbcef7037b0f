"""A loopback HTTP server that answers with canned responses, byte for byte.

    async with ReplayServer() as server:
        server.enqueue_fixture("openai_chat/tool_call", chunk_size=7)
        provider = OpenAIChatProvider(f"{server.url}/v1", api_key="test")
        ...
        assert server.requests[0].json["stream"] is True

Each POST, whatever its path, takes the next canned response from the queue
and gets exactly its body bytes, cut into `chunk_size` pieces (each one an
HTTP chunk, so the client's reads see those boundaries) with `delay` seconds
before every piece after the first; `wait` seconds of silence come before
the response starts (a model loading). Every request is recorded. When the
queue is empty the server answers 500 with a JSON error that says so, which a
provider reports as a server error naming the replay server.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from parleyd.offline.http import HttpRequest, HttpResponder, LoopbackService
from tests.support.fixtures import FixtureCase, load_case


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    json: Any  # the parsed body; None when it was empty or not JSON


@dataclass(frozen=True)
class CannedResponse:
    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    chunk_size: int | None = None  # None: the whole body as one chunk
    delay: float = 0.0  # seconds before each chunk after the first
    wait: float = 0.0  # seconds before the status line

    def pieces(self) -> Iterator[bytes]:
        size = self.chunk_size or len(self.body) or 1
        for start in range(0, len(self.body), size):
            yield self.body[start : start + size]


class ReplayServer(LoopbackService):
    """An async context manager; `url` is `http://127.0.0.1:PORT` once entered."""

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[CannedResponse] = deque()
        self.requests: list[RecordedRequest] = []

    @property
    def pending(self) -> int:
        """Canned responses not served yet."""
        return len(self._queue)

    def enqueue(
        self,
        status: int,
        content_type: str,
        body: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        chunk_size: int | None = None,
        delay: float = 0.0,
        wait: float = 0.0,
    ) -> None:
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self._queue.append(
            CannedResponse(status, content_type, body, dict(headers or {}), chunk_size, delay, wait)
        )

    def enqueue_fixture(
        self, case: str, *, chunk_size: int | None = None, delay: float = 0.0, wait: float = 0.0
    ) -> FixtureCase:
        """Queue a recorded response ("openai_chat/tool_call") with its recorded status,
        content type and headers; returns the loaded case for its meta and request."""
        fixture = load_case(case)
        self.enqueue(
            fixture.status,
            fixture.content_type,
            fixture.body,
            headers=fixture.headers,
            chunk_size=chunk_size,
            delay=delay,
            wait=wait,
        )
        return fixture

    async def _handle(self, request: HttpRequest, responder: HttpResponder) -> None:
        self.requests.append(_record(request))
        if request.method != "POST":
            await _json_error(
                responder, 405, f"replay server: only POST is served, not {request.method}"
            )
        elif not self._queue:
            await _json_error(
                responder,
                500,
                f"replay server: no canned response left for {request.method} {request.path}",
            )
        else:
            await _serve(self._queue.popleft(), responder)


def _record(request: HttpRequest) -> RecordedRequest:
    try:
        body = request.json() if request.body else None
    except msgspec.DecodeError:
        body = None
    return RecordedRequest(request.method, request.path, request.headers, body)


async def _serve(canned: CannedResponse, responder: HttpResponder) -> None:
    if canned.wait:
        await asyncio.sleep(canned.wait)
    await responder.start(canned.status, {"Content-Type": canned.content_type, **canned.headers})
    for number, piece in enumerate(canned.pieces()):
        if number and canned.delay:
            await asyncio.sleep(canned.delay)
        await responder.write(piece)


async def _json_error(responder: HttpResponder, status: int, message: str) -> None:
    await responder.start(status, {"Content-Type": "application/json"})
    await responder.write(msgspec.json.encode({"error": {"message": message}}))
