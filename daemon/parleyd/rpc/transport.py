"""Byte streams for the wire: stdio pipes, regular files, sockets.

Outgoing frames go through an asyncio transport: `write` never blocks the event
loop, and `drain` makes a streaming producer wait while the client is not
reading (backpressure) without holding up the handling of other requests.
Closing waits until the transport has handed every queued byte to the OS, so
an answer written just before the daemon exits is not lost in its buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import stat
import sys
from collections.abc import Iterable
from typing import BinaryIO, Protocol

from parleyd.redaction import may_hold_secrets, redact_bytes
from parleyd.rpc.framing import Framing, frame_bytes

# How much the reader holds before it waits for the daemon to take it.
READ_LIMIT = 1 << 20
# Above this much unsent output, the writer waits for the client: small, as
# what stands here stands between the client and every answer (sessions queue
# the rest in their lanes, see `outbox.py`).
WRITE_HIGH_WATER = 64 * 1024
# At most this many frames share one write(2); ~32 deltas is well under 1 ms.
_BATCH_FRAMES = 32
# What one write(2) of `send_all` carries, where no frame waits on a model.
_BULK_BYTES = 256 * 1024
# How long a client that stopped reading may hold up closing the connection.
_CLOSE_SECONDS = 10.0


class ByteSink(Protocol):
    """Where frames go; asyncio.StreamWriter is one."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class _BlockingFileSink:
    """stdout redirected to a regular file or /dev/null: such writes do not stall,
    and the event loop cannot watch such a descriptor."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self._file.close()

    async def wait_closed(self) -> None:
        return None


class FrameWriter:
    """Frames encoded JSON bodies in the client's framing and writes them.

    Every frame goes through `write_nowait` or `send_all`, and every byte
    through `_write`. Frames written in one turn of the event loop go out in
    one write(2): a provider's network read often holds dozens of deltas, and
    a system call per frame was the daemon's largest own cost while
    streaming. The batch is capped so no frame waits behind more than
    `_BATCH_FRAMES - 1` others.
    A batch is redacted (`parleyd.redaction`) as it goes: one scan of the whole
    batch finds the rare one that may carry a credential.
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
        self._pending.append(body)
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
        bodies, self._pending = self._pending, []
        self._write(bodies)

    def _write(self, bodies: list[bytes]) -> None:
        joined = b"\n".join(bodies)
        if may_hold_secrets(joined):  # rare: redact frame by frame, lengths change
            bodies = [redact_bytes(body) for body in bodies]
        elif self.framing is Framing.NDJSON:
            bodies = [joined]  # encoded JSON holds no raw newline
        data = b"".join(frame_bytes(body, self.framing) for body in bodies)
        try:
            self._sink.write(data)
        except (ConnectionError, RuntimeError, ValueError, OSError):
            # The client went away; the reader sees EOF and shuts the daemon down.
            self.closed = True

    async def send(self, body: bytes) -> None:
        """Write and wait while the client is behind."""
        self.write_nowait(body)
        await self._drain()

    async def send_all(self, bodies: Iterable[bytes]) -> None:
        """Write many frames in order, as `send` would one by one, in writes of
        about `_BULK_BYTES` each, waiting while the client is behind after
        each: a session's replay is tens of thousands of frames, which nobody
        waits for one at a time."""
        self.flush()  # what is queued goes first
        batch: list[bytes] = []
        size = 0
        for body in bodies:
            batch.append(body)
            size += len(body)
            if size >= _BULK_BYTES:
                await self._send_batch(batch)
                if self.closed:
                    return
                batch, size = [], 0
        await self._send_batch(batch)

    async def wait_for_room(self) -> None:
        """Write what is queued, then wait while the client is behind."""
        self.flush()
        await self._drain()

    async def _send_batch(self, bodies: list[bytes]) -> None:
        if bodies and not self.closed:
            self._write(bodies)
            await self._drain()

    async def _drain(self) -> None:
        if not self.closed:
            try:
                await self._sink.drain()
            except (ConnectionError, OSError):
                self.closed = True

    async def close(self) -> None:
        """Write what is queued, close, and wait until the OS has every byte (or
        `_CLOSE_SECONDS` have passed: the client may have stopped reading)."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        with contextlib.suppress(OSError, RuntimeError):
            self._sink.close()
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            await asyncio.wait_for(self._sink.wait_closed(), _CLOSE_SECONDS)


def _watchable(file: BinaryIO, events: int) -> bool:
    """Whether the event loop can wait on this descriptor: pipes, sockets and
    ttys, yes; regular files and /dev/null, no (epoll refuses them)."""
    if stat.S_ISREG(os.fstat(file.fileno()).st_mode):
        return False
    with selectors.DefaultSelector() as selector:
        try:
            selector.register(file.fileno(), events)
        except OSError:
            return False
    return True


async def open_stdio(stdin: BinaryIO, stdout: BinaryIO) -> tuple[asyncio.StreamReader, ByteSink]:
    """Wrap the daemon's stdin/stdout: pipes, ttys, sockets, regular files or /dev/null."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_LIMIT)
    if _watchable(stdin, selectors.EVENT_READ):
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdin)
    else:
        feeder = loop.create_task(_feed_from_file(reader, stdin))
        _feeders.add(feeder)
        feeder.add_done_callback(_feeders.discard)
    if not _watchable(stdout, selectors.EVENT_WRITE):
        return reader, _BlockingFileSink(stdout)
    # StreamReaderProtocol, not a bare flow-control protocol, so that the
    # StreamWriter's wait_closed() can tell when the pipe is flushed and closed.
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), stdout
    )
    transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
    return reader, asyncio.StreamWriter(transport, protocol, None, loop)


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
