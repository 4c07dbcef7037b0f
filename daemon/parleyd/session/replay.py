"""Rebuilding a session from its log: the conversations' histories, the usage
ledger, the standing permission answers, and the `session/update` stream
`session/load` replays: what the user saw, in order, each streamed part merged
into one update.

A turn the log opens but never ends was interrupted (the daemon died):
`closing_records` answers its open tool calls and ends it, so the history is
valid for the next model call and the replay shows how the turn stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley_protocol.acp import SessionUpdate
from parleyd.providers.messages import ToolCall, UserMessage
from parleyd.session import updates
from parleyd.session.conversation import Conversation
from parleyd.session.usage import UsageLedger
from parleyd.store.records import (
    AssistantResponse,
    ConversationStarted,
    CurrentRecord,
    PermissionRemembered,
    Record,
    SessionStarted,
    TitleSet,
    ToolOutcome,
    TurnEnded,
    TurnStarted,
    UsageRecorded,
    UserTurn,
)

INTERRUPTED_CALL = "Not finished: Parley stopped while this tool call was running."
INTERRUPTED_TURN = "Parley stopped before this turn finished."


@dataclass
class Restored:
    started: SessionStarted
    root: Conversation
    conversations: dict[str, Conversation]
    ledger: UsageLedger
    title: str | None
    updates: list[SessionUpdate]
    # Tool name -> allowed, from the user's "always" answers.
    permissions: dict[str, bool] = field(default_factory=dict)


class NotASession(Exception):
    """The log has no session record: nothing to load."""


@dataclass
class _OpenTurn:
    """Format 1 logs have no turn records: a root prompt opens a turn (id None)."""

    turn: str | None
    conversation: str
    calls: dict[str, tuple[str, ToolCall]] = field(default_factory=dict)


def closing_records(records: list[CurrentRecord]) -> list[CurrentRecord]:
    """What ends the log's last turn if the daemon died inside it: a result for
    each call it never answered, then the turn's end. Empty if it ended."""
    open_turn: _OpenTurn | None = None
    for record in records:
        match record:
            case TurnStarted():
                open_turn = _OpenTurn(record.turn, record.conv)
            case UserTurn() if open_turn is None:
                open_turn = _OpenTurn(None, record.conv)
            case AssistantResponse() if open_turn is not None:
                for call in record.message.tool_calls:
                    open_turn.calls[call.id] = (record.conv, call)
            case ToolOutcome() if open_turn is not None:
                open_turn.calls.pop(record.call_id, None)
            case TurnEnded():
                open_turn = None
    if open_turn is None:
        return []
    closing: list[CurrentRecord] = []
    for conversation, call in open_turn.calls.values():
        outcome = updates.interrupted_outcome(call.id, call.name, INTERRUPTED_CALL)
        outcome.conv, outcome.turn = conversation, open_turn.turn
        closing.append(outcome)
    ended = TurnEnded(stop_reason="interrupted", error=INTERRUPTED_TURN)
    ended.conv, ended.turn = open_turn.conversation, open_turn.turn
    closing.append(ended)
    return closing


def restore(records: list[CurrentRecord]) -> Restored:
    started = next((r for r in records if isinstance(r, SessionStarted)), None)
    if started is None:
        raise NotASession("the session log has no session record")
    conversations: dict[str, Conversation] = {}
    ledger = UsageLedger.empty()
    title: str | None = None
    permissions: dict[str, bool] = {}
    replayed: list[SessionUpdate] = []

    def conversation_of(record: Record) -> Conversation:
        if record.conv not in conversations:
            conversations[record.conv] = Conversation(id=record.conv)
        return conversations[record.conv]

    for record in records:
        match record:
            case ConversationStarted():
                conversations[record.conv] = Conversation(
                    id=record.conv,
                    parent=record.parent,
                    parent_tool_call=record.parent_tool_call,
                    depth=record.depth,
                )
            case TitleSet():
                title = record.title
            case UserTurn():
                conversation = conversation_of(record)
                conversation.history.append(UserMessage(text=record.text))
                if conversation.parent is None:
                    ledger.start_turn()
                replayed += updates.user_updates(
                    record.content, record.message_id, conversation.meta
                )
            case AssistantResponse():
                conversation = conversation_of(record)
                conversation.history.append(record.message)
                replayed += updates.response_updates(record, conversation.meta)
            case ToolOutcome():
                conversation = conversation_of(record)
                conversation.history.append(record.message())
                replayed += updates.tool_call_lifecycle(record, conversation.meta)
            case UsageRecorded():
                replayed.append(updates.usage_update(record, ledger, conversation_of(record)))
            case PermissionRemembered():
                permissions[record.tool] = record.allowed
            case _:
                pass
    root = conversations.get(started.conv) or Conversation(id=started.conv)
    conversations.setdefault(root.id, root)
    return Restored(
        started=started,
        root=root,
        conversations=conversations,
        ledger=ledger,
        title=title,
        updates=replayed,
        permissions=permissions,
    )
