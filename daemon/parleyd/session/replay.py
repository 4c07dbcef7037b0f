"""Rebuilding a session from its log: the tree of conversations and their
histories, the usage ledger, the standing permission answers, and the stream
`session/load` replays: what the user saw, in the order it happened, each
conversation's updates under the same ids as live, each streamed part merged
into one update.

Turns the log opens but never ends were interrupted (the daemon died):
`closing_records` answers their open tool calls and ends them, children before
their parents, so every history is valid for the next model call and the
replay shows how each turn stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from parleyd.gc_pause import collector_paused
from parleyd.providers.messages import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from parleyd.session import updates
from parleyd.session.compaction import compacted
from parleyd.session.conversation import Budget, Conversation
from parleyd.session.titles import title_update
from parleyd.session.usage import UsageLedger
from parleyd.session.wire import ChildState, Outgoing
from parleyd.store.records import (
    AssistantResponse,
    BudgetReached,
    BudgetSet,
    Compacted,
    CompactionStarted,
    ConversationStarted,
    CurrentRecord,
    PermissionRemembered,
    Record,
    SessionStarted,
    TitleSet,
    ToolOutcome,
    ToolStarted,
    TurnEnded,
    TurnStarted,
    UsageRecorded,
    UserTurn,
)

INTERRUPTED_CALL = "Not finished: Parley stopped while this tool call was running."
INTERRUPTED_TURN = "Parley stopped before this turn finished."
UNRECORDED_CALL = "No result was recorded for this tool call; it may or may not have run."


@dataclass
class Restored:
    started: SessionStarted
    root: Conversation
    conversations: dict[str, Conversation]
    ledger: UsageLedger
    title: str | None
    # What to send, each with the conversation it belongs to.
    updates: list[tuple[Outgoing, Conversation]]
    # Tool name -> allowed, from the user's "always" answers.
    permissions: dict[str, bool] = field(default_factory=dict)


class NotASession(Exception):
    """The log has no session record: nothing to load."""


@dataclass
class _OpenTurn:
    """Format 1 logs have no turn records: a root prompt opens a turn (id None)."""

    turn: str | None
    conversation: str
    calls: dict[str, ToolCall] = field(default_factory=dict)
    # When it last wrote: the time its closing records carry, so the turn's
    # length is what it ran, not the time until the next load.
    last_written: float = 0.0


def closing_records(records: list[CurrentRecord]) -> list[CurrentRecord]:
    """What ends the turns the daemon died inside: a result for each call they
    never answered, then each turn's end, the deepest conversation first.
    Empty if every turn ended."""
    open_turns: dict[str, _OpenTurn] = {}
    depths: dict[str, int] = {}
    parents: dict[str, str | None] = {}
    # Each conversation's lineage as `parents` has it: worked out once, not per record.
    lineages: dict[str, list[str]] = {}
    for record in records:
        lineage = lineages.get(record.conv)
        if lineage is None:
            lineage = lineages[record.conv] = [record.conv]
            while (parent := parents.get(lineage[-1])) is not None and parent not in lineage:
                lineage.append(parent)
        # A turn runs as long as anything below it writes.
        for conversation in lineage:
            if conversation in open_turns:
                open_turns[conversation].last_written = record.ts
        match record:
            case ConversationStarted():
                depths[record.conv] = record.depth
                parents[record.conv] = record.parent
                lineages.clear()
                if record.parent is not None:
                    # A child is started to run a turn: one killed before its
                    # turn_start is closed like one killed inside it.
                    open_turns[record.conv] = _OpenTurn(None, record.conv, last_written=record.ts)
            case TurnStarted():
                open_turns[record.conv] = _OpenTurn(
                    record.turn, record.conv, last_written=record.ts
                )
            case UserTurn() if record.conv not in open_turns and not depths.get(record.conv):
                open_turns[record.conv] = _OpenTurn(None, record.conv, last_written=record.ts)
            case AssistantResponse() if record.conv in open_turns:
                for call in record.message.tool_calls:
                    open_turns[record.conv].calls[call.id] = call
            case ToolOutcome() if record.conv in open_turns:
                open_turns[record.conv].calls.pop(record.call_id, None)
            case TurnEnded():
                open_turns.pop(record.conv, None)
    closing: list[CurrentRecord] = []
    for open_turn in sorted(open_turns.values(), key=lambda t: -depths.get(t.conversation, 0)):
        for call in open_turn.calls.values():
            outcome = updates.interrupted_outcome(call.id, call.name, INTERRUPTED_CALL)
            closing.append(_in(outcome, open_turn))
        closing.append(_in(TurnEnded(stop_reason="interrupted", error=INTERRUPTED_TURN), open_turn))
    return closing


def _in(record: CurrentRecord, open_turn: _OpenTurn) -> CurrentRecord:
    record.conv, record.turn = open_turn.conversation, open_turn.turn
    record.ts = open_turn.last_written
    return record


@collector_paused()
def restore(records: list[CurrentRecord]) -> Restored:
    started = next((r for r in records if isinstance(r, SessionStarted)), None)
    if started is None:
        raise NotASession("the session log has no session record")
    conversations: dict[str, Conversation] = {}
    ledger = UsageLedger()
    title: str | None = None
    permissions: dict[str, bool] = {}
    replayed: list[tuple[Outgoing, Conversation]] = []
    started_calls: set[str] = set()

    def conversation_of(record: Record) -> Conversation:
        if record.conv not in conversations:
            conversations[record.conv] = Conversation(id=record.conv)
        return conversations[record.conv]

    def replay(items: Sequence[Outgoing], conversation: Conversation) -> None:
        replayed.extend((item, conversation) for item in items)

    for record in records:
        counted = ledger.observe(record)
        match record:
            case ConversationStarted():
                conversation = conversations[record.conv] = Conversation.started(record)
                if conversation.parent in conversations:
                    parent = conversations[conversation.parent]
                    replay([ChildState(conversation, "running", announce=True)], parent)
            case TitleSet():
                title = record.title
                root = conversation_of(record)
                replay([title_update(title, root)], root)
            case UserTurn():
                conversation = conversation_of(record)
                conversation.history.append(UserMessage(text=record.text))
                replay(
                    updates.user_updates(record.content, record.message_id, conversation.meta),
                    conversation,
                )
            case AssistantResponse():
                conversation = conversation_of(record)
                conversation.history.append(record.message)
                replay(updates.response_updates(record, conversation.meta), conversation)
            case ToolStarted():
                conversation = conversation_of(record)
                started_calls.add(record.call_id)
                replay([updates.tool_call_running(record.call_id, conversation.meta)], conversation)
            case ToolOutcome():
                conversation = conversation_of(record)
                conversation.history.append(record.message())
                lifecycle = updates.tool_call_lifecycle(
                    record, conversation.meta, start_replayed=record.call_id in started_calls
                )
                replay(lifecycle, conversation)
            case UsageRecorded():
                _replay_usage(replayed, ledger, conversations, conversation_of(record))
            case TurnEnded():
                conversation = conversation_of(record)
                if counted:  # its time: sent live at every turn's end
                    _replay_usage(replayed, ledger, conversations, conversation)
                if not conversation.is_root and conversation.parent in conversations:
                    ending = ChildState(
                        conversation, "idle", ending=record.stop_reason, error=record.error
                    )
                    replay([ending], conversation)
            case PermissionRemembered():
                permissions[record.tool] = record.allowed
            case BudgetSet():
                conversation_of(record).budget = Budget(
                    cost=record.cost, responses=record.responses, seconds=record.seconds
                )
            case BudgetReached() | CompactionStarted():
                replay([record], conversation_of(record))
            case Compacted():
                conversation = conversation_of(record)
                if record.status == "completed" and record.summary is not None:
                    kept = conversation.history[-record.kept :] if record.kept else []
                    conversation.history = compacted(record.summary, kept)
                replay([record], conversation)
            case _:
                pass
    for conversation in conversations.values():
        conversation.history = _every_call_answered(conversation.history)
    root = conversations.get(started.conv) or Conversation(id=started.conv)
    conversations.setdefault(root.id, root)
    ledger.adopt(root.id, None)
    return Restored(
        started=started,
        root=root,
        conversations=conversations,
        ledger=ledger,
        title=title,
        updates=replayed,
        permissions=permissions,
    )


def _every_call_answered(history: list[Message]) -> list[Message]:
    """The history with a result for every tool call, as providers require: a
    result the log never took (a full disk at the wrong moment) is supplied."""
    answered: list[Message] = []
    unanswered: dict[str, ToolCall] = {}

    def supply() -> None:
        answered.extend(
            ToolResultMessage(call_id=c.id, name=c.name, content=UNRECORDED_CALL, is_error=True)
            for c in unanswered.values()
        )
        unanswered.clear()

    for message in history:
        if isinstance(message, ToolResultMessage):
            unanswered.pop(message.call_id, None)
        elif unanswered:
            supply()
        answered.append(message)
        if isinstance(message, AssistantMessage):
            unanswered.update((call.id, call) for call in message.tool_calls)
    supply()
    return answered


def _replay_usage(
    replayed: list[tuple[Outgoing, Conversation]],
    ledger: UsageLedger,
    conversations: dict[str, Conversation],
    conversation: Conversation,
) -> None:
    lineage = [
        conversations[conv] for conv in ledger.lineage(conversation.id) if conv in conversations
    ]
    replayed.extend(updates.usage_updates(ledger, lineage))
