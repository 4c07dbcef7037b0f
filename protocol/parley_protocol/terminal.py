"""ACP's client terminals: the agent runs a command in the client's terminal
(`terminal/create`), embeds it in a tool call (`TerminalToolCallContent`),
waits for it, reads its output, kills it and releases it. Only for a client
whose `clientCapabilities.terminal` is true."""

from __future__ import annotations

import msgspec

from ._base import AcpStruct, Meta, SessionId, TerminalId


class EnvVariable(AcpStruct):
    name: str
    value: str
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CreateTerminalRequest(AcpStruct):
    """`terminal/create` params: `cwd` absolute; the client keeps at most
    `output_byte_limit` bytes of output, dropping the oldest."""

    session_id: SessionId
    command: str
    args: list[str] = msgspec.field(default_factory=list)
    env: list[EnvVariable] = msgspec.field(default_factory=list)
    cwd: str | None = None
    output_byte_limit: int | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class CreateTerminalResponse(AcpStruct):
    terminal_id: TerminalId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class TerminalRequest(AcpStruct):
    """The params of `terminal/output`, `terminal/wait_for_exit`,
    `terminal/kill` and `terminal/release`: which terminal of which session."""

    session_id: SessionId
    terminal_id: TerminalId
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class TerminalExitStatus(AcpStruct):
    exit_code: int | None = None
    signal: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class TerminalOutputResponse(AcpStruct):
    output: str
    truncated: bool
    exit_status: TerminalExitStatus | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class WaitForTerminalExitResponse(TerminalExitStatus):
    pass


class TerminalResponse(AcpStruct):
    """`terminal/kill` and `terminal/release` answer with nothing."""

    meta: Meta | None = msgspec.field(default=None, name="_meta")


__all__ = [
    "CreateTerminalRequest",
    "CreateTerminalResponse",
    "EnvVariable",
    "TerminalExitStatus",
    "TerminalOutputResponse",
    "TerminalRequest",
    "TerminalResponse",
    "WaitForTerminalExitResponse",
]
