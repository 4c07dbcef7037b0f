"""ACP's client file system: the agent reads and writes text files through the
client (`fs/read_text_file`, `fs/write_text_file`), so it sees the editor's
unsaved buffers and its edits land in them. Only for a client whose
`clientCapabilities.fs` says it takes them."""

from __future__ import annotations

import msgspec

from ._base import AcpStruct, Meta, SessionId


class ReadTextFileRequest(AcpStruct):
    """`fs/read_text_file` params (agent -> client): `path` is absolute;
    `line` (1-based) and `limit` ask for part of the file."""

    session_id: SessionId
    path: str
    line: int | None = None
    limit: int | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ReadTextFileResponse(AcpStruct):
    content: str
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class WriteTextFileRequest(AcpStruct):
    """`fs/write_text_file` params (agent -> client): the whole new text."""

    session_id: SessionId
    path: str
    content: str
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class WriteTextFileResponse(AcpStruct):
    meta: Meta | None = msgspec.field(default=None, name="_meta")


__all__ = [
    "ReadTextFileRequest",
    "ReadTextFileResponse",
    "WriteTextFileRequest",
    "WriteTextFileResponse",
]
