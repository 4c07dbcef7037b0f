"""What a replay is expected to be, given what streamed live."""

from __future__ import annotations

from typing import Any

Update = dict[str, Any]

_CHUNKS = frozenset({"agent_message_chunk", "agent_thought_chunk", "user_message_chunk"})
_TOOL_CALLS = frozenset({"tool_call", "tool_call_update"})


def as_replayed(updates: list[Update]) -> list[Update]:
    """One conversation's updates as `session/load` replays them (the live
    stream keeps every step): consecutive text chunks of one kind and one
    message joined into one; of the usage figures, only each turn's final
    ones; the consecutive updates of one tool call folded into the first, each
    field as the last one that set it."""
    replayed: list[Update] = []
    for update in updates:
        if update["sessionUpdate"] == "usage_update" and not turn_ended(update):
            continue
        last = replayed[-1] if replayed else None
        if last is not None and _same_message(last, update):
            last["content"] = {
                **last["content"],
                "text": last["content"]["text"] + update["content"]["text"],
            }
        elif last is not None and _same_tool_call(last, update):
            # A field left out (or null, as the SDKs dump it) is left as it was.
            last.update(
                (key, value)
                for key, value in update.items()
                if value is not None and key != "sessionUpdate"
            )
        else:
            replayed.append(dict(update))
    return replayed


def turn_ended(usage: Update) -> bool:
    """A usage update with a turn's final figures."""
    return bool(usage.get("_meta", {}).get("parley", {}).get("usage", {}).get("turnEnded"))


def _same_message(last: Update, update: Update) -> bool:
    return (
        update["sessionUpdate"] in _CHUNKS
        and last["sessionUpdate"] == update["sessionUpdate"]
        and last.get("messageId") == update.get("messageId")
        and last["content"]["type"] == update["content"]["type"] == "text"
    )


def _same_tool_call(last: Update, update: Update) -> bool:
    # A child's state shown on its parent's call is news of the child, kept apart.
    return (
        last["sessionUpdate"] in _TOOL_CALLS
        and update["sessionUpdate"] == "tool_call_update"
        and last["toolCallId"] == update["toolCallId"]
        and not _tells_a_child(last)
        and not _tells_a_child(update)
    )


def _tells_a_child(update: Update) -> bool:
    return "subagent" in update.get("_meta", {}).get("parley", {})
