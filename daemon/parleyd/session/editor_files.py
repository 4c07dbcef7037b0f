"""The file tools' view of the editor's files (`tools.base.EditorFiles`),
through ACP's client file system where the client offers it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from parley_protocol.acp import FileSystemCapabilities, ReadTextFileRequest, WriteTextFileRequest
from parleyd.session.errors import ClientFileError
from parleyd.tools.base import ToolError


class FileChannel(Protocol):
    """The part of the client channel that reads and writes its files."""

    async def read_text_file(self, request: ReadTextFileRequest) -> str: ...

    async def write_text_file(self, request: WriteTextFileRequest) -> None: ...


class ClientFiles:
    """Files read and written by the client, on behalf of one (child) session:
    the requests carry its id, so the editor knows which conversation asks."""

    def __init__(self, channel: FileChannel, session_id: str, fs: FileSystemCapabilities) -> None:
        self._channel = channel
        self._session_id = session_id
        self.can_read = fs.read_text_file
        self.can_write = fs.write_text_file

    async def read_text(self, path: Path) -> str:
        request = ReadTextFileRequest(session_id=self._session_id, path=str(path))
        try:
            return await self._channel.read_text_file(request)
        except ClientFileError as exc:
            raise ToolError(f"the editor could not read {path}: {exc}") from None

    async def write_text(self, path: Path, content: str) -> None:
        request = WriteTextFileRequest(session_id=self._session_id, path=str(path), content=content)
        try:
            await self._channel.write_text_file(request)
        except ClientFileError as exc:
            raise ToolError(f"the editor could not write {path}: {exc}") from None
