"""Sessions: setup, modes, listing, resuming, closing, deleting, archiving, titles
and forks, prompt turns, cancellation, and `session/update`."""

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
"""An MCP server description (stdio / http / sse), kept as the client sent it:
the stdio variant is untagged, which msgspec cannot mix with the tagged `http`
/ `sse` variants. `mcp_servers.decode_mcp_server` types it."""

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


class SetSessionModeRequest(AcpStruct):
    """`session/set_mode`: switch to one of the modes the session offered."""

    session_id: SessionId
    mode_id: SessionModeId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SetSessionModeResponse(AcpStruct):
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


SessionArchiveFilter: TypeAlias = str
"""Open enumeration (unstable): "exclude" (the default), "include", "only", or a
future value, which an agent that does not know it refuses with -32602."""
SESSION_ARCHIVE_FILTERS: tuple[str, ...] = ("exclude", "include", "only")


class ListSessionsRequest(AcpStruct):
    cwd: str | None = None
    cursor: str | None = None
    archived: SessionArchiveFilter | None = None
    """Unstable, behind `sessionCapabilities.archive`; None means "exclude"."""
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionInfo(AcpStruct):
    session_id: SessionId
    cwd: str
    title: str | None = None
    updated_at: str | None = None
    """ISO 8601 timestamp of the last activity."""
    additional_directories: list[str] | None = None
    archived: bool | None = None
    """Unstable: on every listed session once `sessionCapabilities.archive` is advertised."""
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ListSessionsResponse(AcpStruct):
    sessions: list[SessionInfo]
    next_cursor: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


# -- session/resume, session/close, session/delete ----------------------------


class ResumeSessionRequest(AcpStruct):
    """`session/load` without the replay: the client already has the history."""

    session_id: SessionId
    cwd: str
    mcp_servers: list[McpServer] = msgspec.field(default_factory=list)
    additional_directories: list[str] | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ResumeSessionResponse(AcpStruct):
    modes: SessionModeState | None = None
    config_options: list[SessionConfigOption] | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CloseSessionRequest(AcpStruct):
    """Cancel the session's work (as `session/cancel` does) and free it."""

    session_id: SessionId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CloseSessionResponse(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class DeleteSessionRequest(AcpStruct):
    """Remove the session from `session/list`; an unknown id succeeds too."""

    session_id: SessionId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class DeleteSessionResponse(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


# -- unstable: session/status, session/archive, session/unarchive, session/set_title


SessionStatus: TypeAlias = str
"""Open enumeration: "open" (the agent has the session in memory), "saved" (it
can load or resume it), or a future value, which clients read as "saved"."""
SESSION_STATUSES: tuple[str, ...] = ("open", "saved")


class SessionStatusRequest(AcpStruct):
    """Whether the agent has the session in memory; changes nothing."""

    session_id: SessionId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionStatusResponse(AcpStruct):
    status: SessionStatus
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ArchiveSessionRequest(AcpStruct):
    """Hide the session from default listings, closing it first if it is open."""

    session_id: SessionId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ArchiveSessionResponse(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class UnarchiveSessionRequest(AcpStruct):
    """List the session by default again; it is not loaded."""

    session_id: SessionId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class UnarchiveSessionResponse(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SetSessionTitleRequest(AcpStruct):
    session_id: SessionId
    title: str
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SetSessionTitleResponse(AcpStruct):
    title: str
    """The title as stored, after the agent normalized it."""
    meta: Meta | None = msgspec.field(default=None, name="_meta")


SystemPrompt: TypeAlias = dict[str, Any]
"""Client-given system instructions (unstable), kept loose: Parley does not
advertise `sessionCapabilities.systemPrompt`, so it refuses one."""


class ForkSessionRequest(AcpStruct):
    """`session/fork` (unstable): a new session with this one's history, which
    goes on unchanged. Takes what `session/load` takes."""

    session_id: SessionId
    cwd: str
    mcp_servers: list[McpServer] = msgspec.field(default_factory=list)
    additional_directories: list[str] | None = None
    system_prompt: SystemPrompt | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ForkSessionResponse(AcpStruct):
    session_id: SessionId
    """The fork's id."""
    modes: SessionModeState | None = None
    config_options: list[SessionConfigOption] | None = None
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


# -- sub-conversations (unstable: only to clients that advertise `subagents`) --------


class Usage(AcpStruct):
    """Token usage of completed work (unstable)."""

    total_tokens: UInt64
    input_tokens: UInt64
    output_tokens: UInt64
    thought_tokens: UInt64 | None = None
    cached_read_tokens: UInt64 | None = None
    cached_write_tokens: UInt64 | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class RunningState(AcpStruct, tag_field="state", tag="running"):
    """A child's foreground work is in progress."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class IdleState(AcpStruct, tag_field="state", tag="idle"):
    """A child is ready for more work. `stop_reason` None: not reported."""

    stop_reason: str | None = None
    error: dict[str, Any] | None = None
    """With stop reason "error": the failure as a JSON-RPC error object."""
    usage: Usage | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class RequiresActionState(AcpStruct, tag_field="state", tag="requires_action"):
    """A child's work waits for the user (a permission question)."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


SubagentState: TypeAlias = RunningState | IdleState | RequiresActionState


class SessionCancelCapabilities(AcpStruct):
    """`{}`: the client may cancel this child's work without ending the session."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SubagentSessionCapabilities(AcpStruct):
    cancel: SessionCancelCapabilities | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SubagentUpdate(AcpStruct, tag_field="sessionUpdate", tag="subagent_update"):
    """On the immediate parent session: the child session `session_id` exists
    (the first one announces it, before any of its traffic) or changed. Omitted
    fields keep their previous values."""

    session_id: SessionId
    title: str | None = None
    description: str | None = None
    capabilities: SubagentSessionCapabilities | None = None
    state: SubagentState | None = None
    cwd: str | None = None
    additional_directories: list[str] | None = None
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

AnySessionUpdate: TypeAlias = SessionUpdate | SubagentUpdate
"""A stable update, or an unstable one sent only to clients that advertise it."""


class SessionNotification(AcpStruct):
    """`session/update` params (agent -> client)."""

    session_id: SessionId
    update: AnySessionUpdate
    meta: Meta | None = msgspec.field(default=None, name="_meta")


__all__ = [
    "COMPACTION_STATUSES",
    "NOTICE_SEVERITIES",
    "SESSION_ARCHIVE_FILTERS",
    "SESSION_STATUSES",
    "AgentMessageChunk",
    "AgentPlanUpdate",
    "AgentThoughtChunk",
    "AnySessionUpdate",
    "ArchiveSessionRequest",
    "ArchiveSessionResponse",
    "AvailableCommand",
    "AvailableCommandsUpdate",
    "CancelNotification",
    "CancelRequestNotification",
    "CloseSessionRequest",
    "CloseSessionResponse",
    "CompactionStatus",
    "CompactionSummaryChunk",
    "CompactionUpdate",
    "ConfigOptionUpdate",
    "ContentChunk",
    "Cost",
    "CurrentModeUpdate",
    "DeleteSessionRequest",
    "DeleteSessionResponse",
    "ForkSessionRequest",
    "ForkSessionResponse",
    "IdleState",
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
    "RequiresActionState",
    "ResumeSessionRequest",
    "ResumeSessionResponse",
    "RunningState",
    "SessionArchiveFilter",
    "SessionCancelCapabilities",
    "SessionConfigOption",
    "SessionInfo",
    "SessionInfoUpdate",
    "SessionMode",
    "SessionModeState",
    "SessionNotification",
    "SessionStatus",
    "SessionStatusRequest",
    "SessionStatusResponse",
    "SessionUpdate",
    "SetSessionModeRequest",
    "SetSessionModeResponse",
    "SetSessionTitleRequest",
    "SetSessionTitleResponse",
    "StopReason",
    "SubagentSessionCapabilities",
    "SubagentState",
    "SubagentUpdate",
    "SystemPrompt",
    "ToolCallProgress",
    "ToolCallStart",
    "UnarchiveSessionRequest",
    "UnarchiveSessionResponse",
    "UnstructuredCommandInput",
    "Usage",
    "UsageUpdate",
    "UserMessageChunk",
]
