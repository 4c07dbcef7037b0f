"""`initialize`: implementation info and the capabilities both sides advertise.

Nested capability objects that the schema defaults (`fs`, `auth`,
`promptCapabilities`, ...) are `X | None = None` here: absent on the wire stays
absent, and a missing object means "all defaults" (every boolean false).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ._base import AcpStruct, Meta, ProtocolVersion


class Implementation(AcpStruct):
    name: str
    version: str
    title: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


# -- client side -------------------------------------------------------------


class FileSystemCapabilities(AcpStruct):
    read_text_file: bool = False
    write_text_file: bool = False
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class AuthCapabilities(AcpStruct):
    terminal: bool = False
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class NoticeCapabilities(AcpStruct):
    """The client renders `notice` session updates (schema: an empty object)."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CompactionCapabilities(AcpStruct):
    """The client renders `compaction_update` session updates (an empty object)."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ClientSessionCapabilities(AcpStruct):
    compaction: CompactionCapabilities | None = None
    notices: NoticeCapabilities | None = None
    config_options: dict[str, Any] | None = None
    """Kept loose: Parley offers no config options yet."""
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SubagentCapabilities(AcpStruct):
    """`{}` (unstable): the client shows sub-conversations as child sessions."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ClientCapabilities(AcpStruct):
    """What the client supports. Unknown capability keys are accepted and ignored."""

    fs: FileSystemCapabilities | None = None
    terminal: bool = False
    session: ClientSessionCapabilities | None = None
    auth: AuthCapabilities | None = None
    elicitation: dict[str, Any] | None = None
    """Kept loose: Parley does not elicit yet."""
    subagents: SubagentCapabilities | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")

    @property
    def supports_subagents(self) -> bool:
        return self.subagents is not None

    @property
    def can_read_text_file(self) -> bool:
        return self.fs is not None and self.fs.read_text_file

    @property
    def can_write_text_file(self) -> bool:
        return self.fs is not None and self.fs.write_text_file

    @property
    def supports_notices(self) -> bool:
        return self.session is not None and self.session.notices is not None

    @property
    def supports_compaction(self) -> bool:
        return self.session is not None and self.session.compaction is not None


class InitializeRequest(AcpStruct):
    protocol_version: ProtocolVersion
    client_capabilities: ClientCapabilities | None = None
    client_info: Implementation | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


# -- agent side --------------------------------------------------------------


class PromptCapabilities(AcpStruct):
    image: bool = False
    audio: bool = False
    embedded_context: bool = False
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class McpCapabilities(AcpStruct):
    http: bool = False
    sse: bool = False
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionListCapabilities(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionDeleteCapabilities(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionAdditionalDirectoriesCapabilities(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionResumeCapabilities(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionCloseCapabilities(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionArchiveCapabilities(AcpStruct):
    """`{}` (unstable): `session/archive`, `session/unarchive`, the `archived`
    filter of `session/list` and `SessionInfo.archived`. Needs `list` too."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionStatusCapabilities(AcpStruct):
    """`{}` (unstable): `session/status`."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionTitleCapabilities(AcpStruct):
    """`{}` (unstable): `session/set_title`. Titles reach the client through
    `session/list` and `session_info_update` without it."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionForkCapabilities(AcpStruct):
    """`{}` (unstable): `session/fork`."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


class SessionCapabilities(AcpStruct):
    list: SessionListCapabilities | None = None
    delete: SessionDeleteCapabilities | None = None
    additional_directories: SessionAdditionalDirectoriesCapabilities | None = None
    resume: SessionResumeCapabilities | None = None
    close: SessionCloseCapabilities | None = None
    archive: SessionArchiveCapabilities | None = None
    status: SessionStatusCapabilities | None = None
    title: SessionTitleCapabilities | None = None
    fork: SessionForkCapabilities | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class LogoutCapabilities(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class AgentAuthCapabilities(AcpStruct):
    logout: LogoutCapabilities | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class AgentCapabilities(AcpStruct):
    """What the agent supports; Parley's extensions go in `meta["parley"]`."""

    load_session: bool = False
    prompt_capabilities: PromptCapabilities | None = None
    mcp_capabilities: McpCapabilities | None = None
    session_capabilities: SessionCapabilities | None = None
    auth: AgentAuthCapabilities | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class AuthMethodAgent(AcpStruct):
    """The default (`agent`) authentication method: no `type` on the wire.

    ACP's AuthMethod is a union of this untagged variant and a `terminal`
    variant tagged by `type`; msgspec cannot mix tagged and untagged variants,
    and Parley only ever offers this one, so `AuthMethod` is this Struct.
    """

    id: str
    name: str
    description: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


AuthMethod = AuthMethodAgent


class InitializeResponse(AcpStruct):
    protocol_version: ProtocolVersion
    agent_capabilities: AgentCapabilities | None = None
    auth_methods: list[AuthMethodAgent] = msgspec.field(default_factory=list)
    agent_info: Implementation | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


__all__ = [
    "AgentAuthCapabilities",
    "AgentCapabilities",
    "AuthCapabilities",
    "AuthMethod",
    "AuthMethodAgent",
    "ClientCapabilities",
    "ClientSessionCapabilities",
    "CompactionCapabilities",
    "FileSystemCapabilities",
    "Implementation",
    "InitializeRequest",
    "InitializeResponse",
    "LogoutCapabilities",
    "McpCapabilities",
    "NoticeCapabilities",
    "PromptCapabilities",
    "SessionAdditionalDirectoriesCapabilities",
    "SessionArchiveCapabilities",
    "SessionCapabilities",
    "SessionCloseCapabilities",
    "SessionDeleteCapabilities",
    "SessionForkCapabilities",
    "SessionListCapabilities",
    "SessionResumeCapabilities",
    "SessionStatusCapabilities",
    "SessionTitleCapabilities",
    "SubagentCapabilities",
]
