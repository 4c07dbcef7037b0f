"""Splitting the client's byte stream into JSON-RPC frames, in either framing.

ACP clients send newline-delimited JSON; LSP-style clients (pygls, pytest-lsp,
vscode-jsonrpc) send `Content-Length` headers. The first line decides: it opens
a header block only when it starts with `Content-Length:` or `Content-Type:`
(any case); anything else, garbage included, means NDJSON, so a stray first
line costs one parse error, not the connection. The writer answers in the
framing detected here.

Nothing a client sends stops the reader: every unusable frame becomes one
FramingError and reading goes on in sync. A header block that cannot be used
(a length that is not a number, missing or given twice with two values, a line
that is no header) leaves the end of its body unknown, so the reader skips to
the next header block it finds.
"""

from __future__ import annotations

import asyncio
import enum
import re
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
# Where a header block can start. A body's end is not a line end (JSON bodies
# rarely end in a newline), so after a bad block this is searched anywhere.
_HEADER_START = re.compile(rb"content-(?:length|type)[ \t]*:", re.IGNORECASE)
# Enough of a line to tell a header from anything else; also the tail kept
# while searching, in case a header name is split across two reads.
_DETECT_BYTES = 64
# RFC 9110 field names: a "name" with quotes, braces or spaces is not a header.
_FIELD_NAME = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class FrameReader:
    """Yields each frame's body bytes, or a FramingError, until end of input."""

    def __init__(self, stream: asyncio.StreamReader, max_frame_bytes: int) -> None:
        self._stream = stream
        self._max = max_frame_bytes
        self._buffer = bytearray()
        self._eof = False
        # After an unusable header block: its body's end is unknown.
        self._lost_sync = False
        self.framing: Framing | None = None

    async def frames(self) -> AsyncIterator[bytes | FramingError]:
        if not await self._detect():
            return
        next_frame = (
            self._next_line_frame if self.framing is Framing.NDJSON else self._next_header_frame
        )
        while (item := await next_frame()) is not None:
            yield item

    async def _fill(self) -> bool:
        """Read more bytes into the buffer; False at end of input."""
        if self._eof:
            return False
        try:
            chunk = await self._stream.read(_READ_SIZE)
        except ConnectionError:
            # Reset (a client killed with our answers unread): it has gone,
            # as surely as at a clean end of input.
            chunk = b""
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    async def _detect(self) -> bool:
        while True:
            del self._buffer[: len(self._buffer) - len(self._buffer.lstrip())]
            decidable = b"\n" in self._buffer or len(self._buffer) >= _DETECT_BYTES
            if self._buffer and (decidable or self._eof):
                header = _HEADER_START.match(self._buffer) is not None
                self.framing = Framing.CONTENT_LENGTH if header else Framing.NDJSON
                return True
            if not await self._fill() and not self._buffer:
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
        if self._lost_sync:
            # Skipped only now, not before the error went out: the client may
            # well be waiting for that error before it sends anything more.
            await self._skip_to_next_header()
            self._lost_sync = False
        length = await self._read_header_block()
        if length is None:
            return None
        if isinstance(length, FramingError):
            self._lost_sync = True
            return length
        if length > self._max:
            await self._discard(length)
            return FramingError(f"message of {length} bytes exceeds the {self._max} byte limit")
        while len(self._buffer) < length:
            if not await self._fill():
                return None
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return body

    async def _read_header_block(self) -> int | FramingError | None:
        """The body length a header block declares, or why it is unusable; None at
        end of input. An unusable block is read to its end when it can be, so the
        search for the next block starts past its headers."""
        length: int | None = None
        problem: str | None = None
        block_bytes = 0
        while True:
            line, overflowed = await self._read_until_newline(_MAX_HEADER_BLOCK)
            if overflowed:
                return FramingError(f"header line longer than {_MAX_HEADER_BLOCK} bytes")
            if line is None:
                return None if block_bytes == 0 else FramingError("input ended inside a header")
            text = line.rstrip(b"\r")
            if not text:
                if block_bytes == 0:
                    continue  # stray blank line between messages
                if problem is None and length is None:
                    problem = "header block without a Content-Length"
                return length if problem is None else FramingError(problem)
            block_bytes += len(text)
            name, colon, value = text.partition(b":")
            if not colon or not _FIELD_NAME.fullmatch(name.strip()):
                # Not a header at all: maybe the tail of a body whose length was
                # wrong. The next block may start inside this very line; it
                # cannot start at its first byte, or the line would be a header.
                self._buffer[:0] = text[1:] + b"\n"
                return FramingError(f"malformed header line {text[:80]!r}")
            if block_bytes > _MAX_HEADER_BLOCK:
                problem = problem or f"header block longer than {_MAX_HEADER_BLOCK} bytes"
            elif name.strip().lower() == b"content-length" and problem is None:
                declared = value.strip()
                if not declared.isdigit():
                    problem = f"bad Content-Length {declared[:40]!r}"
                elif length is not None and int(declared) != length:
                    problem = f"two different Content-Length values, {length} and {int(declared)}"
                else:
                    length = int(declared)

    async def _skip_to_next_header(self) -> None:
        """Drop input up to the next `Content-Length:` or `Content-Type:`, wherever
        it is: the body of an unusable block has no known end."""
        while True:
            found = _HEADER_START.search(self._buffer)
            if found is not None:
                del self._buffer[: found.start()]
                return
            del self._buffer[:-_DETECT_BYTES]
            if not await self._fill():
                self._buffer.clear()
                return

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
