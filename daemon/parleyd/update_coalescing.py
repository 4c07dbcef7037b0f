"""Which `session/update`s may stand for several while the client is behind
(see `rpc/outbox.py`): the deltas of one message join into one chunk, and a
conversation's newest usage figures replace the ones still queued. Tool calls,
plans, states and everything else go out one by one, as they came."""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

import msgspec

from parley_protocol.acp import (
    AgentMessageChunk,
    AgentThoughtChunk,
    Meta,
    SessionNotification,
    TextContent,
    UsageUpdate,
    UserMessageChunk,
)
from parley_protocol.parley import PARLEY_META_KEY

_Chunk = AgentMessageChunk | AgentThoughtChunk | UserMessageChunk
_USAGE = "usage"


class UpdateCoalescing:
    def key(self, params: SessionNotification) -> Hashable | None:
        update = params.update
        if isinstance(update, _Chunk):
            if update.message_id is None or not isinstance(update.content, TextContent):
                return None  # nothing tells its message apart, or not text to join
            return (type(update), params.session_id, update.message_id)
        if isinstance(update, UsageUpdate):
            parley = (update.meta or {}).get(PARLEY_META_KEY) or {}
            conversation = parley.get("conversation")
            return (_USAGE, params.session_id, getattr(conversation, "id", None))
        return None

    def replaces(self, key: Hashable) -> bool:
        return isinstance(key, tuple) and key[0] == _USAGE

    def piece(self, params: SessionNotification) -> tuple[object, int]:
        # Only chunks join (usage replaces): the delta's text, and its `_meta`,
        # whose sequence number the joined chunk takes from its last delta.
        text: str = params.update.content.text  # type: ignore[union-attr]
        return _Piece(text, params.meta), len(text)

    def fold(self, first: SessionNotification, pieces: list[object]) -> SessionNotification:
        update = first.update
        assert isinstance(update, _Chunk) and isinstance(update.content, TextContent)
        joined = [piece for piece in pieces if isinstance(piece, _Piece)]
        text = update.content.text + "".join(piece.text for piece in joined)
        content = msgspec.structs.replace(update.content, text=text)
        return msgspec.structs.replace(
            first,
            update=msgspec.structs.replace(update, content=content),
            meta=joined[-1].meta if joined else first.meta,
        )


class _Piece(NamedTuple):
    text: str
    meta: Meta | None
