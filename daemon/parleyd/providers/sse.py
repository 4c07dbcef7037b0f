"""Incremental Server-Sent Events reading, shared by every SSE provider.

Follows the WHATWG event-stream rules with one deliberate deviation: an event
still pending at end of stream is delivered, not dropped, because real servers
end without the final blank line (a recorded OpenAI-compatible stream ends
`data: [DONE]\\n`) and dropping it would lose the terminator or the last chunk.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable, AsyncIterator

import msgspec

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SseEvent(msgspec.Struct, frozen=True):
    """One dispatched event: `event` is the `event:` field, None when the server sent none."""

    event: str | None
    data: str


class SseParser:
    """Push parser: feed raw bytes as they arrive, get whole events back."""

    def __init__(self) -> None:
        # utf-8-sig drops the optional leading BOM the spec allows; the incremental
        # decoder keeps a multibyte character cut across chunks until it is whole.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._partial: list[str] = []
        self._after_cr = False
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        return self._lines(self._decoder.decode(chunk))

    def close(self) -> list[SseEvent]:
        """End of stream: the unterminated last line and pending event, if any."""
        events = self._lines(self._decoder.decode(b"", final=True))
        if self._partial:
            events += self._line("".join(self._partial))
            self._partial.clear()
        return events + self._dispatch()

    def _lines(self, text: str) -> list[SseEvent]:
        if self._after_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF that was cut between two chunks
            self._after_cr = False
        if not text:
            return []
        self._after_cr = text.endswith("\r")
        self._partial.append(text)
        if "\n" not in text and "\r" not in text:
            return []  # no line ends yet; joining only now keeps byte-sized chunks linear
        text = "".join(self._partial)
        events: list[SseEvent] = []
        if not self._data and self._event is None and "\r" not in text:
            *blocks, text = text.split("\n\n")
            for block in blocks:
                events += self._block(block)
        *complete, rest = _LINE_BREAK.split(text)
        self._partial = [rest] if rest else []
        for line in complete:
            events += self._line(line)
        return events

    def _block(self, block: str) -> list[SseEvent]:
        """One whole event (the lines before a blank line). Nearly every event
        of a model stream is one `data: ` line, and takes the short way."""
        if block.startswith("data: ") and "\n" not in block:
            return [SseEvent(None, block[6:])]
        events: list[SseEvent] = []
        for line in block.split("\n"):
            events += self._line(line)
        return events + self._dispatch()

    def _line(self, line: str) -> list[SseEvent]:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return []  # a comment, e.g. OpenRouter's ": OPENROUTER PROCESSING" keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        # `id` and `retry` only matter for reconnecting, which a model stream never does.
        return []

    def _dispatch(self) -> list[SseEvent]:
        data, event = self._data, self._event
        self._data, self._event = [], None
        if not data:
            return []
        return [SseEvent(event=event or None, data="\n".join(data))]


def parse_sse(body: bytes) -> list[SseEvent]:
    """The events of a body already read whole."""
    parser = SseParser()
    return parser.feed(body) + parser.close()


async def read_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[list[SseEvent]]:
    """The events of a byte stream as soon as each is complete, in the batches
    that arrived together: one step per network read, however many events it held."""
    parser = SseParser()
    async for chunk in chunks:
        if events := parser.feed(chunk):
            yield events
    if events := parser.close():
        yield events
