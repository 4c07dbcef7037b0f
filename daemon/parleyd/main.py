"""`parleyd`: serve ACP over stdio (the default) or a TCP port."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from parleyd import __version__
from parleyd.acp_agent import AcpAgent
from parleyd.config import ConfigError, Settings, data_home, load_settings
from parleyd.rpc.framing import FrameReader
from parleyd.rpc.server import RpcServer
from parleyd.rpc.transport import ByteSink, FrameWriter, claim_stdout, open_stdio

log = logging.getLogger("parleyd")

MAX_FRAME_BYTES = 64 * 1024 * 1024


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="parleyd",
        description="Parley's agent daemon: ACP v1 (JSON-RPC 2.0) over stdio, "
        "newline-delimited or Content-Length framed.",
    )
    parser.add_argument(
        "--listen",
        metavar="tcp://HOST:PORT",
        help="serve on a TCP port instead of stdio (one ACP connection per client)",
    )
    parser.add_argument("--log-file", type=Path, help="log here instead of stderr")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("PARLEY_LOG", "WARNING"),
        help="DEBUG, INFO, WARNING (default) or ERROR; env PARLEY_LOG",
    )
    parser.add_argument("--version", action="version", version=f"parleyd {__version__}")
    return parser.parse_args(argv)


async def serve_connection(
    reader: asyncio.StreamReader, sink: ByteSink, settings: Settings, home: Path
) -> None:
    """One client, start to end: when it closes its end, running turns are
    cancelled (each records what it had) and every log is synced and closed."""
    server = RpcServer()
    agent = AcpAgent(server, settings, home)
    writer = FrameWriter(sink)
    try:
        await server.serve(FrameReader(reader, MAX_FRAME_BYTES), writer)
        # The client closed its end. Turns stop (keeping what they said), and
        # every request already received still gets its answer.
        agent.cancel_turns()
        await server.finish_requests()
    finally:
        await agent.shutdown()
        writer.close()


async def _serve_stdio(settings: Settings, home: Path) -> None:
    wire = claim_stdout()
    reader, sink = await open_stdio(sys.stdin.buffer, wire)
    await serve_connection(reader, sink, settings, home)


async def _serve_tcp(address: str, settings: Settings, home: Path) -> None:
    parts = urlsplit(address)
    if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
        raise SystemExit(f"parleyd: --listen wants tcp://HOST:PORT, got {address!r}")

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, settings, home)

    server = await asyncio.start_server(connection, parts.hostname, parts.port)
    bound = server.sockets[0].getsockname()
    # Written to stderr so scripts can find the port when they asked for port 0.
    sys.stderr.write(f"parleyd listening on tcp://{bound[0]}:{bound[1]}\n")
    sys.stderr.flush()
    async with server:
        await server.serve_forever()


async def _run(arguments: argparse.Namespace, settings: Settings, home: Path) -> None:
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, main.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        if arguments.listen:
            await _serve_tcp(arguments.listen, settings, home)
        else:
            await _serve_stdio(settings, home)


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
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.stderr.write(f"parleyd: {exc}\n")
        raise SystemExit(2) from None
    home = data_home()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    asyncio.run(_run(arguments, settings, home))


if __name__ == "__main__":
    main()
