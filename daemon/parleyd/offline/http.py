"""A minimal HTTP/1.1 server on 127.0.0.1 for the offline model and the test replay server.

It speaks just enough HTTP for httpx: requests with a Content-Length body,
keep-alive, and responses always sent with chunked transfer encoding so a
handler can stream without knowing the length up front. Each `write` is one
chunk on the wire, drained before it returns, so a handler controls exactly
where the client sees byte boundaries (the replay tests rely on that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self

import msgspec

log = logging.getLogger(__name__)

HOST = "127.0.0.1"

# A peer that goes away mid-response surfaces as one of these, depending on
# whether the reset is seen while writing, draining or reading the next request.
_DISCONNECTS = (ConnectionError, asyncio.IncompleteReadError)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


class _DropConnection(Exception):
    """The connection cannot go on: a malformed request, or a handler that failed mid-response."""


class HttpResponder:
    """Sends one response: `start` once, then any number of `write` calls."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.started = False

    async def start(self, status: int, headers: Mapping[str, str]) -> None:
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        lines += [
            f"{name}: {value}"
            for name, value in headers.items()
            # Framing is this server's job: a handler's own length would contradict it.
            if name.lower() not in ("content-length", "transfer-encoding")
        ]
        lines.append("Transfer-Encoding: chunked")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await self._writer.drain()

    async def write(self, chunk: bytes) -> None:
        if not self.started:
            raise RuntimeError("call start() before write()")
        if not chunk:
            return  # an empty chunk would be read as the end of the body
        self._writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
        await self._writer.drain()

    async def finish(self) -> None:
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()


Handler = Callable[[HttpRequest, HttpResponder], Awaitable[None]]


class _Started(ABC):
    """`async with` runs `start` on entry and `close` on exit."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class LoopbackHttpServer(_Started):
    """`async with LoopbackHttpServer(handler) as server:` then talk to `server.url`."""

    def __init__(self, handler: Handler, port: int = 0) -> None:
        self._handler = handler
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connect, HOST, self._port)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://{HOST}:{port}"

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Handlers may be parked mid-response (a stalled stream in a test); ending
        # them is what closing a server means, and wait_closed would wait for them.
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A task of our own rather than a coroutine callback: asyncio inspects the
        # task it makes for one and logs a spurious error when close() cancels it.
        task = asyncio.create_task(self._connection(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve_connection(reader, writer)
        except _DISCONNECTS as exc:
            log.debug("loopback client went away: %r", exc)
        except _DropConnection as exc:
            log.debug("loopback server dropped a connection: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(*_DISCONNECTS):
                await writer.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            request = await _read_request(reader)
            if request is None:
                return
            responder = HttpResponder(writer)
            await self._run_handler(request, responder)
            if not responder.started:
                await _send_text(responder, 500, "the handler sent no response\n")
            await responder.finish()
            if request.headers.get("connection", "").lower() == "close":
                return

    async def _run_handler(self, request: HttpRequest, responder: HttpResponder) -> None:
        try:
            await self._handler(request, responder)
        except _DISCONNECTS:
            raise
        except Exception:
            log.exception("loopback handler failed on %s %s", request.method, request.path)
            if responder.started:
                # The status is already on the wire; cutting the connection without
                # the final chunk is the only way left to tell the client it failed.
                raise _DropConnection("handler failed mid-response") from None
            await _send_text(responder, 500, "the handler raised; see the server log\n")


async def _read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """The next request on the connection, or None when the client closed it cleanly."""
    request_line = await reader.readline()
    if not request_line:
        return None
    try:
        method, path, _version = request_line.decode("latin-1").split()
    except ValueError:
        raise _DropConnection(f"bad request line {request_line[:80]!r}") from None
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise _DropConnection(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise _DropConnection("chunked request bodies are not supported")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _DropConnection(f"bad content-length {headers['content-length']!r}") from None
    body = await reader.readexactly(length)
    return HttpRequest(method=method.upper(), path=path, headers=headers, body=body)


async def _send_text(responder: HttpResponder, status: int, text: str) -> None:
    await responder.start(status, {"Content-Type": "text/plain; charset=utf-8"})
    await responder.write(text.encode())


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class LoopbackService(_Started):
    """A service with a loopback HTTP server of its own: `async with` starts and
    stops it; subclasses answer every request in `_handle`."""

    def __init__(self, port: int = 0) -> None:
        self._http = LoopbackHttpServer(self._handle, port=port)

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` once started."""
        return self._http.url

    async def start(self) -> None:
        await self._http.start()

    async def close(self) -> None:
        await self._http.close()

    @abstractmethod
    async def _handle(self, request: HttpRequest, responder: HttpResponder) -> None: ...
