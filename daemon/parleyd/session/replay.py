"""Rebuilding a session from its log: the tree of conversations and their
histories, the usage ledger, the permission mode and standing answers, and the stream
`session/load` replays: what the user saw, in the order it happened, each
conversation's updates under the same ids as live, merged: each streamed
part is one update, the consecutive updates of one tool call are one, and
usage, a state rather than an event, is what it stood at when each turn ended.

Turns the log opens but never ends were interrupted (the daemon died):
`closing_records` answers their open tool calls and ends them, children before
their parents, so every history is valid for the next model call and the
replay shows how each turn stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from parley_protocol.acp import ToolCallProgress, ToolCallStart
from parleyd.gc_pause import collector_paused
from parleyd.providers.messages import (
    AssistantMessage,
    Message,
    Part,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
)
from parleyd.session import updates
from parleyd.session.compaction import compacted
from parleyd.session.conversation import Budget, Conversation
from parleyd.session.modes import mode_update
from parleyd.session.queue import MessageQueue
from parleyd.session.titles import title_update
from parleyd.session.usage import UsageLedger
from parleyd.session.user_input import tool_result_message, user_message
from parleyd.session.wire import ChildState, Outgoing
from parleyd.store.records import (
    AssistantResponse,
    BudgetReached,
    BudgetSet,
    Compacted,
    CompactionStarted,
    ConversationStarted,
    CurrentRecord,
    ForkedFrom,
    MessageQueued,
    ModeSet,
    PermissionRemembered,
    QueuedReplaced,
    QueuedWithdrawn,
    Record,
    ResponseStreamed,
    SessionStarted,
    TitleSet,
    ToolCallView,
    ToolOutcome,
    ToolStarted,
    TurnEnded,
    TurnPaused,
    TurnResumed,
    TurnStarted,
    UserTurn,
)
from parleyd.tools.permission import Scope

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
    # The messages still waiting to be its next prompts.
    queue: MessageQueue
    # What each of the user's "always" answers covers -> allowed.
    permissions: dict[Scope, bool] = field(default_factory=dict)
    # The mode id the last `mode` record set; None before the first.
    mode: str | None = None
    # The session's turn was paused and is to be resumed, in these turns:
    # conversation id -> its open turn's id.
    paused: TurnPaused | None = None
    open_turns: dict[str, str | None] = field(default_factory=dict)


class NotASession(Exception):
    """The log has no session record: nothing to load."""


@dataclass
class _StreamedSoFar:
    """A response's checkpoints joined: what it had streamed when the daemon
    died, kept as a response cut short."""

    message_id: str
    model: str
    parts: list[Part] = field(default_factory=list)
    views: dict[str, ToolCallView] = field(default_factory=dict)
    call_starts: dict[str, int] = field(default_factory=dict)

    def add(self, checkpoint: ResponseStreamed) -> None:
        new = list(checkpoint.parts)
        if checkpoint.extends_last and new and self.parts:
            self.parts[-1] = _continued(self.parts[-1], new.pop(0))
        self.parts += new
        self.views.update((view.call_id, view) for view in checkpoint.tool_views)
        self.call_starts.update(checkpoint.call_starts)

    def response(self) -> AssistantResponse:
        message = AssistantMessage(parts=tuple(self.parts))
        complete = {call.id for call in message.tool_calls}
        return AssistantResponse(
            message=message,
            message_id=self.message_id,
            model=self.model,
            tool_views=[self.views[c.id] for c in message.tool_calls if c.id in self.views],
            abandoned_calls=[v for v in self.views.values() if v.call_id not in complete],
            interrupted=True,
            call_starts=self.call_starts,
        )


def _continued(part: Part, more: Part) -> Part:
    match part, more:
        case ThinkingPart(), ThinkingPart():
            return ThinkingPart(
                text=part.text + more.text,
                signature=more.signature or part.signature,
                redacted=more.redacted or part.redacted,
            )
        case TextPart(), TextPart():
            return TextPart(part.text + more.text)
        case RefusalPart(), RefusalPart():
            return RefusalPart(part.text + more.text)
    raise ValueError(f"a {type(more).__name__} cannot continue a {type(part).__name__}")


@dataclass
class _OpenTurn:
    """Format 1 logs have no turn records: a root prompt opens a turn (id None)."""

    turn: str | None
    conversation: str
    calls: dict[str, ToolCall] = field(default_factory=dict)
    # The calls among them that had started running.
    running: set[str] = field(default_factory=set)
    # Message id -> a response still streaming, as far as its checkpoints go.
    streaming: dict[str, _StreamedSoFar] = field(default_factory=dict)


def closing_records(records: list[CurrentRecord]) -> list[CurrentRecord]:
    """What ends the turns the daemon died inside: the response each had
    streaming, as far as its checkpoints go, a result for each call they never
    answered, then each turn's end, the deepest conversation first. Empty if
    every turn ended.

    A session whose turn was paused keeps its turns open, to be resumed: only
    what died with the daemon is closed (a response cut mid-stream is kept as
    far as it got, a tool call that was running is answered as not finished),
    and calls that had not started, or whose sub-agent is paused, wait."""
    open_turns: dict[str, _OpenTurn] = {}
    depths: dict[str, int] = {}
    parents: dict[str, str | None] = {}
    last_written: dict[str, float] = {}
    root: str | None = None
    paused = False
    # A `subagent` call's id -> the child conversation it runs.
    children: dict[str, str] = {}
    for record in records:
        last_written[record.conv] = record.ts
        match record:
            case SessionStarted():
                root = record.conv
            case TurnPaused():
                paused = True
            case TurnResumed():
                paused = False
            case ToolStarted() if record.conv in open_turns:
                open_turns[record.conv].running.add(record.call_id)
            case ConversationStarted():
                depths[record.conv] = record.depth
                parents[record.conv] = record.parent
                if record.parent_tool_call is not None:
                    children[record.parent_tool_call] = record.conv
                if record.parent is not None:
                    # A child is started to run a turn: one killed before its
                    # turn_start is closed like one killed inside it.
                    open_turns[record.conv] = _OpenTurn(None, record.conv)
            case TurnStarted():
                open_turns[record.conv] = _OpenTurn(record.turn, record.conv)
            case UserTurn() if record.conv not in open_turns and not depths.get(record.conv):
                open_turns[record.conv] = _OpenTurn(None, record.conv)
            case ResponseStreamed() if record.conv in open_turns:
                streaming = open_turns[record.conv].streaming
                if record.message_id not in streaming:
                    streaming[record.message_id] = _StreamedSoFar(record.message_id, record.model)
                streaming[record.message_id].add(record)
            case AssistantResponse() if record.conv in open_turns:
                open_turns[record.conv].streaming.pop(record.message_id, None)
                for call in record.message.tool_calls:
                    open_turns[record.conv].calls[call.id] = call
            case ToolOutcome() if record.conv in open_turns:
                open_turns[record.conv].calls.pop(record.call_id, None)
            case TurnEnded():
                open_turns.pop(record.conv, None)
                paused = paused and record.conv != root
    if not open_turns:
        return []
    # A turn runs as long as anything below it writes: its closing records carry
    # that time, so its length is what it ran, not the time until this load.
    for writer, written in list(last_written.items()):
        lineage = [writer]
        while (parent := parents.get(lineage[-1])) is not None and parent not in lineage:
            lineage.append(parent)
            last_written[parent] = max(last_written.get(parent, written), written)
    closing: list[CurrentRecord] = []
    for open_turn in sorted(open_turns.values(), key=lambda t: -depths.get(t.conversation, 0)):
        ending = last_written[open_turn.conversation]
        for streamed in open_turn.streaming.values():
            cut_short = streamed.response()
            closing.append(_in(cut_short, open_turn, ending))
            open_turn.calls.update((call.id, call) for call in cut_short.message.tool_calls)
        for call in open_turn.calls.values():
            if paused and (call.id not in open_turn.running or children.get(call.id) in open_turns):
                continue
            outcome = updates.interrupted_outcome(call.id, call.name, INTERRUPTED_CALL)
            closing.append(_in(outcome, open_turn, ending))
        if not paused:
            ended = TurnEnded(stop_reason="interrupted", error=INTERRUPTED_TURN)
            closing.append(_in(ended, open_turn, ending))
    return closing


def _in(record: CurrentRecord, open_turn: _OpenTurn, ts: float) -> CurrentRecord:
    record.conv, record.turn, record.ts = open_turn.conversation, open_turn.turn, ts
    return record


@collector_paused()
def restore(records: list[CurrentRecord]) -> Restored:
    started = next((r for r in records if isinstance(r, SessionStarted)), None)
    if started is None:
        raise NotASession("the session log has no session record")
    conversations: dict[str, Conversation] = {}
    ledger = UsageLedger()
    title: str | None = None
    permissions: dict[Scope, bool] = {}
    mode: str | None = None
    replayed: list[tuple[Outgoing, Conversation]] = []
    started_calls: set[str] = set()
    # Conversations whose figures changed since their usage was last replayed.
    usage_changed: set[str] = set()
    paused: TurnPaused | None = None
    open_turns: dict[str, str | None] = {}
    queue = MessageQueue(started.session_id)

    def replay_usage(conversation: Conversation) -> None:
        if conversation.id in usage_changed:
            usage_changed.discard(conversation.id)
            replayed.extend(updates.usage_updates(ledger, [conversation], turn_ended=True))

    def conversation_of(record: Record) -> Conversation:
        if record.conv not in conversations:
            conversations[record.conv] = Conversation(id=record.conv)
        return conversations[record.conv]

    def replay(items: Sequence[Outgoing], conversation: Conversation) -> None:
        replayed.extend((item, conversation) for item in items)

    for record in records:
        if ledger.observe(record):
            usage_changed.update(ledger.lineage(record.conv))
        match record:
            case ConversationStarted():
                conversation = conversations[record.conv] = Conversation.started(record)
                if conversation.parent is not None:
                    open_turns[conversation.id] = None  # started to run a turn
                if conversation.parent in conversations:
                    parent = conversations[conversation.parent]
                    replay([ChildState(conversation, "running", announce=True)], parent)
            case TitleSet():
                title = record.title
                root = conversation_of(record)
                replay([title_update(title, root)], root)
            case UserTurn():
                queue.follow(record)
                conversation = conversation_of(record)
                if record.turn is None:  # format 1: a prompt ends the turn before it
                    replay_usage(conversation)
                conversation.history.append(user_message(record.text, record.content))
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
                conversation.history.append(tool_result_message(record))
                lifecycle = updates.tool_call_lifecycle(
                    record, conversation.meta, start_replayed=record.call_id in started_calls
                )
                replay(lifecycle, conversation)
            case TurnStarted():
                open_turns[record.conv] = record.turn
            case TurnPaused() | TurnResumed():
                paused = record if isinstance(record, TurnPaused) else None
                state: updates.TurnStatusName = "running" if paused is None else "paused"
                reason = None if paused is None else paused.reason
                root = conversation_of(record)
                replay([updates.turn_status_update(state, reason, root)], root)
            case TurnEnded():
                conversation = conversation_of(record)
                open_turns.pop(conversation.id, None)
                if conversation.id == started.conv:
                    paused = None
                replay_usage(conversation)
                if not conversation.is_root and conversation.parent in conversations:
                    ending = ChildState(
                        conversation, "idle", ending=record.stop_reason, error=record.error
                    )
                    replay([ending], conversation)
            case MessageQueued() | QueuedReplaced() | QueuedWithdrawn():
                # Not shown: a waiting message is shown when its turn opens.
                queue.follow(record)
            case ForkedFrom():
                queue.forget()
            case PermissionRemembered():
                permissions[Scope(record.tool, record.command_prefix)] = record.allowed
            case ModeSet():
                mode = record.mode
                root = conversation_of(record)
                replay([mode_update(mode, root)], root)
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
    # The figures of turns the log never ended (format 1), children before
    # parents, as their turns would have ended.
    for conversation in sorted(conversations.values(), key=lambda c: -c.depth):
        # A paused turn's last calls wait for the resume that runs them.
        waiting = paused is not None and conversation.id in open_turns
        conversation.history = _every_call_answered(conversation.history, trailing=not waiting)
        replay_usage(conversation)
    root = conversations.get(started.conv) or Conversation(id=started.conv)
    conversations.setdefault(root.id, root)
    ledger.adopt(root.id, None)
    return Restored(
        started=started,
        root=root,
        conversations=conversations,
        ledger=ledger,
        title=title,
        updates=list(_tool_calls_folded(replayed)),
        queue=queue,
        permissions=permissions,
        mode=mode,
        paused=paused,
        open_turns=open_turns if paused is not None else {},
    )


def _every_call_answered(history: list[Message], *, trailing: bool = True) -> list[Message]:
    """The history with a result for every tool call, as providers require: a
    result the log never took (a full disk at the wrong moment) is supplied;
    for the calls of its last message too unless not `trailing`."""
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
    if trailing:
        supply()
    return answered


_ToolCallUpdate = ToolCallStart | ToolCallProgress


def _tool_calls_folded(
    replayed: Iterable[tuple[Outgoing, Conversation]],
) -> Iterable[tuple[Outgoing, Conversation]]:
    """Each run of consecutive updates of one tool call as a single update: the
    first, with every field a later one set. That is the state a client holds
    once it has applied them all, as ACP's tool-call updates replace the fields
    they carry. A call is its id in its conversation: models number their
    calls alike (`call_0`), so two conversations' calls may share an id."""
    held: tuple[_ToolCallUpdate, Conversation] | None = None
    for item in replayed:
        update, conversation = item
        if isinstance(update, _ToolCallUpdate):
            if (
                held is not None
                and held[0].tool_call_id == update.tool_call_id
                and held[1] is conversation
            ):
                held = (_with_fields_of(held[0], update), conversation)
                continue
            if held is not None:
                yield held
            held = (update, conversation)
            continue
        if held is not None:
            yield held
            held = None
        yield item
    if held is not None:
        yield held


def _with_fields_of(first: _ToolCallUpdate, later: _ToolCallUpdate) -> _ToolCallUpdate:
    changed = {
        name: value
        for name in later.__struct_fields__
        if (value := getattr(later, name)) is not None and value is not msgspec.UNSET
    }
    return msgspec.structs.replace(first, **changed)
