"""Tool calls: their content, locations, updates, and permission requests.

`rawInput` / `rawOutput` are arbitrary JSON, where `null` is a value a tool may
really produce, so they default to `msgspec.UNSET` (omitted) rather than
`None`: `None` means JSON `null` and is sent as such.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec
from msgspec import UNSET

from ._base import AcpStruct, Meta, PermissionOptionId, SessionId, TerminalId, ToolCallId, UInt32
from .content import ContentBlock

ToolKind: TypeAlias = Literal[
    "read", "edit", "delete", "move", "search", "execute", "think", "fetch", "switch_mode", "other"
]
ToolCallStatus: TypeAlias = Literal["pending", "in_progress", "completed", "failed"]
PermissionOptionKind: TypeAlias = Literal[
    "allow_once", "allow_always", "reject_once", "reject_always"
]


class ToolCallLocation(AcpStruct):
    path: str
    line: UInt32 | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ContentToolCallContent(AcpStruct, tag_field="type", tag="content"):
    """ACP's `Content` tool call content: a regular content block."""

    content: ContentBlock
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class FileEditToolCallContent(AcpStruct, tag_field="type", tag="diff"):
    """ACP's `Diff`: a file modification; `old_text` None means a new file."""

    path: str
    new_text: str
    old_text: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class TerminalToolCallContent(AcpStruct, tag_field="type", tag="terminal"):
    """ACP's `Terminal`: embeds a client terminal by id."""

    terminal_id: TerminalId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


ToolCallContent: TypeAlias = (
    ContentToolCallContent | FileEditToolCallContent | TerminalToolCallContent
)
"""ACP's ToolCallContent, tagged by `type`."""


class ToolCallUpdate(AcpStruct):
    """ACP's ToolCallUpdate without a tag: only `tool_call_id` is required.

    Used as `RequestPermissionRequest.tool_call`; the `tool_call_update`
    session update is its tagged subclass `ToolCallProgress`.
    """

    tool_call_id: ToolCallId
    title: str | None = None
    name: str | None = None
    kind: ToolKind | None = None
    status: ToolCallStatus | None = None
    content: list[ToolCallContent] | None = None
    locations: list[ToolCallLocation] | None = None
    raw_input: Any = UNSET
    raw_output: Any = UNSET
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class PermissionOption(AcpStruct):
    option_id: PermissionOptionId
    name: str
    kind: PermissionOptionKind
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class RequestPermissionRequest(AcpStruct):
    """`session/request_permission` params (agent -> client)."""

    session_id: SessionId
    tool_call: ToolCallUpdate
    options: list[PermissionOption]
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class DeniedOutcome(AcpStruct, tag_field="outcome", tag="cancelled"):
    """The prompt turn was cancelled before the user chose (schema: no other fields)."""


class AllowedOutcome(AcpStruct, tag_field="outcome", tag="selected"):
    """The user chose one of the options (ACP's SelectedPermissionOutcome)."""

    option_id: PermissionOptionId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


RequestPermissionOutcome: TypeAlias = DeniedOutcome | AllowedOutcome


class RequestPermissionResponse(AcpStruct):
    outcome: RequestPermissionOutcome
    meta: Meta | None = msgspec.field(default=None, name="_meta")


__all__ = [
    "AllowedOutcome",
    "ContentToolCallContent",
    "DeniedOutcome",
    "FileEditToolCallContent",
    "PermissionOption",
    "PermissionOptionKind",
    "RequestPermissionOutcome",
    "RequestPermissionRequest",
    "RequestPermissionResponse",
    "TerminalToolCallContent",
    "ToolCallContent",
    "ToolCallLocation",
    "ToolCallStatus",
    "ToolCallUpdate",
    "ToolKind",
]
