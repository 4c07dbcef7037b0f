"""`parleyd --listen ws://HOST:PORT`: ACP over WebSocket, for an editor on another machine.

This is the WebSocket profile of ACP's remote transport (the RFD "Streamable
HTTP & WebSocket Transport"): one endpoint, `/acp`, where a GET with
`Upgrade: websocket` opens a connection, and each text message is one JSON-RPC
message, or a batch array, as on stdio. The Streamable HTTP profile
(POST/GET/DELETE with SSE streams) needs HTTP/2 and is not served.

A client is admitted at the upgrade, by `Authorization: Bearer <token>` with
the listener's token (see `access.py`): a request without it is answered 401
and never becomes a WebSocket, so nothing unauthenticated reaches the daemon,
and an admitted connection needs no token at `initialize`. A browser page
cannot set that header on a WebSocket, so no web page the user opens gets in.

Each connection is bridged to the daemon's byte-stream interface: received
messages become lines of a StreamReader, and the daemon's newline-delimited
frames become one text message each. Both ways hold back a client that is
faster than the other end, as a socket would.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import http
import logging
from pathlib import Path
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from parleyd.rpc.access import AccessToken
from parleyd.rpc.listen import Ready, Serve, WsAddress, announce, guarded_socket
from parleyd.rpc.transport import READ_LIMIT

log = logging.getLogger(__name__)

ENDPOINT = "/acp"


async def listen_websocket(
    address: WsAddress,
    token_folder: Path,
    serve_client: Serve,
    ready: Ready,
    max_message_bytes: int,
) -> None:
    """Serve WebSocket clients until cancelled; then close their connections
    (code 1001, going away)."""
    with guarded_socket(address, token_folder, "ws") as (sock, access, shown):
        server = await serve(
            lambda websocket: _bridge(websocket, serve_client),
            sock=sock,
            process_request=lambda websocket, request: _refusal(websocket, request, access),
            process_response=_with_connection_id,
            # A bigger message would be a frame the daemon skips unread: it is
            # refused (close code 1009) before it is held in memory.
            max_size=max_message_bytes,
        )

        def retire() -> None:
            # Closes the port, keeping the connections open. A client whose
            # upgrade is under way at that instant is answered 503.
            server.close(close_connections=False)

        announce(f"parleyd listening on ws://{shown}{ENDPOINT} token-file {access.file}")
        ready(retire)
        await server.serve_forever()


def _refusal(websocket: ServerConnection, request: Request, access: AccessToken) -> Response | None:
    """Why this request does not become an ACP connection, as the HTTP answer;
    None when it may."""
    if urlsplit(request.path).path != ENDPOINT:
        return websocket.respond(
            http.HTTPStatus.NOT_FOUND, f"parleyd serves ACP over WebSocket at {ENDPOINT} only\n"
        )
    if not _asks_for_websocket(request):
        refused = websocket.respond(
            http.HTTPStatus.UPGRADE_REQUIRED,
            f"parleyd serves ACP over WebSocket only: GET {ENDPOINT} with Upgrade: websocket "
            "(the Streamable HTTP profile is not served)\n",
        )
        refused.headers["Upgrade"] = "websocket"
        return refused
    if not access.admits(_bearer_token(request)):
        # The body does not name the token file: it would tell anyone who can
        # reach the port where the daemon's owner keeps their files.
        refused = websocket.respond(
            http.HTTPStatus.UNAUTHORIZED,
            "present this listener's token as 'Authorization: Bearer TOKEN' on the upgrade "
            "request; parleyd printed its token file's path on stderr when it started\n",
        )
        refused.headers["WWW-Authenticate"] = 'Bearer realm="parleyd"'
        return refused
    return None


def _asks_for_websocket(request: Request) -> bool:
    """Whether the request asks to upgrade to WebSocket at all (websockets
    itself checks the rest of the handshake)."""
    offered = (
        protocol.strip().lower()
        for field in request.headers.get_all("Upgrade")
        for protocol in field.split(",")
    )
    return "websocket" in offered


def _bearer_token(request: Request) -> str | None:
    """The token in the request's one `Authorization: Bearer` header, if it has one."""
    fields = request.headers.get_all("Authorization")
    if len(fields) != 1:
        return None
    scheme, _, token = fields[0].strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _with_connection_id(
    websocket: ServerConnection, request: Request, response: Response
) -> Response | None:
    # The RFD's `Acp-Connection-Id` on the upgrade; it is also what the log
    # names the connection by.
    if response.status_code == http.HTTPStatus.SWITCHING_PROTOCOLS:
        response.headers["Acp-Connection-Id"] = str(websocket.id)
    return None


async def _bridge(websocket: ServerConnection, serve_client: Serve) -> None:
    """One client, start to end, as the daemon's stream reader and byte sink."""
    log.info("WebSocket connection %s from %s", websocket.id, websocket.remote_address)
    intake = _Intake()
    reader = asyncio.StreamReader(limit=READ_LIMIT)
    reader.set_transport(intake)
    receiving = asyncio.create_task(_receive(websocket, reader, intake))
    try:
        await serve_client(reader, _MessageSink(websocket), None)
    finally:
        receiving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiving
        log.info("WebSocket connection %s closed", websocket.id)


class _Intake(asyncio.ReadTransport):
    """What the StreamReader takes for its socket: the StreamReader pauses it
    once it holds more than twice its limit, as it would a socket, and
    resumes it once the daemon has read it down. While paused, messages wait
    in websockets' queue and then in the kernel, not in the daemon."""

    def __init__(self) -> None:
        super().__init__()
        self._reading = asyncio.Event()
        self._reading.set()

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def is_reading(self) -> bool:
        return self._reading.is_set()

    async def until_reading(self) -> None:
        await self._reading.wait()


async def _receive(
    websocket: ServerConnection, reader: asyncio.StreamReader, intake: _Intake
) -> None:
    """Each message the client sends, as one line; end of input once it closes.
    A binary message is read as JSON too: a client that sends binary by
    mistake gets answers, or a parse error, rather than silence."""
    try:
        while True:
            await intake.until_reading()
            message = await websocket.recv(decode=False)
            # JSON holds no raw newline inside a string, so one outside is
            # whitespace: on one line, a pretty-printed message means the same.
            reader.feed_data(message.replace(b"\n", b" ") + b"\n")
    except ConnectionClosed:
        pass
    finally:
        reader.feed_eof()


class _MessageSink:
    """The daemon's frames to the client, one text message each, in order.

    `write` never waits: a task sends what was written, message by message.
    `drain` waits until that task has sent everything (websockets' `send`
    returns once its write buffer is below its limit), so a client that stops
    reading holds up the daemon's writers instead of filling its memory.
    """

    def __init__(self, websocket: ServerConnection) -> None:
        self._websocket = websocket
        self._unsent: collections.deque[bytes] = collections.deque()
        self._sending: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._gone = False

    def write(self, data: bytes) -> None:
        if self._gone:
            raise ConnectionResetError("the client closed the WebSocket")
        # Newline-delimited frames, whose encoded JSON holds no raw newline.
        self._unsent.extend(data.removesuffix(b"\n").split(b"\n"))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_unsent())

    async def _send_unsent(self) -> None:
        try:
            while self._unsent:
                await self._websocket.send(self._unsent.popleft(), text=True)
        except ConnectionClosed:
            self._gone = True
            self._unsent.clear()

    async def drain(self) -> None:
        if self._sending is not None:
            # Shielded: a writer that stops waiting does not stop the sending.
            await asyncio.shield(self._sending)
        if self._gone:
            raise ConnectionResetError("the client closed the WebSocket")

    def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.create_task(self._send_and_close())

    async def _send_and_close(self) -> None:
        with contextlib.suppress(ConnectionResetError):
            await self.drain()
        await self._websocket.close()  # 1000, normal closure

    async def wait_closed(self) -> None:
        if self._closing is not None:
            await asyncio.shield(self._closing)
