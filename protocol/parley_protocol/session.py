"""Sessions: setup, listing, prompt turns, cancellation, and `session/update`."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

import msgspec

from ._base import (
    AcpRequestId,
    AcpStruct,
    CompactionId,
    MessageId,
    Meta,
    SessionId,
    SessionModeId,
    ToolCallId,
    UInt64,
)
from .content import ContentBlock
from .tool_calls import (
    ToolCallContent,
    ToolCallLocation,
    ToolCallStatus,
    ToolCallUpdate,
    ToolKind,
)

StopReason: TypeAlias = Literal[
    "end_turn", "max_tokens", "max_turn_requests", "refusal", "cancelled"
]

McpServer: TypeAlias = dict[str, Any]
"""An MCP server description (stdio / http / sse), accepted as-is.

Parley does not connect to MCP servers yet, so they are kept as plain dicts
rather than typed (the stdio variant is untagged, which msgspec cannot mix
with the tagged `http` / `sse` variants anyway).
"""

SessionConfigOption: TypeAlias = dict[str, Any]
"""A session config option, kept loose: Parley offers none yet (its `options`
field is an untagged union of two array shapes msgspec cannot express)."""


# -- modes -------------------------------------------------------------------


class SessionMode(AcpStruct):
    id: SessionModeId
    name: str
    description: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionModeState(AcpStruct):
    current_mode_id: SessionModeId
    available_modes: list[SessionMode]
    meta: Meta | None = msgspec.field(default=None, name="_meta")


# -- session/new, session/load, session/list ---------------------------------


class NewSessionRequest(AcpStruct):
    cwd: str
    mcp_servers: list[McpServer] = msgspec.field(default_factory=list)
    additional_directories: list[str] | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class NewSessionResponse(AcpStruct):
    session_id: SessionId
    modes: SessionModeState | None = None
    config_options: list[SessionConfigOption] | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class LoadSessionRequest(AcpStruct):
    session_id: SessionId
    cwd: str
    mcp_servers: list[McpServer] = msgspec.field(default_factory=list)
    additional_directories: list[str] | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class LoadSessionResponse(AcpStruct):
    modes: SessionModeState | None = None
    config_options: list[SessionConfigOption] | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ListSessionsRequest(AcpStruct):
    cwd: str | None = None
    cursor: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionInfo(AcpStruct):
    session_id: SessionId
    cwd: str
    title: str | None = None
    updated_at: str | None = None
    """ISO 8601 timestamp of the last activity."""
    additional_directories: list[str] | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ListSessionsResponse(AcpStruct):
    sessions: list[SessionInfo]
    next_cursor: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


# -- session/prompt and cancellation -----------------------------------------


class PromptRequest(AcpStruct):
    session_id: SessionId
    prompt: list[ContentBlock]
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class PromptResponse(AcpStruct):
    stop_reason: StopReason
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CancelNotification(AcpStruct):
    """`session/cancel` params: cancel the session's running prompt turn."""

    session_id: SessionId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CancelRequestNotification(AcpStruct):
    """`$/cancel_request` params: cancel one request by id (`null` allowed by ACP)."""

    request_id: AcpRequestId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class LspCancelParams(AcpStruct):
    """LSP's `$/cancelRequest` params, which pygls-style clients send."""

    id: int | str


# -- session/update ----------------------------------------------------------


class ContentChunk(AcpStruct):
    """Fields shared by the three message-chunk updates."""

    content: ContentBlock
    message_id: MessageId | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class UserMessageChunk(ContentChunk, tag_field="sessionUpdate", tag="user_message_chunk"):
    pass


class AgentMessageChunk(ContentChunk, tag_field="sessionUpdate", tag="agent_message_chunk"):
    pass


class AgentThoughtChunk(ContentChunk, tag_field="sessionUpdate", tag="agent_thought_chunk"):
    pass


class ToolCallStart(AcpStruct, tag_field="sessionUpdate", tag="tool_call"):
    """ACP's ToolCall, announced as the `tool_call` update."""

    tool_call_id: ToolCallId
    title: str
    name: str | None = None
    kind: ToolKind | None = None
    status: ToolCallStatus | None = None
    content: list[ToolCallContent] | None = None
    locations: list[ToolCallLocation] | None = None
    raw_input: Any = msgspec.UNSET
    raw_output: Any = msgspec.UNSET
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ToolCallProgress(ToolCallUpdate, tag_field="sessionUpdate", tag="tool_call_update"):
    """ACP's ToolCallUpdate as the `tool_call_update` update: only changed fields."""


PlanEntryPriority: TypeAlias = Literal["high", "medium", "low"]
PlanEntryStatus: TypeAlias = Literal["pending", "in_progress", "completed"]


class PlanEntry(AcpStruct):
    content: str
    priority: PlanEntryPriority
    status: PlanEntryStatus
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class AgentPlanUpdate(AcpStruct, tag_field="sessionUpdate", tag="plan"):
    """ACP's Plan: the complete list of entries, replacing any previous plan."""

    entries: list[PlanEntry]
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class UnstructuredCommandInput(AcpStruct):
    hint: str
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class AvailableCommand(AcpStruct):
    name: str
    description: str
    input: UnstructuredCommandInput | None = None
    """ACP's AvailableCommandInput, whose only variant is unstructured."""
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class AvailableCommandsUpdate(
    AcpStruct, tag_field="sessionUpdate", tag="available_commands_update"
):
    available_commands: list[AvailableCommand]
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CurrentModeUpdate(AcpStruct, tag_field="sessionUpdate", tag="current_mode_update"):
    current_mode_id: SessionModeId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ConfigOptionUpdate(AcpStruct, tag_field="sessionUpdate", tag="config_option_update"):
    config_options: list[SessionConfigOption]
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionInfoUpdate(AcpStruct, tag_field="sessionUpdate", tag="session_info_update"):
    title: str | None = None
    updated_at: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class Cost(AcpStruct):
    amount: float
    currency: str
    """ISO 4217 code, e.g. "USD"."""
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class UsageUpdate(AcpStruct, tag_field="sessionUpdate", tag="usage_update"):
    """Context window use (tokens) and cumulative session cost.

    Parley's per-turn / per-session token breakdown rides in
    `meta["parley"]["usage"]` (see `parley_protocol.parley.UsageDetail`).
    """

    used: UInt64
    size: UInt64
    cost: Cost | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


NoticeSeverity: TypeAlias = str
"""Open enumeration: "info", "warning", "error", or a future value (kept as str,
since msgspec cannot union a Literal with str)."""
NOTICE_SEVERITIES: tuple[str, ...] = ("info", "warning", "error")


class Notice(AcpStruct, tag_field="sessionUpdate", tag="notice"):
    """A user-facing notice (retry, slow provider, ...); only to clients that
    advertise `clientCapabilities.session.notices`."""

    severity: NoticeSeverity
    title: Annotated[str, msgspec.Meta(min_length=1)]
    description: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


CompactionStatus: TypeAlias = str
"""Open enumeration: "in_progress", "completed", "failed", "cancelled", or a
future value."""
COMPACTION_STATUSES: tuple[str, ...] = ("in_progress", "completed", "failed", "cancelled")


class CompactionUpdate(AcpStruct, tag_field="sessionUpdate", tag="compaction_update"):
    """Compaction lifecycle; only to clients that advertise
    `clientCapabilities.session.compaction`."""

    compaction_id: CompactionId
    status: CompactionStatus
    summary: list[ContentBlock] | None = None
    error: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CompactionSummaryChunk(AcpStruct, tag_field="sessionUpdate", tag="compaction_summary_chunk"):
    compaction_id: CompactionId
    content: ContentBlock
    meta: Meta | None = msgspec.field(default=None, name="_meta")


SessionUpdate: TypeAlias = (
    UserMessageChunk
    | AgentMessageChunk
    | AgentThoughtChunk
    | ToolCallStart
    | ToolCallProgress
    | AgentPlanUpdate
    | AvailableCommandsUpdate
    | CurrentModeUpdate
    | ConfigOptionUpdate
    | SessionInfoUpdate
    | UsageUpdate
    | Notice
    | CompactionUpdate
    | CompactionSummaryChunk
)
"""ACP's SessionUpdate, tagged by `sessionUpdate` (every variant of the stable schema)."""


class SessionNotification(AcpStruct):
    """`session/update` params (agent -> client)."""

    session_id: SessionId
    update: SessionUpdate
    meta: Meta | None = msgspec.field(default=None, name="_meta")


__all__ = [
    "COMPACTION_STATUSES",
    "NOTICE_SEVERITIES",
    "AgentMessageChunk",
    "AgentPlanUpdate",
    "AgentThoughtChunk",
    "AvailableCommand",
    "AvailableCommandsUpdate",
    "CancelNotification",
    "CancelRequestNotification",
    "CompactionStatus",
    "CompactionSummaryChunk",
    "CompactionUpdate",
    "ConfigOptionUpdate",
    "ContentChunk",
    "Cost",
    "CurrentModeUpdate",
    "ListSessionsRequest",
    "ListSessionsResponse",
    "LoadSessionRequest",
    "LoadSessionResponse",
    "LspCancelParams",
    "McpServer",
    "NewSessionRequest",
    "NewSessionResponse",
    "Notice",
    "NoticeSeverity",
    "PlanEntry",
    "PlanEntryPriority",
    "PlanEntryStatus",
    "PromptRequest",
    "PromptResponse",
    "SessionConfigOption",
    "SessionInfo",
    "SessionInfoUpdate",
    "SessionMode",
    "SessionModeState",
    "SessionNotification",
    "SessionUpdate",
    "StopReason",
    "ToolCallProgress",
    "ToolCallStart",
    "UnstructuredCommandInput",
    "UsageUpdate",
    "UserMessageChunk",
]
