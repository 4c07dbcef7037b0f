"""Sessions written straight into a PARLEY_HOME as the daemon writes them: every
record through `SessionLog.append`, and the index told of each session as
`session/new` and a prompt tell it, so a daemon started on that home reads no
log until `session/load`.

A stored response keeps its parts, not its deltas: a response of n deltas is a
text part of n words, as n word-sized deltas streamed would have left it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from parleyd.config import Settings
from parleyd.providers.messages import AssistantMessage, Part, TextPart, ToolCall
from parleyd.session.conversation import new_id
from parleyd.session.updates import display_content
from parleyd.store.index import SessionIndex
from parleyd.store.log import SessionLog
from parleyd.store.records import (
    AssistantResponse,
    ConversationStarted,
    Record,
    SessionStarted,
    TitleSet,
    ToolCallView,
    ToolOutcome,
    TurnEnded,
    TurnStarted,
    UsageRecorded,
    UserTurn,
)
from parleyd.tools.base import ToolResult

DELTA = "word "
MODEL = "bench-model"
# What a daemon on the offline model stores with each session it creates.
STORED_SETTINGS = Settings(provider="offline").public()
CHILD_DELTAS = 40
# Short enough to be its session's title as it stands, as `Session` titles a session.
PROMPT = "Look at src/handler.py and tell me what it does."
# A few hundred characters: the file excerpt a read_file call typically returns.
TOOL_OUTPUT = "def handler(request):\n    return respond(request.body)\n" * 6


@dataclass(frozen=True)
class Shape:
    """A root conversation of `turns` prompt turns of `responses` model responses
    each, every response `deltas_per_response` deltas long. Every response but a
    turn's last calls a tool; in the first `children` turns, the first of those
    calls is a `subagent` call that runs a child conversation of one turn."""

    turns: int
    responses: int
    deltas_per_response: int
    children: int = 0

    def __post_init__(self) -> None:
        if self.turns < 1 or self.responses < 1:
            raise ValueError("a stored session has at least one turn with a response")
        if self.children > self.turns or (self.children and self.responses < 2):
            raise ValueError("each child needs a turn with a tool call of its own")

    @property
    def deltas(self) -> int:
        return self.turns * self.responses * self.deltas_per_response

    def describe(self) -> str:
        responses = self.turns * self.responses
        children = f", {self.children} children" if self.children else ""
        return f"{self.deltas:,} deltas in {responses:,} responses{children}"


ONE_TURN = Shape(turns=1, responses=1, deltas_per_response=20)


def response(deltas: int, call: ToolCall | None = None) -> AssistantResponse:
    """A model response of `deltas` word-sized deltas, then the call it makes, if any."""
    parts: list[Part] = [TextPart(DELTA * deltas)]
    views: list[ToolCallView] = []
    if call is not None:
        parts.append(call)
        views.append(_view(call))
    return AssistantResponse(
        message=AssistantMessage(parts=tuple(parts)),
        message_id=new_id("msg"),
        model=MODEL,
        tool_views=views,
    )


def _view(call: ToolCall) -> ToolCallView:
    """How the tool showed the call: its title and kind."""
    if call.name == "subagent":
        return ToolCallView(call_id=call.id, title="Sub-agent: Review", kind="think")
    return ToolCallView(call_id=call.id, title="Read src/handler.py", kind="read")


def read_call() -> ToolCall:
    arguments = msgspec.json.encode({"path": "src/handler.py"}).decode()
    return ToolCall(id=new_id("call"), name="read_file", arguments=arguments)


def outcome(call: ToolCall) -> ToolOutcome:
    """The call's result, stored as a finished built-in tool's is."""
    return ToolOutcome(
        call_id=call.id,
        name=call.name,
        status="completed",
        output=TOOL_OUTPUT,
        content=display_content(ToolResult(output=TOOL_OUTPUT)),
        duration_ms=1.5,
        ran=True,
    )


def _usage(output_tokens: int) -> UsageRecorded:
    return UsageRecorded(
        model=MODEL,
        input_tokens=2_000,
        output_tokens=output_tokens,
        context_used=2_000 + output_tokens,
        context_size=128_000,
    )


def _user(text: str) -> UserTurn:
    return UserTurn(text=text, content=[{"type": "text", "text": text}], message_id=new_id("msg"))


class _Writer:
    """One session's open log, appending as `Session.record` does."""

    def __init__(self, log: SessionLog, index: SessionIndex, session_id: str) -> None:
        self.log = log
        self.index = index
        self.session_id = session_id

    def add(self, record: Record, conversation: str, turn: str | None) -> None:
        record.turn = turn
        self.log.append(record, conversation)

    def start_conversation(self, started: ConversationStarted, conversation: str) -> None:
        self.add(started, conversation, None)
        self.index.add_conversation(self.session_id, started)

    def turn(self, root: str, shape: Shape, with_child: bool, title: str | None) -> None:
        turn = new_id("turn")
        self.add(TurnStarted(), root, turn)
        self.add(_user(PROMPT), root, turn)
        if title is not None:
            self.add(TitleSet(title=title), root, turn)
        for number in range(shape.responses):
            call = None
            if number < shape.responses - 1:
                call = _subagent_call() if with_child and number == 0 else read_call()
            self.add(response(shape.deltas_per_response, call), root, turn)
            self.add(_usage(shape.deltas_per_response), root, turn)
            if call is not None:
                if call.name == "subagent":
                    self.child(root, call)
                self.add(outcome(call), root, turn)
        self.add(TurnEnded(stop_reason="end_turn"), root, turn)

    def child(self, parent: str, call: ToolCall) -> None:
        child, turn = new_id("conv"), new_id("turn")
        started = ConversationStarted(
            parent=parent, parent_tool_call=call.id, depth=1, title="Review the handler"
        )
        self.start_conversation(started, child)
        self.add(TurnStarted(), child, turn)
        self.add(_user("Review src/handler.py for error handling."), child, turn)
        self.add(response(CHILD_DELTAS), child, turn)
        self.add(_usage(CHILD_DELTAS), child, turn)
        self.add(TurnEnded(stop_reason="end_turn"), child, turn)


def _subagent_call() -> ToolCall:
    arguments = {"task": "Review src/handler.py for error handling.", "title": "Review"}
    return ToolCall(
        id=new_id("call"), name="subagent", arguments=msgspec.json.encode(arguments).decode()
    )


def write_session(index: SessionIndex, cwd: Path, shape: Shape) -> str:
    """A listed session of `shape` in the index's home; its id."""
    session_id, root = new_id("sess"), new_id("conv")
    log, _ = SessionLog.open(index.sessions_dir / session_id)
    try:
        started = SessionStarted(session_id=session_id, cwd=str(cwd), settings=STORED_SETTINGS)
        log.append(started, root)
        index.add_session(started)
        writer = _Writer(log, index, session_id)
        writer.start_conversation(ConversationStarted(), root)
        for number in range(shape.turns):
            title = PROMPT if number == 0 else None
            writer.turn(root, shape, with_child=number < shape.children, title=title)
    finally:
        log.close()
    index.touch(session_id, time.time(), PROMPT)
    return session_id


def write_sessions(home: Path, cwd: Path, shape: Shape, count: int) -> list[str]:
    """`count` sessions of `shape` in `home`, and the index that lists them."""
    index = SessionIndex(home)
    try:
        return [write_session(index, cwd, shape) for _ in range(count)]
    finally:
        index.close()
