"""ModelStreamTransport, the HTTP/1.1 layer under the model clients, through httpx's API.

Each test's server is a bare TCP listener on 127.0.0.1 whose handler writes
every byte of every answer itself, so framing, keep-alive and failures are
exactly what the test says they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from parleyd.providers.transport import ModelStreamTransport, model_client

TLS = Path(__file__).parent.parent / "fixtures" / "tls"
# Never reached when the transport works; it turns a hang into a failure.
PATIENCE = 5.0

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True)
class Request:
    line: bytes
    headers: dict[bytes, bytes]  # names lower-cased
    body: bytes


class RawServer:
    """A loopback TCP server: `handler` runs once per accepted connection and
    writes the answers byte for byte; the socket is closed when it returns.

    A handler's failure (an assertion about what it read) fails the test when
    the server is left; a client hanging up on it is not a failure.
    """

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.connections = 0
        self.url = ""
        self._handler = handler
        self._tls = tls
        self._ended = 0
        self._change = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._failures: list[Exception] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        # The client has gone, so every handler is about to end; one still
        # waiting for its test to go on is cut.
        if self._tasks:
            _, waiting = await asyncio.wait(self._tasks, timeout=PATIENCE)
            for task in waiting:
                task.cancel()
            await asyncio.wait(self._tasks)
        await self._server.wait_closed()
        if self._failures:
            raise self._failures[0]

    async def ended(self, count: int) -> None:
        """Wait until `count` connections are over on the server's side."""
        async with asyncio.timeout(PATIENCE), self._change:
            await self._change.wait_for(lambda: self._ended >= count)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handler(reader, writer)
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            # Swallowed: Python 3.11's start_server logs a cancelled handler as an error.
            pass
        except Exception as exc:
            self._failures.append(exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self._ended += 1
            async with self._change:
                self._change.notify_all()


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """The next request on a connection; None once the client has closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise
        return None
    line, *fields = head[:-4].split(b"\r\n")
    headers = {}
    for field in fields:
        name, _, value = field.partition(b":")
        headers[name.lower()] = value.strip()
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return Request(line, headers, body)


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Wait for the client to hang up, ignoring whatever it sends meanwhile."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(64 * 1024):
            pass


async def write(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


def answer_each(answer: bytes, into: list[Request] | None = None) -> Handler:
    """Every request a connection carries gets `answer` (and is kept in `into`)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if into is not None:
                into.append(request)
            await write(writer, answer)

    return handler


def answer_once(*pieces: bytes, hang_up: bool = True) -> Handler:
    """The first request gets `pieces`, one write each; then the server hangs
    up, or with `hang_up=False` says nothing more until the client does."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for piece in pieces:
            await write(writer, piece)
        if not hang_up:
            await until_closed(reader)

    return handler


def answer_then_cut(first: bytes, cut: bytes) -> Handler:
    """The first request gets `first`; the second, on the same connection,
    gets `cut` and the connection closes under it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await write(writer, first)
        await read_request(reader)
        await write(writer, cut)

    return handler


def by_connection(*handlers: Handler) -> Handler:
    """The n-th connection gets the n-th handler; the last one serves all later ones."""
    accepted = itertools.count()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handlers[min(next(accepted), len(handlers) - 1)](reader, writer)

    return handler


def head(*fields: bytes, status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 %b\r\n%b\r\n" % (status, b"".join(field + b"\r\n" for field in fields))


def sized(body: bytes, *fields: bytes, status: bytes = b"200 OK") -> bytes:
    return head(*fields, b"Content-Length: %d" % len(body), status=status) + body


def chunked(chunks: Iterable[bytes], *fields: bytes) -> bytes:
    encoded = b"".join(b"%x\r\n%b\r\n" % (len(chunk), chunk) for chunk in chunks)
    return head(*fields, b"Transfer-Encoding: chunked") + encoded + b"0\r\n\r\n"


CHUNKED_HEAD = head(b"Transfer-Encoding: chunked")


def client(*, verify: ssl.SSLContext | bool = True, keep_alive: int = 8) -> httpx.AsyncClient:
    transport = ModelStreamTransport(verify=verify, keep_alive=keep_alive)
    return httpx.AsyncClient(transport=transport, timeout=PATIENCE)


# Each write but the last carries some body, so the client has something to
# show for it, and the server writes the next only once the client has shown
# it: every cut below reaches the decoder as a cut.
STEPPED_WIRE = (
    CHUNKED_HEAD + b"3\r\nabc\r\n1",  # a size line cut after its first digit
    b"0\r\n0123456789",  # a 16-byte chunk cut after 10
    b"abcdef\r",  # the CRLF after a chunk's data cut in two
    b"\n5;ext=1\r\nhello\r\n4\r",  # a chunk extension; a size line's CRLF cut in two
    b"\nwxyz\r\n0\r\nX-Trai",  # a trailer field cut
    b"ler: yes\r\n\r\n",
)
STEPPED_PIECES = [b"abc", b"0123456789", b"abcdef", b"hello", b"wxyz"]


async def test_chunked_body_cut_anywhere_streams_each_piece_as_it_arrives() -> None:
    shown = asyncio.Event()

    async def stepped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for piece in STEPPED_WIRE[:-1]:
            shown.clear()
            await write(writer, piece)
            await shown.wait()
        await write(writer, STEPPED_WIRE[-1])
        await answer_each(sized(b"next"))(reader, writer)

    async with RawServer(stepped) as server, client() as http:
        pieces = []
        async with http.stream("GET", server.url) as response:
            async for piece in response.aiter_bytes():
                pieces.append(piece)
                shown.set()
        following = await http.get(server.url)
    assert pieces == STEPPED_PIECES
    # The trailer was read to its end: the connection carried the next exchange in step.
    assert following.text == "next"
    assert server.connections == 1


async def test_chunked_body_written_a_byte_at_a_time() -> None:
    wire = CHUNKED_HEAD + b"5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-T: 1\r\n\r\n"

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        for at in range(len(wire)):
            await write(writer, wire[at : at + 1])
            await asyncio.sleep(0)  # lets the client read each byte on its own
        await until_closed(reader)

    async with RawServer(trickle) as server, client() as http:
        response = await http.get(server.url)
    assert response.content == b"hello world!"


def pattern(seed: int, size: int) -> bytes:
    return bytes((seed * 37 + at * 11) % 251 for at in range(size))


async def test_long_chunked_bodies_read_side_by_side() -> None:
    # Reads are capped and shared between the bodies being read, so chunks of
    # every size here span reads, and reads end inside size lines and CRLFs.
    sizes = itertools.cycle((1, 2, 3, 10, 4093, 16_384, 70_000))

    async def by_seed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        body = pattern(int(request.line.split()[1][1:]), 300_000)
        chunks, at = [], 0
        while at < len(body):
            size = next(sizes)
            chunks.append(body[at : at + size])
            at += size
        await write(writer, chunked(chunks))
        await until_closed(reader)

    async with RawServer(by_seed) as server, client() as http:
        responses = await asyncio.gather(*(http.get(f"{server.url}/{seed}") for seed in range(4)))
    assert [response.content for response in responses] == [
        pattern(seed, 300_000) for seed in range(4)
    ]
    assert server.connections == 4


async def test_sized_bodies_share_one_kept_alive_connection() -> None:
    async with RawServer(answer_each(sized(b"hello"))) as server, client() as http:
        first = await http.get(server.url)
        second = await http.get(server.url)
    assert (first.status_code, first.content) == (200, b"hello")
    assert second.content == b"hello"
    assert server.connections == 1


async def test_body_without_length_ends_with_the_connection() -> None:
    answer = (head(b"Content-Type: text/plain"), b"all of ", b"this")
    async with RawServer(answer_once(*answer)) as server, client() as http:
        first = await http.get(server.url)
        second = await http.get(server.url)
    assert first.content == second.content == b"all of this"
    assert server.connections == 2


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
        ("HEAD", CHUNKED_HEAD),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"),
    ],
    ids=["HEAD with a length", "HEAD of a chunked body", "204", "304 with a length"],
)
async def test_answers_that_have_no_body(method: str, answer: bytes) -> None:
    async with RawServer(answer_each(answer)) as server, client() as http:
        first = await http.request(method, server.url)
        second = await http.request(method, server.url)
    assert first.content == second.content == b""
    # Nothing was waited for after the head: the connection stayed in step.
    assert server.connections == 1


async def test_informational_answers_before_the_real_one_are_skipped() -> None:
    early = (
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        sized(b"ok", b"X-Final: yes"),
    )
    async with RawServer(answer_once(*early, hang_up=False)) as server, client() as http:
        response = await http.get(server.url)
    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["x-final"] == "yes"
    assert "link" not in response.headers


@pytest.mark.parametrize(
    "answer",
    [
        sized(b"bye", b"Connection: close"),
        b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nbye",
    ],
    ids=["Connection: close", "HTTP/1.0"],
)
async def test_connection_the_server_means_to_close_is_not_reused(answer: bytes) -> None:
    # The server does keep it open and would answer again: only the transport decides.
    async with RawServer(answer_each(answer)) as server, client() as http:
        for _ in range(2):
            assert (await http.get(server.url)).text == "bye"
    assert server.connections == 2


async def test_no_connection_is_kept_with_keep_alive_zero() -> None:
    async with RawServer(answer_each(sized(b"x"))) as server, client(keep_alive=0) as http:
        for _ in range(2):
            await http.get(server.url)
    assert server.connections == 2


async def test_body_left_unfinished_closes_its_connection() -> None:
    unfinished = answer_once(head(b"Content-Length: 10"), b"abc", hang_up=False)
    async with RawServer(unfinished) as server, client() as http:
        for attempt in (1, 2):
            async with http.stream("GET", server.url) as response:
                async for piece in response.aiter_bytes():
                    assert piece == b"abc"
                    break
            await server.ended(attempt)
    assert server.connections == 2


async def test_closing_the_client_closes_its_idle_connections() -> None:
    async with RawServer(answer_each(sized(b"x"))) as server:
        async with client() as http:
            await http.get(server.url)
        await server.ended(1)


async def test_kept_connection_the_server_closed_while_idle_is_replaced() -> None:
    handler = by_connection(answer_once(sized(b"one")), answer_each(sized(b"two")))
    async with RawServer(handler) as server, client() as http:
        first = await http.get(server.url)
        await server.ended(1)
        second = await http.get(server.url)
    assert (first.text, second.text) == ("one", "two")
    assert server.connections == 2


async def test_request_on_a_kept_connection_closed_unanswered_is_sent_again_once() -> None:
    received: list[Request] = []
    handler = by_connection(
        answer_then_cut(sized(b"one"), b""), answer_each(sized(b"two"), received)
    )
    async with RawServer(handler) as server, client() as http:
        await http.get(server.url)
        again = await http.post(f"{server.url}/again", content=b"payload")
    assert again.text == "two"
    assert [(request.line, request.body) for request in received] == [
        (b"POST /again HTTP/1.1", b"payload")
    ]
    assert server.connections == 2


async def test_second_unanswered_close_is_an_error() -> None:
    handler = by_connection(answer_then_cut(sized(b"one"), b""), answer_once())
    async with RawServer(handler) as server, client() as http:
        await http.get(server.url)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a whole answer"):
            await http.get(server.url)
    assert server.connections == 2


async def test_kept_connection_cut_mid_answer_is_an_error_not_a_resend() -> None:
    handler = answer_then_cut(sized(b"one"), b"HTTP/1.1 200 OK\r\nContent-")
    async with RawServer(handler) as server, client() as http:
        await http.get(server.url)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a whole answer"):
            await http.get(server.url)
    assert server.connections == 1


async def test_new_connection_closed_unanswered_is_an_error() -> None:
    async with RawServer(answer_once()) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a whole answer"):
            await http.get(server.url)
    assert server.connections == 1


async def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        port = bound.getsockname()[1]
        async with client() as http:
            with pytest.raises(httpx.ConnectError, match=f"127.0.0.1:{port}"):
                await http.get(f"http://127.0.0.1:{port}/")


async def test_silence_before_the_head_is_a_read_timeout() -> None:
    async with (
        RawServer(answer_once(hang_up=False)) as server,
        model_client(timeout=httpx.Timeout(0.2)) as http,
    ):
        with pytest.raises(httpx.ReadTimeout, match=r"no answer in 0\.2 s"):
            await http.get(server.url)


async def test_silence_mid_body_is_a_read_timeout_and_drops_the_connection() -> None:
    async with (
        RawServer(answer_once(head(b"Content-Length: 10"), b"abc", hang_up=False)) as server,
        model_client(timeout=httpx.Timeout(0.2)) as http,
    ):
        pieces = []
        with pytest.raises(httpx.ReadTimeout, match=r"nothing arrived for 0\.2 s"):
            async with http.stream("GET", server.url) as response:
                async for piece in response.aiter_bytes():
                    pieces.append(piece)
        await server.ended(1)
    assert pieces == [b"abc"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 OK\r\n\r\n", "not an HTTP/1.1 status line"),
        (b"ICY 200 OK\r\n\r\n", "not an HTTP/1.1 status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n", "not an HTTP header line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", "not an HTTP header line"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 300_000 + b"\r\n\r\n", "headers are too long"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "bad Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-", "without sending a whole answer"),
        (CHUNKED_HEAD + b"zz\r\n", "bad chunk size line"),
        (CHUNKED_HEAD + b"-5\r\nabcdefghij\r\n0\r\n\r\n", "bad chunk size line"),
        (CHUNKED_HEAD + b"0x3\r\nabc\r\n0\r\n\r\n", "bad chunk size line"),
        (CHUNKED_HEAD + b"3\r\nabcd\r\n0\r\n\r\n", "longer than its size said"),
        (CHUNKED_HEAD + b"5\r\nhel", "before the body's end"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "before the body's end"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", "more than its Content-Length"),
    ],
    ids=[
        "status line without a code",
        "not HTTP",
        "header line without a colon",
        "space before a header's colon",
        "head too long",
        "Content-Length not a number",
        "head cut short",
        "chunk size not hex",
        "negative chunk size",
        "chunk size with 0x",
        "chunk longer than its size",
        "chunked body cut short",
        "body shorter than Content-Length",
        "body longer than Content-Length",
    ],
)
async def test_malformed_answer_is_a_remote_protocol_error(answer: bytes, error: str) -> None:
    async with RawServer(answer_once(answer)) as server, client() as http:
        with pytest.raises(httpx.RemoteProtocolError, match=error):
            await http.get(server.url)


async def test_other_schemes_are_unsupported() -> None:
    async with client() as http:
        with pytest.raises(httpx.UnsupportedProtocol, match="not an http:// or https:// URL"):
            await http.get("ftp://127.0.0.1/file")


SQUEEZED = b"squeezed " * 100
PACKED = gzip.compress(SQUEEZED)


@pytest.mark.parametrize(
    "answer",
    [
        sized(PACKED, b"Content-Encoding: gzip"),
        chunked(
            (PACKED[at : at + 7] for at in range(0, len(PACKED), 7)), b"Content-Encoding: gzip"
        ),
    ],
    ids=["sized", "chunked"],
)
async def test_gzip_bodies_are_decoded(answer: bytes) -> None:
    async with RawServer(answer_each(answer)) as server, client() as http:
        response = await http.get(server.url)
    assert response.content == SQUEEZED


async def sent(send: Callable[[httpx.AsyncClient, str], Awaitable[object]]) -> Request:
    """The one request `send` makes, as the server read it."""
    received: list[Request] = []
    async with RawServer(answer_each(sized(b""), received)) as server, client() as http:
        await send(http, server.url)
    (request,) = received
    assert request.headers[b"host"] == server.url.removeprefix("http://").encode()
    assert b"transfer-encoding" not in request.headers
    return request


async def test_post_body_goes_with_its_length_and_the_headers() -> None:
    request = await sent(
        lambda http, url: http.post(
            f"{url}/v1/chat/completions?stream=1", content=b"hello", headers={"X-Key": "k1"}
        )
    )
    assert request.line == b"POST /v1/chat/completions?stream=1 HTTP/1.1"
    assert request.headers[b"content-length"] == b"5"
    assert request.headers[b"x-key"] == b"k1"
    assert request.body == b"hello"


async def test_streamed_request_body_is_sent_whole_with_its_length() -> None:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"ab", b"", b"cd", b"ef"):
            yield part

    request = await sent(lambda http, url: http.post(url, content=parts()))
    assert request.headers[b"content-length"] == b"6"
    assert request.body == b"abcdef"


async def test_empty_post_says_its_length_and_get_says_none() -> None:
    empty_post = await sent(lambda http, url: http.post(url))
    get = await sent(lambda http, url: http.get(url))
    assert empty_post.headers[b"content-length"] == b"0"
    assert get.line == b"GET / HTTP/1.1"
    assert b"content-length" not in get.headers


def serving_tls() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "server.pem", TLS / "server.key")
    return context


async def test_tls_to_a_server_whose_ca_is_trusted() -> None:
    trusting = ssl.create_default_context(cafile=TLS / "ca.pem")
    async with (
        RawServer(answer_each(sized(b"private")), tls=serving_tls()) as server,
        client(verify=trusting) as http,
    ):
        first = await http.get(server.url)
        second = await http.get(server.url)
    assert server.url.startswith("https://127.0.0.1:")
    assert first.text == second.text == "private"
    assert server.connections == 1


async def test_tls_to_a_server_whose_ca_is_unknown_is_refused() -> None:
    async with (
        RawServer(answer_each(sized(b"private")), tls=serving_tls()) as server,
        model_client() as http,
    ):
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await http.get(server.url)
