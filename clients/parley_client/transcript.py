"""Folding a session's `session/update` stream into what a person reads: messages,
tool calls with their latest state, and usage figures, per conversation.

A session is a tree of conversations: the root, and the sub-agents (children) its
`subagent` tool calls start, which may start their own. A client that does not take
child sessions gets all of them under the session's id, each update naming its
conversation at `_meta.parley.conversation`; `Transcript` folds each into its own
`Conversation`, so conversations streaming at once never run into one another.

The renderer draws from it, and `compare_replay` uses it to check that a loaded
session replays what was streamed live.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import msgspec

from parley_protocol.acp import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    AnySessionUpdate,
    AudioContent,
    ContentBlock,
    Cost,
    EmbeddedResource,
    ImageContent,
    Meta,
    ResourceLink,
    SessionNotification,
    TextContent,
    ToolCallContent,
    ToolCallId,
    ToolCallProgress,
    ToolCallStart,
    ToolCallStatus,
    UsageUpdate,
    UserMessageChunk,
)
from parley_protocol.parley import ConversationRef, ParleyMeta, UsageDetail, read_parley_meta

Role: TypeAlias = Literal["user", "agent", "thought"]
ToolState: TypeAlias = ToolCallStatus | Literal["cancelled"]
"""ACP's statuses, plus `cancelled` for a call the turn ended without finishing."""

_ROLES: dict[type, Role] = {
    UserMessageChunk: "user",
    AgentMessageChunk: "agent",
    AgentThoughtChunk: "thought",
}
_FINAL: frozenset[ToolState] = frozenset({"completed", "failed", "cancelled"})


def _parley_meta(meta: Meta | None) -> ParleyMeta:
    """`_meta.parley` as far as it can be read: a malformed one says nothing."""
    try:
        return read_parley_meta(meta)
    except msgspec.ValidationError:
        return ParleyMeta()


def block_text(block: ContentBlock) -> str:
    """A content block as text; anything else as a line naming what it holds."""
    match block:
        case TextContent(text=text):
            return text
        case ImageContent(mime_type=mime_type, uri=uri):
            held = f"image {uri or mime_type}"
        case AudioContent(mime_type=mime_type):
            held = f"audio {mime_type}"
        case ResourceLink(name=name, uri=uri):
            held = f"link {name} <{uri}>"
        case EmbeddedResource(resource=resource):
            held = f"file {resource.uri}"
    return f"\n[attached {held}]"


@dataclass
class Message:
    role: Role
    text: str = ""
    # Ids differ between a prompt as sent and as replayed; the text is what counts.
    message_id: str | None = field(default=None, compare=False)


@dataclass
class ToolCall:
    tool_call_id: str
    title: str
    name: str | None = None
    kind: str | None = None
    status: ToolState = "pending"
    content: list[ToolCallContent] = field(default_factory=list)
    raw_input: Any = None
    raw_output: Any = None
    # When this client first and last heard of the call: the live elapsed time.
    seen_at: float = field(default_factory=time.monotonic, compare=False)
    ended_at: float | None = field(default=None, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in _FINAL

    @property
    def duration_ms(self) -> float | None:
        """The daemon's measure when it sent one, else what this client saw."""
        if isinstance(self.raw_output, dict) and isinstance(
            measured := self.raw_output.get("durationMs"), int | float
        ):
            return float(measured)
        if self.ended_at is not None:
            return (self.ended_at - self.seen_at) * 1000
        return None

    @property
    def output(self) -> str | None:
        if isinstance(self.raw_output, dict) and isinstance(
            text := self.raw_output.get("output"), str
        ):
            return text
        return None

    def apply(self, update: ToolCallStart | ToolCallProgress) -> None:
        for name in ("title", "name", "kind", "status"):
            if (value := getattr(update, name)) is not None:
                setattr(self, name, value)
        if update.content is not None:
            self.content = list(update.content)
        if update.raw_input is not msgspec.UNSET:
            self.raw_input = update.raw_input
        if update.raw_output is not msgspec.UNSET:
            self.raw_output = update.raw_output
        if self.finished and self.ended_at is None:
            self.ended_at = time.monotonic()

    def end(self, status: ToolState) -> None:
        self.status = status
        self.ended_at = time.monotonic()


@dataclass(frozen=True)
class Usage:
    used: int
    size: int
    cost: Cost | None
    detail: UsageDetail | None

    @classmethod
    def from_update(cls, update: UsageUpdate) -> Usage:
        detail = _parley_meta(update.meta).usage
        return cls(used=update.used, size=update.size, cost=update.cost, detail=detail)


Entry: TypeAlias = Message | ToolCall


@dataclass(frozen=True)
class Plan:
    """The conversation's plan as its last `plan` update has it: (step, status) pairs."""

    steps: tuple[tuple[str, str], ...]

    def lines(self) -> list[str]:
        done = sum(status == "completed" for _, status in self.steps)
        marks = {"completed": "[x]", "in_progress": "[>]"}
        return [f"[plan] {done} of {len(self.steps)} done"] + [
            f"  {marks.get(status, '[ ]')} {step}" for step, status in self.steps
        ]


@dataclass(frozen=True)
class Change:
    """What one update changed: the conversation, the entry (or usage) in it and, for a
    message, the new text."""

    conversation: Conversation
    item: Entry | Usage | Plan
    new: bool = False
    delta: str = ""


@dataclass(eq=False)
class Conversation:
    """One conversation of a session, folded on its own: messages continue only within
    it, and its tool call ids (which repeat from one conversation to the next) are its own.

    Compared by identity: it is a place in the session, not a value."""

    id: str | None = None
    """The daemon's `ConversationRef.id`; None for the root, which needs no name."""
    depth: int = 0
    """0 for the root, 1 for its sub-agents, 2 for theirs, ..."""
    title: str | None = None
    """A sub-agent's, as its parent's `subagent` call announced it."""
    entries: list[Entry] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)
    plan: Plan | None = None
    children: dict[ToolCallId, Conversation] = field(default_factory=dict)
    """The sub-agents this conversation started, by the tool call that started each."""
    _tools: dict[str, ToolCall] = field(default_factory=dict, repr=False)

    @property
    def is_root(self) -> bool:
        return self.depth == 0

    def fold(self, update: AnySessionUpdate) -> Change | None:
        """Fold in one of this conversation's updates; None for kinds not kept (modes, ...)."""
        match update:
            case UserMessageChunk() | AgentMessageChunk() | AgentThoughtChunk():
                return self.add_text(
                    _ROLES[type(update)], block_text(update.content), update.message_id
                )
            case ToolCallStart() | ToolCallProgress():
                call = self._tools.get(update.tool_call_id)
                new = call is None
                if call is None:
                    call = ToolCall(update.tool_call_id, title=update.title or update.tool_call_id)
                    self._tools[call.tool_call_id] = call
                    self.entries.append(call)
                call.apply(update)
                return Change(self, call, new=new)
            case UsageUpdate():
                usage = Usage.from_update(update)
                self.usages.append(usage)
                return Change(self, usage, new=True)
            case AgentPlanUpdate(entries=entries):
                self.plan = Plan(tuple((entry.content, entry.status) for entry in entries))
                return Change(self, self.plan, new=True)
            case _:
                return None

    def add_text(self, role: Role, text: str, message_id: str | None = None) -> Change:
        """Append to the current message of `role`, or start one. Also how a client
        records the prompt it sent itself, which ACP does not echo back live."""
        last = self.entries[-1] if self.entries else None
        if isinstance(last, Message) and last.role == role and last.message_id == message_id:
            last.text += text
            return Change(self, last, delta=text)
        message = Message(role, text, message_id)
        self.entries.append(message)
        return Change(self, message, new=True, delta=text)

    def unfinished_tools(self) -> list[ToolCall]:
        return [call for call in self._tools.values() if not call.finished]

    def messages(self, role: Role) -> list[Message]:
        return [
            entry for entry in self.entries if isinstance(entry, Message) and entry.role == role
        ]

    def tool_calls(self) -> list[ToolCall]:
        return list(self._tools.values())

    def walk(self) -> Iterator[Conversation]:
        """This conversation, then each sub-agent's subtree in the order they started."""
        yield self
        for child in self.children.values():
            yield from child.walk()


@dataclass(eq=False)
class Transcript(Conversation):
    """A whole session, as its root conversation: it is given every update of the
    session and folds each into the conversation the update names, a sub-agent's
    created the first time it is heard of."""

    counts: Counter[str] = field(default_factory=Counter)
    """Updates received, by their `sessionUpdate` kind, sub-agents' included."""
    _descendants: dict[str, Conversation] = field(default_factory=dict, repr=False)

    def apply(self, notification: SessionNotification) -> Change | None:
        """Fold one update in; None for kinds this transcript does not keep (plans, ...)."""
        update = notification.update
        self.counts[type(update).__struct_config__.tag] += 1  # type: ignore[index]
        meta = _parley_meta(update.meta)
        # The conversation first: a sub-agent's announcement may be the first its parent says.
        conversation = self._conversation(meta.conversation)
        if meta.subagent is not None:
            self._conversation(meta.subagent.conversation).title = meta.subagent.title
        return conversation.fold(update)

    def conversation_of(self, meta: Meta | None) -> Conversation:
        """The conversation a message's `_meta.parley.conversation` names (the root if none)."""
        return self._conversation(_parley_meta(meta).conversation)

    def _conversation(self, ref: ConversationRef | None) -> Conversation:
        if ref is None or ref.parent is None:
            return self
        known = self._descendants.get(ref.id)
        if known is None:
            # A parent not heard of cannot be drawn under: the root takes its child.
            parent = self._descendants.get(ref.parent, self)
            known = Conversation(id=ref.id, depth=ref.depth)
            parent.children[ref.parent_tool_call or ref.id] = known
            self._descendants[ref.id] = known
        return known


@dataclass(frozen=True)
class KindComparison:
    kind: str
    live: int
    replayed: int
    same: bool
    """Whether what this kind carries (text, final tool state, figures) is identical."""


def compare_replay(live: Transcript, replayed: Transcript) -> list[KindComparison]:
    """Per update kind: how many came live and replayed, and whether they say the same,
    conversation by conversation.

    Counts may differ by design: a client's own prompt is not echoed live (record it
    with `add_text("user", ...)`), a replay sends each tool call's final state
    rather than every intermediate step, and of the usage figures only each turn's
    final ones (`turnEnded`).
    """
    carried: dict[str, Callable[[Conversation], object]] = {
        "user_message_chunk": lambda c: c.messages("user"),
        "agent_thought_chunk": lambda c: c.messages("thought"),
        "agent_message_chunk": lambda c: c.messages("agent"),
        "tool_call": lambda c: [(t.tool_call_id, t.title, t.kind) for t in c.tool_calls()],
        "tool_call_update": Conversation.tool_calls,
        "usage_update": lambda c: [u for u in c.usages if u.detail and u.detail.turn_ended],
    }

    def said(transcript: Transcript, kind: str) -> dict[str | None, object]:
        return {c.id: carried[kind](c) for c in transcript.walk()}

    # What the agent says of the session rather than of its conversation: told
    # on every open, and no part of a replay.
    about_the_session = {"available_commands_update"}
    kinds = list(carried) + sorted(
        (live.counts | replayed.counts).keys() - carried.keys() - about_the_session
    )
    return [
        KindComparison(
            kind=kind,
            live=live.counts[kind],
            replayed=replayed.counts[kind],
            same=said(live, kind) == said(replayed, kind)
            if kind in carried
            else live.counts[kind] == replayed.counts[kind],
        )
        for kind in kinds
    ]
