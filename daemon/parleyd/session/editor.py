"""The tools' view of the user's editor, through the ACP requests a client
offers: its files (`tools.base.EditorFiles`: `fs/read_text_file`,
`fs/write_text_file`) and its terminals (`tools.base.EditorTerminals`:
`terminal/*`). Each is made per conversation: the requests carry the (child)
session's id, so the editor knows which conversation asks."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeVar

import msgspec

from parley_protocol.acp import (
    FS_READ_TEXT_FILE,
    FS_WRITE_TEXT_FILE,
    TERMINAL_CREATE,
    TERMINAL_KILL,
    TERMINAL_OUTPUT,
    TERMINAL_RELEASE,
    TERMINAL_WAIT_FOR_EXIT,
    CreateTerminalRequest,
    CreateTerminalResponse,
    FileSystemCapabilities,
    ReadTextFileRequest,
    ReadTextFileResponse,
    TerminalOutputResponse,
    TerminalRequest,
    WaitForTerminalExitResponse,
    WriteTextFileRequest,
)
from parleyd.session.errors import ClientRequestFailed
from parleyd.tools.base import TerminalExit, TerminalOutput, ToolError

_R = TypeVar("_R")


class SessionScoped(Protocol):
    """The params of a request to the client: about one session."""

    @property
    def session_id(self) -> str: ...


class ClientRequests(Protocol):
    async def client_request(self, method: str, params: SessionScoped) -> bytes:
        """The raw result, or ClientRequestFailed with the client's error."""
        ...


async def _ask(
    channel: ClientRequests, method: str, params: SessionScoped, answer: type[_R], doing: str
) -> _R:
    """The client's answer to a request, as `answer`; a ToolError saying what
    could not be done (`doing`) when the client refuses or answers nonsense."""
    try:
        raw = await channel.client_request(method, params)
        return msgspec.json.decode(raw, type=answer)
    except ClientRequestFailed as exc:
        raise ToolError(f"the editor could not {doing}: {exc}") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ToolError(
            f"the editor's answer when asked to {doing} was unreadable: {exc}"
        ) from None


class ClientFiles:
    def __init__(
        self, channel: ClientRequests, session_id: str, fs: FileSystemCapabilities
    ) -> None:
        self._channel = channel
        self._session_id = session_id
        self.can_read = fs.read_text_file
        self.can_write = fs.write_text_file

    async def read_text(self, path: Path) -> str:
        request = ReadTextFileRequest(session_id=self._session_id, path=str(path))
        answer = await _ask(
            self._channel, FS_READ_TEXT_FILE, request, ReadTextFileResponse, f"read {path}"
        )
        return answer.content

    async def write_text(self, path: Path, content: str) -> None:
        request = WriteTextFileRequest(session_id=self._session_id, path=str(path), content=content)
        # The answer says nothing (the docs' `null`, the schema's `{}`): that it came.
        await _ask(self._channel, FS_WRITE_TEXT_FILE, request, object, f"write {path}")


class ClientTerminals:
    def __init__(self, channel: ClientRequests, session_id: str) -> None:
        self._channel = channel
        self._session_id = session_id

    async def create(self, command: str, args: list[str], cwd: Path, output_limit: int) -> str:
        request = CreateTerminalRequest(
            session_id=self._session_id,
            command=command,
            args=args,
            cwd=str(cwd),
            output_byte_limit=output_limit,
        )
        answer = await _ask(
            self._channel, TERMINAL_CREATE, request, CreateTerminalResponse, "open a terminal"
        )
        return answer.terminal_id

    async def wait_for_exit(self, terminal_id: str) -> TerminalExit:
        answer = await _ask(
            self._channel,
            TERMINAL_WAIT_FOR_EXIT,
            self._about(terminal_id),
            WaitForTerminalExitResponse,
            "wait for its terminal",
        )
        return TerminalExit(answer.exit_code, answer.signal)

    async def output(self, terminal_id: str) -> TerminalOutput:
        answer = await _ask(
            self._channel,
            TERMINAL_OUTPUT,
            self._about(terminal_id),
            TerminalOutputResponse,
            "read its terminal's output",
        )
        return TerminalOutput(answer.output, answer.truncated)

    async def kill(self, terminal_id: str) -> None:
        await _ask(self._channel, TERMINAL_KILL, self._about(terminal_id), object, "stop a command")

    async def release(self, terminal_id: str) -> None:
        await _ask(
            self._channel, TERMINAL_RELEASE, self._about(terminal_id), object, "release a terminal"
        )

    def _about(self, terminal_id: str) -> TerminalRequest:
        return TerminalRequest(session_id=self._session_id, terminal_id=terminal_id)
