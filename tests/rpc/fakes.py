"""Stand-ins for the wire, shared by the rpc tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from parleyd.rpc.framing import FrameReader, FramingError


class CollectingSink:
    """A `ByteSink` that keeps everything written to it; `written` wakes readers."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False
        self.written = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.data += data
        self.written.set()

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None


class TricklingReader(asyncio.StreamReader):
    """Hands out at most `step` bytes per read, so every `step`-th byte of the
    input is a read boundary (a plain StreamReader returns all it holds)."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self._step = step

    async def read(self, n: int = -1) -> bytes:
        return await super().read(self._step if n < 0 else min(n, self._step))


async def read_frames(
    data: bytes | Iterable[bytes], *, limit: int = 1 << 20, step: int | None = None
) -> tuple[list[bytes | FramingError], FrameReader]:
    """Every frame a FrameReader cuts from `data` (fed whole, or as the given
    chunks) before end of input; the reader tells the framing it detected."""
    stream = asyncio.StreamReader() if step is None else TricklingReader(step)
    for chunk in [data] if isinstance(data, bytes) else data:
        stream.feed_data(chunk)
    stream.feed_eof()
    reader = FrameReader(stream, limit)

    async def collect() -> list[bytes | FramingError]:
        return [frame async for frame in reader.frames()]

    # A reader that waits for bytes that never come would hang the suite.
    return await asyncio.wait_for(collect(), timeout=5), reader
