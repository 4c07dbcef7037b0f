"""HTTP/1.1 connections for model streams, under httpx's client.

httpx's own connection layer (httpcore over h11) walks every chunk of a chunked
body through a Python state machine, about 20 µs a chunk. A model stream is
thousands of tiny chunks, one per token, and that walk alone cost twice the
daemon's whole budget per streamed delta. This layer decodes a body with
`bytes.find` over whatever one socket read delivered and hands it up in one
piece: many chunks, one step up the stack.

Everything above the connection stays httpx's: requests and headers, timeouts,
content decoding, errors, and proxies (httpx mounts its own transport for the
URLs an `HTTPS_PROXY` or `ALL_PROXY` covers, so those never come here).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

# A loop iteration runs one step of every stream being read, each step what
# one read returned, so the streams share this much per iteration: however
# many sessions stream, the loop comes back to a cancel within milliseconds,
# and a stream alone reads in big pieces, which cost less per event.
_ITERATION_READ = 64 * 1024
_LEAST_READ = 2 * 1024
_HEAD_LIMIT = 256 * 1024
_DEFAULT_PORTS = {b"http": 80, b"https": 443}
_NO_BODY_STATUSES = frozenset({204, 304})
# A chunk's size line: hex digits, then optional extensions. int() alone would
# also take a sign, "0x" and "_", and a negative size would send the decoder
# backwards over the bytes it had read.
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?")
Origin = tuple[bytes, bytes, int]
# A request's `timeout` extension may hold this beside httpx's four: how long
# the answer's head may take, where that is longer than any silence after it
# (Ollama answers once it has loaded the model). Without it, `read` bounds both.
ANSWER_TIMEOUT = "answer"


class ModelStreamTransport(httpx.AsyncBaseTransport):
    """Direct HTTP/1.1 (plain or TLS) connections, kept alive per origin."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True, keep_alive: int = 8) -> None:
        self._verify = verify
        self._ssl_context: ssl.SSLContext | None = None
        self._keep_alive = keep_alive
        self._idle: dict[Origin, list[_Connection]] = {}
        self._share = _ReadShare()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(
                f"{request.url} is not an http:// or https:// URL", request=request
            )
        origin = (scheme, request.url.raw_host, request.url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head = _request_head(request, await request.aread())
        # A kept-alive connection the server has closed meanwhile (servers end
        # idle ones when they like) fails before a byte of answer: the server
        # never took the request, which goes again, once, on a new connection;
        # the others kept for that server are as old, and are dropped too.
        if (connection := self._take_idle(origin)) is not None:
            try:
                return await connection.exchange(request, head, timeouts)
            except _ClosedWhileIdle:
                connection.abort()
                for stale in self._idle.pop(origin, []):
                    stale.abort()
        connection = await self._connect(request, origin, timeouts.get("connect"))
        return await connection.exchange(request, head, timeouts)

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.abort()
        self._idle.clear()

    def _take_idle(self, origin: Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        while connections:
            connection = connections.pop()
            if connection.still_open():
                return connection
            connection.abort()
        return None

    def _give_back(self, connection: _Connection) -> None:
        connections = self._idle.setdefault(connection.origin, [])
        if len(connections) < self._keep_alive:
            connections.append(connection)
        else:
            connection.abort()

    async def _connect(
        self, request: httpx.Request, origin: Origin, within: float | None
    ) -> _Connection:
        scheme, host, port = origin
        hostname = host.decode("ascii")
        context = self._context() if scheme == b"https" else None
        try:
            async with asyncio.timeout(within):
                reader, writer = await asyncio.open_connection(
                    hostname,
                    port,
                    ssl=context,
                    server_hostname=hostname if context is not None else None,
                    limit=_HEAD_LIMIT,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(
                f"no connection to {hostname}:{port} in {within:g} s", request=request
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(
                f"cannot connect to {hostname}:{port}: {exc}", request=request
            ) from exc
        return _Connection(origin, reader, writer, self._give_back, self._share)

    def _context(self) -> ssl.SSLContext:
        # Built on first use: loading the CA bundle takes tens of milliseconds.
        if self._ssl_context is None:
            verify = self._verify
            self._ssl_context = (
                verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
            )
        return self._ssl_context


class _ReadShare:
    """How much each body being read takes per read (see `_ITERATION_READ`)."""

    def __init__(self) -> None:
        self.readers = 0

    def size(self) -> int:
        return max(_LEAST_READ, _ITERATION_READ // max(self.readers, 1))


class _ClosedWhileIdle(Exception):
    """A reused connection ended before the first byte of an answer."""


def _request_head(request: httpx.Request, body: bytes) -> bytes:
    """Request line, headers and body, as one write. The body is always sent
    with its length: it was read whole, so a chunked upload has no reason to be."""
    lines = [b"%b %b HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    for name, value in request.headers.raw:
        if name.lower() not in (b"content-length", b"transfer-encoding"):
            lines.append(b"%b: %b" % (name, value))
    if body or request.method not in ("GET", "HEAD"):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _Connection:
    def __init__(
        self,
        origin: Origin,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        give_back: Callable[[_Connection], None],
        share: _ReadShare,
    ) -> None:
        self.origin = origin
        self.share = share
        self._reader = reader
        self._writer = writer
        self._give_back = give_back
        self._used = False

    def still_open(self) -> bool:
        # An idle connection the server has ended cannot carry the next exchange.
        return not (self._writer.transport.is_closing() or self._reader.at_eof())

    def abort(self) -> None:
        self._writer.transport.abort()

    async def exchange(
        self, request: httpx.Request, head: bytes, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        reused, self._used = self._used, True
        try:
            self._writer.write(head)
            async with asyncio.timeout(timeouts.get("write")):
                await self._writer.drain()
        except TimeoutError as exc:
            self.abort()
            raise httpx.WriteTimeout(
                "the request could not be sent in time", request=request
            ) from exc
        except OSError as exc:
            if reused:
                raise _ClosedWhileIdle from exc
            self.abort()
            raise httpx.WriteError(f"sending the request failed: {exc}", request=request) from exc
        read_timeout = timeouts.get("read")
        try:
            answer_timeout = timeouts.get(ANSWER_TIMEOUT, read_timeout)
            status, reason, headers = await self._read_head(request, answer_timeout, reused)
            framing = _framing(request, status, headers)
        except BaseException:
            self.abort()
            raise
        body = _Body(self, request, read_timeout, framing)
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )

    async def _read_head(
        self, request: httpx.Request, within: float | None, reused: bool
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        while True:  # informational answers (100 Continue, 103 Early Hints) come first
            try:
                async with asyncio.timeout(within):
                    raw = await self._reader.readuntil(b"\r\n\r\n")
            except TimeoutError as exc:
                raise httpx.ReadTimeout(f"no answer in {within:g} s", request=request) from exc
            except asyncio.IncompleteReadError as exc:
                if reused and not exc.partial:
                    raise _ClosedWhileIdle from exc
                raise httpx.RemoteProtocolError(
                    "the server disconnected without sending a whole answer", request=request
                ) from exc
            except asyncio.LimitOverrunError as exc:
                raise httpx.RemoteProtocolError(
                    "the answer's headers are too long", request=request
                ) from exc
            except OSError as exc:
                if reused:
                    raise _ClosedWhileIdle from exc
                raise httpx.ReadError(f"reading the answer failed: {exc}", request=request) from exc
            status, reason, headers = _parse_head(request, raw)
            if not 100 <= status < 200 or status == 101:
                return status, reason, headers

    async def read(self, request: httpx.Request, within: float | None, size: int) -> bytes:
        try:
            async with asyncio.timeout(within):
                return await self._reader.read(size)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"nothing arrived for {within:g} s", request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(f"reading the answer failed: {exc}", request=request) from exc

    def finished(self, reusable: bool) -> None:
        if reusable and not self._writer.transport.is_closing():
            self._give_back(self)
        else:
            self.abort()


def _parse_head(request: httpx.Request, raw: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    status_line, *header_lines = raw[:-4].split(b"\r\n")
    version, _, rest = status_line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if not version.startswith(b"HTTP/1.") or not code.isdigit() or len(code) != 3:
        raise httpx.RemoteProtocolError(
            f"not an HTTP/1.1 status line: {status_line[:80]!r}", request=request
        )
    headers: list[tuple[bytes, bytes]] = []
    for line in header_lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise httpx.RemoteProtocolError(
                f"not an HTTP header line: {line[:80]!r}", request=request
            )
        headers.append((name, value.strip()))
    if version == b"HTTP/1.0":
        # Kept alive only on request: treat it as closing.
        headers.append((b"connection", b"close"))
    return int(code), reason, headers


def _framing(request: httpx.Request, status: int, headers: list[tuple[bytes, bytes]]) -> _Framing:
    """How the body is delimited (RFC 9112 §6.3), and whether the connection outlives it."""
    fields = {name.lower(): value for name, value in headers}
    closing = b"close" in fields.get(b"connection", b"").lower()
    if request.method == "HEAD" or status in _NO_BODY_STATUSES:
        return _Sized(0, closing)
    if fields.get(b"transfer-encoding", b"").lower().rsplit(b",", 1)[-1].strip() == b"chunked":
        return _Chunked(closing)
    length = fields.get(b"content-length")
    if length is not None:
        if not length.isdigit():
            raise httpx.RemoteProtocolError(f"bad Content-Length {length!r}", request=request)
        return _Sized(int(length), closing)
    return _UntilClose()


class _Framing:
    """Push decoder of one body: feed what arrived, get the body bytes in it."""

    done = False
    reusable = False

    def feed(self, data: bytes) -> bytes:
        raise NotImplementedError

    def end(self) -> None:
        """The connection ended: fine only for a body delimited by its end."""
        raise ValueError("the server closed the connection before the body's end")


class _UntilClose(_Framing):
    def feed(self, data: bytes) -> bytes:
        return data

    def end(self) -> None:
        self.done = True


class _Sized(_Framing):
    def __init__(self, length: int, closing: bool) -> None:
        self._left = length
        self._closing = closing
        self.done = length == 0
        self.reusable = self.done and not closing

    def feed(self, data: bytes) -> bytes:
        if len(data) > self._left:
            raise ValueError("the server sent more than its Content-Length")
        self._left -= len(data)
        if self._left == 0:
            self.done = True
            self.reusable = not self._closing
        return data


class _Chunked(_Framing):
    def __init__(self, closing: bool) -> None:
        self._closing = closing
        self._pending = b""
        self._left = 0  # bytes of the current chunk's data still to come
        self._after_data = False  # the CRLF closing a chunk's data is next
        self._in_trailer = False

    def feed(self, data: bytes) -> bytes:
        buffer = self._pending + data if self._pending else data
        pieces: list[bytes] = []
        at = 0
        size = len(buffer)
        while at < size and not self.done:
            if not (self._left or self._after_data or self._in_trailer):
                at = self._whole_chunks(buffer, at, pieces)
            if self._left:
                taken = min(self._left, size - at)
                pieces.append(buffer[at : at + taken])
                self._left -= taken
                at += taken
                self._after_data = self._left == 0
                continue
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                break
            line = buffer[at:line_end]
            at = line_end + 2
            if self._after_data:
                if line:
                    raise ValueError("a chunk is longer than its size said")
                self._after_data = False
            elif self._in_trailer:
                if not line:  # the blank line after the trailer fields ends the body
                    self.done = True
                    # Bytes after the body's end were never asked for: the
                    # connection is out of step and cannot be reused.
                    self.reusable = not self._closing and at == size
            else:
                self._left = _chunk_size(line)
                self._in_trailer = self._left == 0
        self._pending = buffer[at:]
        if len(self._pending) > _HEAD_LIMIT:
            raise ValueError("a chunk size line or trailer is too long")
        return b"".join(pieces) if len(pieces) != 1 else pieces[0]

    @staticmethod
    def _whole_chunks(buffer: bytes, at: int, pieces: list[bytes]) -> int:
        """The chunks `buffer` holds whole from `at`, data into `pieces`: where
        the rest (a part of a chunk, or the last chunk) begins. A model stream
        is a chunk per token, and this is the step each one takes."""
        find, size_line = buffer.find, _SIZE_LINE.fullmatch
        while (line_end := find(b"\r\n", at)) >= 0:
            # Matched in place: no slice of the line for the common, valid one.
            matched = size_line(buffer, at, line_end)
            size = int(matched[1], 16) if matched else _chunk_size(buffer[at:line_end])
            start = line_end + 2
            end = start + size
            if size == 0 or buffer[end : end + 2] != b"\r\n":
                break  # the last chunk, or one cut short (or a bad one, said below)
            pieces.append(buffer[start:end])
            at = end + 2
        return at


def _chunk_size(line: bytes) -> int:
    if (size := _SIZE_LINE.fullmatch(line)) is None:
        raise ValueError(f"bad chunk size line {line[:40]!r}")
    return int(size[1], 16)


class _Body(httpx.AsyncByteStream):
    """A response body as its bytes arrive; the connection goes back to the
    pool once the body is whole, and is dropped if it was left unfinished."""

    def __init__(
        self,
        connection: _Connection,
        request: httpx.Request,
        timeout: float | None,
        framing: _Framing,
    ) -> None:
        self._connection: _Connection | None = connection
        self._request = request
        self._timeout = timeout
        self._framing = framing

    async def __aiter__(self) -> AsyncIterator[bytes]:
        connection, framing = self._connection, self._framing
        if connection is None:
            raise httpx.StreamClosed()
        share = connection.share
        share.readers += 1
        try:
            while not framing.done:
                data = await connection.read(self._request, self._timeout, share.size())
                try:
                    if not data:
                        framing.end()
                        break
                    body = framing.feed(data)
                except ValueError as exc:
                    raise httpx.RemoteProtocolError(str(exc), request=self._request) from exc
                if body:
                    yield body
        finally:
            share.readers -= 1
        await self.aclose()

    async def aclose(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.finished(self._framing.done and self._framing.reusable)


def model_client(**options: Any) -> httpx.AsyncClient:
    """An httpx client whose direct connections are ModelStreamTransport's."""
    return httpx.AsyncClient(transport=ModelStreamTransport(), **options)
