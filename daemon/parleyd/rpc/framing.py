"""Splitting the client's byte stream into JSON-RPC frames, in either framing.

ACP clients send newline-delimited JSON; LSP-style clients (pygls, pytest-lsp,
vscode-jsonrpc) send `Content-Length` headers. The first non-blank byte decides:
`{` or `[` means NDJSON, anything else a header block. The writer answers in
the framing detected here.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass


class Framing(enum.Enum):
    NDJSON = "ndjson"
    CONTENT_LENGTH = "content-length"


@dataclass(frozen=True)
class FramingError:
    """A frame that could not be cut out of the stream. Reading goes on after it:
    the oversized or malformed part has been skipped."""

    message: str


_READ_SIZE = 1 << 16
_MAX_HEADER_BLOCK = 8192


class FrameReader:
    """Yields each frame's body bytes, or a FramingError, until end of input."""

    def __init__(self, stream: asyncio.StreamReader, max_frame_bytes: int) -> None:
        self._stream = stream
        self._max = max_frame_bytes
        self._buffer = bytearray()
        self._eof = False
        self.framing: Framing | None = None

    async def frames(self) -> AsyncIterator[bytes | FramingError]:
        while True:
            if self.framing is None and not await self._detect():
                return
            item = await (
                self._next_line_frame()
                if self.framing is Framing.NDJSON
                else self._next_header_frame()
            )
            if item is None:
                return
            yield item

    async def _fill(self) -> bool:
        """Read more bytes into the buffer; False at end of input."""
        if self._eof:
            return False
        chunk = await self._stream.read(_READ_SIZE)
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    async def _detect(self) -> bool:
        while True:
            stripped = self._buffer.lstrip()
            if stripped:
                del self._buffer[: len(self._buffer) - len(stripped)]
                self.framing = Framing.NDJSON if stripped[0] in b"{[" else Framing.CONTENT_LENGTH
                return True
            self._buffer.clear()
            if not await self._fill():
                return False

    async def _read_until_newline(self, limit: int) -> tuple[bytes | None, bool]:
        """Return (line without the newline, overflowed). A line longer than
        `limit` is discarded up to its newline so the stream stays in sync."""
        searched = 0
        overflowed = False
        while True:
            index = self._buffer.find(b"\n", searched)
            if index >= 0:
                overflowed = overflowed or index > limit
                line = None if overflowed else bytes(self._buffer[:index])
                del self._buffer[: index + 1]
                return line, overflowed
            if len(self._buffer) > limit:
                # Keep nothing of an over-long line but the fact that it was one.
                overflowed = True
                self._buffer.clear()
            searched = len(self._buffer)
            if not await self._fill():
                line = None if overflowed or not self._buffer else bytes(self._buffer)
                self._buffer.clear()
                return line, overflowed

    async def _next_line_frame(self) -> bytes | FramingError | None:
        while True:
            line, overflowed = await self._read_until_newline(self._max)
            if overflowed:
                return FramingError(f"message larger than the {self._max} byte limit was skipped")
            if line is None:
                return None
            if line.strip():
                return line

    async def _next_header_frame(self) -> bytes | FramingError | None:
        length: int | None = None
        header_bytes = 0
        while True:
            line, overflowed = await self._read_until_newline(_MAX_HEADER_BLOCK)
            if line is None and not overflowed:
                return None
            if overflowed or line is None:
                return FramingError("header line too long")
            text = line.rstrip(b"\r")
            header_bytes += len(text)
            if not text:
                if length is None:
                    if header_bytes == 0:
                        continue  # stray blank line between messages
                    return FramingError("header block without a Content-Length")
                break
            name, sep, value = text.partition(b":")
            if not sep:
                return FramingError(f"malformed header line {text[:80]!r}")
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    return FramingError(f"bad Content-Length {value.strip()[:40]!r}")
        if length < 0 or length > self._max:
            await self._discard(max(length, 0))
            return FramingError(f"message of {length} bytes exceeds the {self._max} byte limit")
        while len(self._buffer) < length:
            if not await self._fill():
                return None
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return body

    async def _discard(self, count: int) -> None:
        while count > 0:
            if not self._buffer and not await self._fill():
                return
            taken = min(count, len(self._buffer))
            del self._buffer[:taken]
            count -= taken


def frame_bytes(body: bytes, framing: Framing) -> bytes:
    """Wrap an encoded JSON body for the wire in the given framing."""
    if framing is Framing.CONTENT_LENGTH:
        return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    return body + b"\n"
