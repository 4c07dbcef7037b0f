"""The daemon itself: ACP over stdio (one editor, `parleyd --standalone`), a
TCP port or a Unix socket (many, on one runtime; the shared daemon the
`parleyd` shim starts is one on a Unix socket, see `shim.py`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from parleyd import __version__
from parleyd.acp_agent import AcpAgent
from parleyd.config import ConfigError, Settings, config_file, data_home, load_settings
from parleyd.redaction import RedactingFormatter
from parleyd.rpc.framing import FrameReader
from parleyd.rpc.server import RpcServer
from parleyd.rpc.transport import ByteSink, FrameWriter, claim_stdout, open_stdio
from parleyd.runtime import Runtime

if TYPE_CHECKING:
    from parleyd.rpc.access import AccessToken
    from parleyd.rpc.listen import ListenAddress

log = logging.getLogger("parleyd")

MAX_FRAME_BYTES = 64 * 1024 * 1024
# Once a daemon idle long enough has hidden its socket: time for the clients
# that connected just before to be accepted.
_LAST_ARRIVALS_SECONDS = 0.1


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="parleyd",
        description="Parley's agent daemon: ACP v1 (JSON-RPC 2.0) over stdio, "
        "newline-delimited or Content-Length framed.",
    )
    parser.add_argument(
        "--listen",
        type=_listen_address,
        metavar="ADDRESS",
        help="serve tcp://HOST:PORT or ws://HOST:PORT (WebSocket at /acp), where clients "
        "present a token, or unix:PATH (a 0600 socket) instead of stdio, one ACP connection "
        "per client",
    )
    parser.add_argument(
        "--idle-exit",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --listen: exit after SECONDS with no connection and no turn running (0: never)",
    )
    parser.add_argument(
        "--ready-fd",
        type=int,
        metavar="FD",
        help="with --listen: write 'ready' to this file descriptor once clients can connect",
    )
    parser.add_argument("--log-file", type=Path, help="log here instead of stderr")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("PARLEY_LOG", "WARNING"),
        help="DEBUG, INFO, WARNING (default) or ERROR; env PARLEY_LOG",
    )
    parser.add_argument("--version", action="version", version=f"parleyd {__version__}")
    return parser.parse_args(argv)


def _listen_address(text: str) -> ListenAddress:
    # The listeners' modules (and the token's hashing) load only when asked for.
    from parleyd.rpc.listen import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def serve_connection(
    reader: asyncio.StreamReader,
    sink: ByteSink,
    runtime: Runtime,
    access: AccessToken | None = None,
) -> None:
    """One client, start to end: when it closes its end, its sessions are let
    go (`Runtime.editor_left`), every request already received is answered,
    and the answers are out of the daemon's buffers before this returns."""
    server = RpcServer(access)
    agent = AcpAgent(server, runtime)
    writer = FrameWriter(sink)
    try:
        try:
            await server.serve(FrameReader(reader, MAX_FRAME_BYTES), writer)
        finally:
            # However the connection ended: its sessions must not stay on it.
            await agent.client_gone()
        await server.finish_requests()
    finally:
        await agent.shutdown()
        await writer.close()


async def _serve_stdio(runtime: Runtime) -> None:
    wire = claim_stdout()
    reader, sink = await open_stdio(sys.stdin.buffer, wire)
    await serve_connection(reader, sink, runtime)


async def _serve_listener(arguments: argparse.Namespace, runtime: Runtime) -> None:
    from parleyd.rpc.listen import ListenError, WsAddress, listen

    async def connection(
        reader: asyncio.StreamReader, sink: ByteSink, access: AccessToken | None
    ) -> None:
        await serve_connection(reader, sink, runtime, access)

    retire: list[Callable[[], None]] = []

    def ready(retiring: Callable[[], None]) -> None:
        retire.append(retiring)
        if arguments.ready_fd is not None:
            with contextlib.suppress(OSError):  # the starter gave up waiting
                os.write(arguments.ready_fd, b"ready\n")
            os.close(arguments.ready_fd)

    address, token_folder = arguments.listen, runtime.home / "listen"
    if isinstance(address, WsAddress):
        # Only a WebSocket listener loads the WebSocket library.
        from parleyd.rpc.websocket import listen_websocket

        serving = asyncio.ensure_future(
            listen_websocket(address, token_folder, connection, ready, MAX_FRAME_BYTES)
        )
    else:
        serving = asyncio.ensure_future(listen(address, token_folder, connection, ready))
    waits: set[asyncio.Future[None]] = {serving}
    if arguments.idle_exit > 0:
        waits.add(asyncio.ensure_future(runtime.until_idle_for(arguments.idle_exit)))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if not serving.done():
            # Idle: no new editor finds this daemon now (the next starts its
            # own); one that found it an instant ago is served to its end.
            for retiring in retire:
                retiring()
            await asyncio.sleep(_LAST_ARRIVALS_SECONDS)
            await runtime.until_idle_for(0)
    finally:
        for waiting in waits:
            waiting.cancel()
    if serving.done() and not serving.cancelled() and (error := serving.exception()):
        if isinstance(error, ListenError):
            sys.stderr.write(f"parleyd: {error}\n")
            raise SystemExit(2)
        raise error
    log.info("idle for %g s: exiting", arguments.idle_exit)


async def _run(arguments: argparse.Namespace, settings: Settings, home: Path) -> None:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main.cancel)
    # One editor's daemon exits with it: its turns pause. A listener's run on.
    keeps_turns = bool(arguments.listen) and settings.when_editor_leaves == "continue"
    runtime = Runtime(settings, home, keeps_turns=keeps_turns)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            if arguments.listen:
                await _serve_listener(arguments, runtime)
            else:
                await _serve_stdio(runtime)
    finally:
        await runtime.shutdown()


def main(argv: list[str] | None = None) -> None:
    arguments = _arguments(argv)
    handler = (
        logging.FileHandler(arguments.log_file)
        if arguments.log_file
        else logging.StreamHandler(sys.stderr)
    )
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[handler],
    )
    handler.setFormatter(RedactingFormatter(handler.formatter))
    try:
        settings = load_settings()
        if settings.tool_permissions:
            # Only a file that sets permissions pays for importing the tools here.
            from parleyd.tools.registry import refuse_unknown_tools

            refuse_unknown_tools(settings.tool_permissions, str(config_file()))
    except ConfigError as exc:
        sys.stderr.write(f"parleyd: {exc}\n")
        raise SystemExit(2) from None
    home = data_home()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    asyncio.run(_run(arguments, settings, home))


if __name__ == "__main__":
    main()
