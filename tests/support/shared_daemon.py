"""One daemon serving many editors on a Unix socket, as the `parleyd` shim
starts it, and raw connections to it: each one an editor."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.listeners import listening
from tests.support.raw_daemon import RawDaemon


@dataclass
class SharedDaemon:
    socket: Path
    process: asyncio.subprocess.Process

    @asynccontextmanager
    async def editor(self, *, killed: bool = False) -> AsyncIterator[RawDaemon]:
        """A connection, initialized, closed at the end: as an editor that
        quits, or `killed`, as one whose process died with the daemon's words
        unread (the socket is reset, not closed)."""
        reader, writer = await asyncio.open_unix_connection(str(self.socket))
        editor = RawDaemon(reader, writer)
        try:
            await editor.initialize()
            yield editor
        finally:
            if killed:
                # Unread words pile up in the socket, as in a process stopped dead.
                writer.transport.pause_reading()  # type: ignore[attr-defined]
                await asyncio.sleep(0.2)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()
                await writer.wait_closed()


@asynccontextmanager
async def shared_daemon(
    env: Mapping[str, str], socket: Path, *arguments: str
) -> AsyncIterator[SharedDaemon]:
    """parleyd on `socket`, stopped with SIGTERM at the end if it is still running."""
    async with listening(env, f"unix:{socket}", *arguments) as (process, line):
        assert line == f"parleyd listening on unix:{socket}", line
        yield SharedDaemon(socket, process)


def session_updates(editor: RawDaemon) -> list[dict[str, Any]]:
    """Every `session/update` the editor received, whole (params)."""
    return [f["params"] for f in editor.frames if f.get("method") == "session/update"]


def sequence_of(params: dict[str, Any]) -> int | None:
    number = (params.get("_meta") or {}).get("parley", {}).get("sequence")
    return None if number is None else int(number)
