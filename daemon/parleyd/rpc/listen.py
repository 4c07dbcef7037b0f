"""`parleyd --listen`: ACP over a TCP port, a WebSocket or a Unix socket, one
connection per client.

`tcp://HOST:PORT`: any local process can connect, so every connection must
present the listener's token at `initialize` (see `access.py`); the token file
is `<folder>/tcp-HOST-PORT.token`. `ws://HOST:PORT`: the same, with the token
presented on the WebSocket upgrade instead (see `websocket.py`), in
`<folder>/ws-HOST-PORT.token`. `unix:PATH`: the socket is created 0600, so only
its owner can connect, and no token is needed. Either way the address (and the
token file) is printed on stderr once clients can connect, and the token file
or socket is removed when the daemon stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from parleyd.rpc.access import AccessToken
from parleyd.rpc.transport import ByteSink

# One client's connection: what it sent, where its answers go, and the token
# it must present at `initialize` (None: it was admitted already, or needs none).
Serve = Callable[[asyncio.StreamReader, ByteSink, AccessToken | None], Awaitable[None]]
# Told, once clients can connect, how to stop new clients from finding the
# listener (its connections go on): a daemon about to exit idle calls it first,
# so an editor that connects meanwhile is served rather than cut off.
Ready = Callable[[Callable[[], None]], None]


@dataclass(frozen=True)
class TcpAddress:
    host: str
    port: int


@dataclass(frozen=True)
class WsAddress:
    """`ws://HOST:PORT`, served at its one endpoint `/acp`."""

    host: str
    port: int


@dataclass(frozen=True)
class UnixAddress:
    path: Path


ListenAddress = TcpAddress | WsAddress | UnixAddress


class ListenError(Exception):
    """The address cannot be listened on; the message says why."""


def parse_address(text: str) -> ListenAddress:
    if text.startswith("unix:"):
        if not text.removeprefix("unix:"):
            raise ValueError("unix: wants a socket path, as in unix:/run/user/1000/parley.sock")
        return UnixAddress(Path(text.removeprefix("unix:")).expanduser())
    if text.startswith("wss://"):
        raise ValueError(
            "wss:// is not served: listen on ws://127.0.0.1:PORT behind a TLS proxy "
            "(see README, Remote editors)"
        )
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "ws") or not parts.hostname or port is None:
        raise ValueError(f"want tcp://HOST:PORT, ws://HOST:PORT or unix:PATH, got {text!r}")
    if parts.scheme == "tcp":
        return TcpAddress(parts.hostname, port)
    if parts.path not in ("", "/acp") or parts.query or parts.fragment:
        raise ValueError(f"ws:// serves ACP at /acp only, got {text!r}")
    return WsAddress(parts.hostname, port)


async def listen(
    address: TcpAddress | UnixAddress, token_folder: Path, serve: Serve, ready: Ready
) -> None:
    """Serve connections until cancelled; `ready` is called once they can connect.
    (A `WsAddress` is `websocket.listen_websocket`'s.)"""
    if isinstance(address, TcpAddress):
        await _listen_tcp(address, token_folder, serve, ready)
    else:
        await _listen_unix(address.path, serve, ready)


async def _listen_tcp(address: TcpAddress, token_folder: Path, serve: Serve, ready: Ready) -> None:
    with guarded_socket(address, token_folder, "tcp") as (sock, access, shown):
        server = await asyncio.start_server(
            lambda reader, writer: serve(reader, writer, access), sock=sock
        )
        announce(f"parleyd listening on tcp://{shown} token-file {access.file}")
        ready(server.close)
        async with server:
            await server.serve_forever()


@contextlib.contextmanager
def guarded_socket(
    address: TcpAddress | WsAddress, token_folder: Path, scheme: str
) -> Iterator[tuple[socket.socket, AccessToken, str]]:
    """A TCP socket bound at `address`, the token its clients must present, and
    the `HOST:PORT` it is reached at. The token is in
    `<token_folder>/<scheme>-HOST-PORT.token`, removed on exit."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        sock = socket.create_server((address.host, address.port), family=family)
    except OSError as exc:
        raise ListenError(f"cannot listen on {address.host}:{address.port}: {exc}") from None
    with contextlib.closing(sock):
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        # The port is known only now (port 0 picks one), and the file is named after it.
        with AccessToken.issued(token_folder / f"{scheme}-{host}-{port}.token") as access:
            yield sock, access, shown


async def _listen_unix(path: Path, serve: Serve, ready: Ready) -> None:
    with _unix_socket(path) as (sock, unlink):
        server = await asyncio.start_unix_server(
            lambda reader, writer: serve(reader, writer, None), sock=sock
        )
        announce(f"parleyd listening on unix:{path}")
        # Without the file no new client finds the socket; those queued on it
        # still get in.
        ready(unlink)
        async with server:
            await server.serve_forever()


@contextlib.contextmanager
def _unix_socket(path: Path) -> Iterator[tuple[socket.socket, Callable[[], None]]]:
    """A socket bound at `path`, only its owner may connect to, and what
    removes its file, which is removed on exit too: only while it is this
    socket's, never that of a daemon started since at the same path."""
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The socket file takes its mode from the umask at bind(): 0600 from the
    # start, so no other user can connect even for an instant.
    mask = os.umask(0o177)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on unix:{path}: {exc}") from None
    finally:
        os.umask(mask)
    bound = path.lstat()

    def unlink() -> None:
        with contextlib.suppress(FileNotFoundError):
            now = path.lstat()
            if (now.st_dev, now.st_ino) == (bound.st_dev, bound.st_ino):
                path.unlink()

    try:
        yield sock, unlink
    finally:
        unlink()


def _remove_stale_socket(path: Path) -> None:
    """A socket left by a daemon that died is removed; anything else is kept."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"cannot listen on unix:{path}: it exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()
            return
        except OSError as exc:
            raise ListenError(f"cannot listen on unix:{path}: {exc}") from None
    raise ListenError(f"cannot listen on unix:{path}: another daemon is listening there")


def announce(line: str) -> None:
    # On stderr, so scripts can find the port when they asked for port 0.
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
