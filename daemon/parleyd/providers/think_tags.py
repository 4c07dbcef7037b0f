"""Splitting `<think>...</think>` reasoning out of streamed content.

Reasoning models served without a reasoning parser (DeepSeek-R1 and its
distills on Groq with `reasoning_format: raw`, on Together through the Hugging
Face router, QwQ on vLLM) put their reasoning inside `content`, opened by a
`<think>` that is always the first thing they emit. So only a `<think>` at the
very start of the content (after optional whitespace) opens thinking, and only
one block is recognised. Anything else is ordinary text, passed through at once:
a model explaining the tag, or code that contains it, keeps its text, and
plain models pay no latency for the check beyond their first few characters.
Tags are matched exactly; whitespace inside either block is kept as sent.
"""

from __future__ import annotations

from enum import Enum, auto

from parleyd.providers.events import JoinedEvents, TextDelta, ThinkingDelta

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"

Piece = tuple[bool, str]
"""(is_thinking, text)"""


class _State(Enum):
    START = auto()  # nothing but whitespace seen: a <think> may still open
    THINKING = auto()  # inside the block, watching for </think>
    TEXT = auto()  # plain text from here to the end


class ThinkTagSplitter:
    """Feed content deltas in order; call `flush` once at the end of the stream."""

    def __init__(self) -> None:
        self._state = _State.START
        self._held = ""

    @property
    def passing(self) -> bool:
        """Past any thinking: everything fed from now on is text, as it is."""
        return self._state is _State.TEXT

    def feed(self, text: str) -> list[Piece]:
        pending, self._held = self._held + text, ""
        pieces: list[Piece] = []
        if self._state is _State.START:
            pending = self._open(pending)
        if self._state is _State.THINKING:
            pending = self._think(pending, pieces)
        if self._state is _State.TEXT and pending:
            pieces.append((False, pending))
        return pieces

    def flush(self) -> list[Piece]:
        """What was held back as a possible tag: it was not one."""
        held, self._held = self._held, ""
        thinking = self._state is _State.THINKING
        if self._state is _State.START:
            self._state = _State.TEXT
        return [(thinking, held)] if held else []

    def _open(self, pending: str) -> str:
        stripped = pending.lstrip()
        if stripped.startswith(OPEN_TAG):
            self._state = _State.THINKING
            return stripped[len(OPEN_TAG) :]
        if OPEN_TAG.startswith(stripped):
            self._held = pending  # whitespace or "<thi": cannot tell yet
            return ""
        self._state = _State.TEXT
        return pending

    def _think(self, pending: str, pieces: list[Piece]) -> str:
        end = pending.find(CLOSE_TAG)
        if end >= 0:
            if end:
                pieces.append((True, pending[:end]))
            self._state = _State.TEXT
            return pending[end + len(CLOSE_TAG) :]
        keep = _tag_prefix_suffix(pending, CLOSE_TAG)
        if len(pending) > keep:
            pieces.append((True, pending[: len(pending) - keep]))
        self._held = pending[len(pending) - keep :]
        return ""


class ThinkTagStream:
    """A stream's content deltas added to `out` as text, and as thinking where
    they are inside the opening `<think>` block."""

    def __init__(self) -> None:
        self._splitter = ThinkTagSplitter()
        # Past any thinking: what is fed is text as it is. A plain attribute:
        # it is read once per delta.
        self.passing = False

    def feed(self, content: str, out: JoinedEvents) -> None:
        if self.passing:
            out.text(TextDelta, content)
        else:
            _add(self._splitter.feed(content), out)
            self.passing = self._splitter.passing

    def flush(self, out: JoinedEvents) -> None:
        """What was held back as a possible tag; at the end, or before what must follow it."""
        _add(self._splitter.flush(), out)


def _add(pieces: list[Piece], out: JoinedEvents) -> None:
    for is_thinking, text in pieces:
        out.text(ThinkingDelta if is_thinking else TextDelta, text)


def _tag_prefix_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is the beginning of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0
