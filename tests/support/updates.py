"""What a replay is expected to be, given what streamed live."""

from __future__ import annotations

from typing import Any

_CHUNKS = frozenset({"agent_message_chunk", "agent_thought_chunk", "user_message_chunk"})


def merge_chunks(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive text chunks of one kind and one message joined into one, as
    `session/load` replays them (the live stream keeps every delta)."""
    merged: list[dict[str, Any]] = []
    for update in updates:
        last = merged[-1] if merged else None
        if (
            last is not None
            and update["sessionUpdate"] in _CHUNKS
            and last["sessionUpdate"] == update["sessionUpdate"]
            and last.get("messageId") == update.get("messageId")
            and last["content"]["type"] == update["content"]["type"] == "text"
        ):
            last["content"] = {
                **last["content"],
                "text": last["content"]["text"] + update["content"]["text"],
            }
            continue
        merged.append(dict(update))
    return merged
