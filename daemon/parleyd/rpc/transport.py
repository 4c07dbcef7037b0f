"""Byte streams for the wire: stdio pipes, regular files, TCP.

Outgoing frames go through an asyncio transport: `write` never blocks the event
loop, and `drain` makes a streaming producer wait while the client is not
reading (backpressure) without holding up the handling of other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from typing import BinaryIO, Protocol

from parleyd.rpc.framing import Framing, frame_bytes

# Above this much unsent output, streaming producers wait for the client.
_HIGH_WATER = 1 << 20
# At most this many frames share one write(2); ~32 deltas is well under 1 ms.
_BATCH_FRAMES = 32


class ByteSink(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class _BlockingFileSink:
    """stdout redirected to a regular file: writes to disk do not stall, and
    asyncio pipe transports refuse regular files."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self._file.close()


class FrameWriter:
    """Frames encoded JSON bodies in the client's framing and writes them.

    Frames written in one turn of the event loop go out in one write(2): a
    provider's network read often holds dozens of deltas, and a system call
    per frame was the daemon's largest own cost while streaming. The batch is
    capped so no frame waits behind more than `_BATCH_FRAMES - 1` others.
    """

    def __init__(self, sink: ByteSink, framing: Framing = Framing.NDJSON) -> None:
        self._sink = sink
        self.framing = framing
        self.closed = False
        self._pending: list[bytes] = []
        self._flush_scheduled: asyncio.Handle | None = None

    def write_nowait(self, body: bytes) -> None:
        if self.closed:
            return
        self._pending.append(frame_bytes(body, self.framing))
        if len(self._pending) >= _BATCH_FRAMES:
            self.flush()
        elif self._flush_scheduled is None:
            self._flush_scheduled = asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        if self._flush_scheduled is not None:
            self._flush_scheduled.cancel()
            self._flush_scheduled = None
        if not self._pending or self.closed:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        try:
            self._sink.write(data)
        except (ConnectionError, RuntimeError, ValueError, OSError):
            # The client went away; the reader sees EOF and shuts the daemon down.
            self.closed = True

    async def send(self, body: bytes) -> None:
        """Write and wait while the client is behind."""
        self.write_nowait(body)
        if not self.closed:
            try:
                await self._sink.drain()
            except (ConnectionError, OSError):
                self.closed = True

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self.closed = True
            with contextlib.suppress(OSError, RuntimeError):
                self._sink.close()


def _is_regular_file(file: BinaryIO) -> bool:
    return stat.S_ISREG(os.fstat(file.fileno()).st_mode)


async def open_stdio(stdin: BinaryIO, stdout: BinaryIO) -> tuple[asyncio.StreamReader, ByteSink]:
    """Wrap the daemon's stdin/stdout (pipes, ttys, sockets or regular files)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_HIGH_WATER)
    if _is_regular_file(stdin):
        feeder = loop.create_task(_feed_from_file(reader, stdin))
        _feeders.add(feeder)
        feeder.add_done_callback(_feeders.discard)
    else:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    sink: ByteSink
    if _is_regular_file(stdout):
        sink = _BlockingFileSink(stdout)
    else:
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, stdout
        )
        transport.set_write_buffer_limits(high=_HIGH_WATER)
        sink = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, sink


_feeders: set[asyncio.Task[None]] = set()


async def _feed_from_file(reader: asyncio.StreamReader, file: BinaryIO) -> None:
    while chunk := await asyncio.to_thread(file.read, 1 << 16):
        reader.feed_data(chunk)
    reader.feed_eof()


def claim_stdout() -> BinaryIO:
    """Take the real stdout for protocol frames and point fd 1 and sys.stdout at
    stderr, so a stray print anywhere can never corrupt the wire."""
    wire = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return wire
