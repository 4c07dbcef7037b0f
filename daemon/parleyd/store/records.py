"""The lines of a session's `log.jsonl`: one Struct per record type.

Every line carries `seq` (its position in the log), `conv` (the conversation it
belongs to: the session's root conversation has an id like any other, so
sub-conversations need no new format) and `ts`. A conversation's `conversation`
record is written before any record of its own or of its children.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from parleyd.providers.messages import AssistantMessage, ToolResultMessage

FORMAT_VERSION = 1


class Record(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    seq: int = 0
    conv: str = ""
    ts: float = 0.0


class SessionStarted(Record, tag="session"):
    session_id: str
    cwd: str
    settings: dict[str, Any]
    version: int = FORMAT_VERSION


class ConversationStarted(Record, tag="conversation"):
    parent: str | None = None
    parent_tool_call: str | None = None
    depth: int = 0
    title: str | None = None


class TitleSet(Record, tag="title"):
    title: str


class UserTurn(Record, tag="user"):
    """`text` is what the model reads; `content` the ACP blocks as the client sent them."""

    text: str
    content: list[dict[str, Any]]
    message_id: str


ChunkKind = Literal["text", "thought"]


class ToolCallView(msgspec.Struct, frozen=True):
    """How a tool call was shown to the client, kept for faithful replay."""

    call_id: str
    title: str
    kind: str


class AssistantTurn(Record, tag="assistant"):
    """One model response. `chunks` are the streamed pieces in order, so a
    loaded session replays them exactly as they streamed."""

    message: AssistantMessage
    chunks: list[tuple[ChunkKind, str]]
    message_id: str
    model: str
    tool_views: list[ToolCallView] = []
    interrupted: bool = False


ToolStatus = Literal["completed", "failed", "cancelled"]


class ToolOutcome(Record, tag="tool_result"):
    call_id: str
    name: str
    status: ToolStatus
    output: str
    content: list[dict[str, Any]] = []
    locations: list[str] = []
    duration_ms: float = 0.0
    # Whether the tool started (a declined call never does), and the partial
    # output it streamed while running, for a faithful replay.
    ran: bool = False
    progress: list[str] = []

    def message(self) -> ToolResultMessage:
        """The result as the model reads it."""
        return ToolResultMessage(
            call_id=self.call_id,
            name=self.name,
            content=self.output,
            is_error=self.status != "completed",
        )


class UsageRecorded(Record, tag="usage"):
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float | None = None
    context_used: int = 0
    context_size: int = 0


class TurnEnded(Record, tag="turn_end"):
    stop_reason: str
    error: str | None = None


AnyRecord = (
    SessionStarted
    | ConversationStarted
    | TitleSet
    | UserTurn
    | AssistantTurn
    | ToolOutcome
    | UsageRecorded
    | TurnEnded
)
