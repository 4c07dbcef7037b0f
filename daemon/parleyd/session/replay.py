"""Rebuilding a session from its log: the conversations' histories, the usage
ledger, and the `session/update` stream `session/load` replays, chunk for
chunk and tool call for tool call, as it was streamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley_protocol.acp import SessionUpdate
from parleyd.providers.messages import ToolCall, UserMessage
from parleyd.session import updates
from parleyd.session.conversation import Conversation
from parleyd.session.usage import UsageLedger
from parleyd.store.records import (
    AnyRecord,
    AssistantTurn,
    ConversationStarted,
    SessionStarted,
    TitleSet,
    ToolCallView,
    ToolOutcome,
    UsageRecorded,
    UserTurn,
)


@dataclass
class Restored:
    started: SessionStarted
    root: Conversation
    conversations: dict[str, Conversation]
    ledger: UsageLedger
    title: str | None
    updates: list[SessionUpdate]
    # Tool calls the log has no result for (the daemon died while they ran).
    unanswered: list[tuple[Conversation, ToolCall]] = field(default_factory=list)


class NotASession(Exception):
    """The log has no session record: nothing to load."""


def restore(records: list[AnyRecord]) -> Restored:
    started = next((r for r in records if isinstance(r, SessionStarted)), None)
    if started is None:
        raise NotASession("the session log has no session record")
    conversations: dict[str, Conversation] = {}
    ledger = UsageLedger.empty()
    title: str | None = None
    replayed: list[SessionUpdate] = []
    pending: dict[str, tuple[Conversation, ToolCall]] = {}

    def conversation_of(record: AnyRecord) -> Conversation:
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
            case AssistantTurn():
                conversation = conversation_of(record)
                conversation.history.append(record.message)
                meta = conversation.meta
                replayed += [
                    updates.chunk_update(kind, text, record.message_id, meta)
                    for kind, text in record.chunks
                ]
                views = {view.call_id: view for view in record.tool_views}
                for call in record.message.tool_calls:
                    view = views.get(call.id) or ToolCallView(call.id, call.name, "other")
                    replayed.append(
                        updates.tool_call_announced(call.id, call.name, view.kind, meta)
                    )
                    replayed.append(
                        updates.tool_call_ready(view, updates.parse_raw_input(call.arguments), meta)
                    )
                    pending[call.id] = (conversation, call)
            case ToolOutcome():
                conversation = conversation_of(record)
                conversation.history.append(record.message())
                pending.pop(record.call_id, None)
                replayed += updates.tool_call_lifecycle(record, conversation.meta)
            case UsageRecorded():
                replayed.append(updates.usage_update(record, ledger, conversation_of(record)))
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
        unanswered=list(pending.values()),
    )
