"""Incremental reading of newline-delimited JSON (Ollama's native `/api/chat` stream).

Lines are split on `\\n` alone: JSON text cannot hold a raw line break, so a
`\\r` before it can only be whitespace, which every JSON decoder skips. The
bytes are never decoded here, and `\\n` is never part of a multibyte UTF-8
character, so a character cut across two reads needs no care either.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator


async def read_ndjson(chunks: AsyncIterable[bytes]) -> AsyncIterator[list[bytes]]:
    """The lines of a byte stream, each batch the lines one network read
    completed (one step per read, however many lines it held). A last line
    with no newline after it is delivered at the end; blank lines are skipped."""
    # The start of a line still waiting for its end, in pieces: joined only once
    # the end arrives, so a long line read byte by byte costs linear time.
    pending: list[bytes] = []
    async for chunk in chunks:
        if b"\n" not in chunk:
            if chunk:
                pending.append(chunk)
            continue
        data = b"".join((*pending, chunk)) if pending else chunk
        *lines, rest = data.split(b"\n")
        pending = [rest] if rest else []
        if batch := [line for line in lines if line and not line.isspace()]:
            yield batch
    last = b"".join(pending)
    if last and not last.isspace():
        yield [last]
