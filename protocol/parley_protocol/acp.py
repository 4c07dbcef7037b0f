"""ACP v1 wire types, in one namespace.

The Structs live in `content`, `initialize`, `tool_calls` and `session`; this
module re-exports them and names the methods Parley serves and calls, with the
params / result type of each.

Decode incoming params with `msgspec.convert(params, Type)` or
`msgspec.json.decode(raw, type=Type)`; encode with `msgspec.json.encode`.
Unknown fields are ignored on decode, so newer clients keep working.
"""

from __future__ import annotations

from typing import Final

import msgspec

from ._base import (
    AcpRequestId,
    AcpStruct,
    CompactionId,
    MessageId,
    Meta,
    PermissionOptionId,
    ProtocolVersion,
    SessionId,
    SessionModeId,
    TerminalId,
    ToolCallId,
)
from .content import *  # noqa: F403
from .content import __all__ as _content_all
from .fs import *  # noqa: F403
from .fs import (
    ReadTextFileRequest,
    ReadTextFileResponse,
    WriteTextFileRequest,
    WriteTextFileResponse,
)
from .fs import __all__ as _fs_all
from .initialize import *  # noqa: F403
from .initialize import InitializeRequest, InitializeResponse
from .initialize import __all__ as _initialize_all
from .mcp_servers import *  # noqa: F403
from .mcp_servers import __all__ as _mcp_servers_all
from .session import *  # noqa: F403
from .session import (
    ArchiveSessionRequest,
    ArchiveSessionResponse,
    CancelNotification,
    CancelRequestNotification,
    CloseSessionRequest,
    CloseSessionResponse,
    DeleteSessionRequest,
    DeleteSessionResponse,
    ForkSessionRequest,
    ForkSessionResponse,
    ListSessionsRequest,
    ListSessionsResponse,
    LoadSessionRequest,
    LoadSessionResponse,
    LspCancelParams,
    NewSessionRequest,
    NewSessionResponse,
    PromptRequest,
    PromptResponse,
    ResumeSessionRequest,
    ResumeSessionResponse,
    SessionNotification,
    SessionStatusRequest,
    SessionStatusResponse,
    SetSessionModeRequest,
    SetSessionModeResponse,
    SetSessionTitleRequest,
    SetSessionTitleResponse,
    UnarchiveSessionRequest,
    UnarchiveSessionResponse,
)
from .session import __all__ as _session_all
from .terminal import *  # noqa: F403
from .terminal import (
    CreateTerminalRequest,
    CreateTerminalResponse,
    TerminalOutputResponse,
    TerminalRequest,
    TerminalResponse,
    WaitForTerminalExitResponse,
)
from .terminal import __all__ as _terminal_all
from .tool_calls import *  # noqa: F403
from .tool_calls import RequestPermissionRequest, RequestPermissionResponse
from .tool_calls import __all__ as _tool_calls_all

# -- method names --------------------------------------------------------------

INITIALIZE: Final = "initialize"
SESSION_NEW: Final = "session/new"
SESSION_LOAD: Final = "session/load"
SESSION_LIST: Final = "session/list"
SESSION_RESUME: Final = "session/resume"
SESSION_CLOSE: Final = "session/close"
SESSION_DELETE: Final = "session/delete"
SESSION_SET_MODE: Final = "session/set_mode"
# Unstable, each behind the `sessionCapabilities` entry the unstable schema gives it.
SESSION_STATUS: Final = "session/status"
SESSION_ARCHIVE: Final = "session/archive"
SESSION_UNARCHIVE: Final = "session/unarchive"
SESSION_SET_TITLE: Final = "session/set_title"
SESSION_FORK: Final = "session/fork"
SESSION_PROMPT: Final = "session/prompt"
SESSION_CANCEL: Final = "session/cancel"
SESSION_UPDATE: Final = "session/update"
SESSION_REQUEST_PERMISSION: Final = "session/request_permission"
FS_READ_TEXT_FILE: Final = "fs/read_text_file"
FS_WRITE_TEXT_FILE: Final = "fs/write_text_file"
TERMINAL_CREATE: Final = "terminal/create"
TERMINAL_OUTPUT: Final = "terminal/output"
TERMINAL_WAIT_FOR_EXIT: Final = "terminal/wait_for_exit"
TERMINAL_KILL: Final = "terminal/kill"
TERMINAL_RELEASE: Final = "terminal/release"
CANCEL_REQUEST: Final = "$/cancel_request"
LSP_CANCEL_REQUEST: Final = "$/cancelRequest"

AGENT_REQUESTS: Final[dict[str, tuple[type[msgspec.Struct], type[msgspec.Struct]]]] = {
    INITIALIZE: (InitializeRequest, InitializeResponse),
    SESSION_NEW: (NewSessionRequest, NewSessionResponse),
    SESSION_LOAD: (LoadSessionRequest, LoadSessionResponse),
    SESSION_LIST: (ListSessionsRequest, ListSessionsResponse),
    SESSION_RESUME: (ResumeSessionRequest, ResumeSessionResponse),
    SESSION_CLOSE: (CloseSessionRequest, CloseSessionResponse),
    SESSION_DELETE: (DeleteSessionRequest, DeleteSessionResponse),
    SESSION_SET_MODE: (SetSessionModeRequest, SetSessionModeResponse),
    SESSION_STATUS: (SessionStatusRequest, SessionStatusResponse),
    SESSION_ARCHIVE: (ArchiveSessionRequest, ArchiveSessionResponse),
    SESSION_UNARCHIVE: (UnarchiveSessionRequest, UnarchiveSessionResponse),
    SESSION_SET_TITLE: (SetSessionTitleRequest, SetSessionTitleResponse),
    SESSION_FORK: (ForkSessionRequest, ForkSessionResponse),
    SESSION_PROMPT: (PromptRequest, PromptResponse),
}
"""Requests a client sends and Parley answers: method -> (params, result)."""

AGENT_NOTIFICATIONS: Final[dict[str, type[msgspec.Struct]]] = {
    SESSION_CANCEL: CancelNotification,
    CANCEL_REQUEST: CancelRequestNotification,
    LSP_CANCEL_REQUEST: LspCancelParams,
}
"""Notifications a client sends to Parley: method -> params."""

CLIENT_REQUESTS: Final[dict[str, tuple[type[msgspec.Struct], type[msgspec.Struct]]]] = {
    SESSION_REQUEST_PERMISSION: (RequestPermissionRequest, RequestPermissionResponse),
    FS_READ_TEXT_FILE: (ReadTextFileRequest, ReadTextFileResponse),
    FS_WRITE_TEXT_FILE: (WriteTextFileRequest, WriteTextFileResponse),
    TERMINAL_CREATE: (CreateTerminalRequest, CreateTerminalResponse),
    TERMINAL_OUTPUT: (TerminalRequest, TerminalOutputResponse),
    TERMINAL_WAIT_FOR_EXIT: (TerminalRequest, WaitForTerminalExitResponse),
    TERMINAL_KILL: (TerminalRequest, TerminalResponse),
    TERMINAL_RELEASE: (TerminalRequest, TerminalResponse),
}
"""Requests Parley sends and the client answers: method -> (params, result)."""

CLIENT_NOTIFICATIONS: Final[dict[str, type[msgspec.Struct]]] = {
    SESSION_UPDATE: SessionNotification,
    CANCEL_REQUEST: CancelRequestNotification,
}
"""Notifications Parley sends to the client: method -> params."""

__all__ = [  # noqa: PLE0604
    "AGENT_NOTIFICATIONS",
    "AGENT_REQUESTS",
    "CANCEL_REQUEST",
    "CLIENT_NOTIFICATIONS",
    "CLIENT_REQUESTS",
    "FS_READ_TEXT_FILE",
    "FS_WRITE_TEXT_FILE",
    "INITIALIZE",
    "LSP_CANCEL_REQUEST",
    "SESSION_ARCHIVE",
    "SESSION_CANCEL",
    "SESSION_CLOSE",
    "SESSION_DELETE",
    "SESSION_FORK",
    "SESSION_LIST",
    "SESSION_LOAD",
    "SESSION_NEW",
    "SESSION_PROMPT",
    "SESSION_REQUEST_PERMISSION",
    "SESSION_RESUME",
    "SESSION_SET_MODE",
    "SESSION_SET_TITLE",
    "SESSION_STATUS",
    "SESSION_UNARCHIVE",
    "SESSION_UPDATE",
    "TERMINAL_CREATE",
    "TERMINAL_KILL",
    "TERMINAL_OUTPUT",
    "TERMINAL_RELEASE",
    "TERMINAL_WAIT_FOR_EXIT",
    "AcpRequestId",
    "AcpStruct",
    "CompactionId",
    "Meta",
    "MessageId",
    "PermissionOptionId",
    "ProtocolVersion",
    "SessionId",
    "SessionModeId",
    "TerminalId",
    "ToolCallId",
    *_content_all,
    *_fs_all,
    *_initialize_all,
    *_mcp_servers_all,
    *_session_all,
    *_terminal_all,
    *_tool_calls_all,
]
