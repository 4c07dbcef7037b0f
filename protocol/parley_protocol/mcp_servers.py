"""The MCP servers a client hands a session (`mcpServers` of `session/new`,
`session/load`, `session/resume`, `session/fork`): a command to start and talk
to over stdio, or a URL speaking MCP's streamable HTTP or its older SSE
transport.

The wire union is untagged for stdio and tagged (`"type"`) for the others,
which msgspec cannot decode as one union: requests keep each server as a dict
and `decode_mcp_server` types it, with an error naming what is wrong. The
lists ACP requires (`args`, `env`, `headers`) may be left out: the schema
takes null for empty, and an empty list is what a missing one means.
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

import msgspec

from ._base import AcpStruct, Meta
from .terminal import EnvVariable


class HttpHeader(AcpStruct):
    name: str
    value: str
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class McpServerStdio(AcpStruct):
    """A server the agent starts: `command` (an absolute path, says ACP; a name
    on PATH works too) with `args`, its environment extended by `env`."""

    name: str
    command: str
    args: list[str] = msgspec.field(default_factory=list)
    env: list[EnvVariable] = msgspec.field(default_factory=list)
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class _McpServerAtUrl(AcpStruct):
    """What the two HTTP transports' servers share: a URL and its headers."""

    name: str
    url: str
    headers: list[HttpHeader] = msgspec.field(default_factory=list)
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class McpServerHttp(_McpServerAtUrl, kw_only=True):
    """A server at `url` speaking MCP's streamable HTTP transport."""

    type: Literal["http"]


class McpServerSse(_McpServerAtUrl, kw_only=True):
    """A server at `url` speaking MCP's older HTTP+SSE transport."""

    type: Literal["sse"]


McpServerConfig: TypeAlias = McpServerStdio | McpServerHttp | McpServerSse

_BY_TYPE: dict[str, type[McpServerHttp] | type[McpServerSse]] = {
    "http": McpServerHttp,
    "sse": McpServerSse,
}


class InvalidMcpServer(ValueError):
    """A server description that is not one of ACP's three shapes."""


def decode_mcp_server(raw: Any) -> McpServerConfig:
    """The typed server `raw` describes; InvalidMcpServer says what is wrong
    (`mcpServers[i]` is for the caller to prefix)."""
    if not isinstance(raw, dict):
        raise InvalidMcpServer(f"must be an object, not {type(raw).__name__}")
    kind = raw.get("type")
    shape: type[McpServerConfig]
    if kind is None or kind == "stdio":
        shape = McpServerStdio
    elif isinstance(kind, str) and kind in _BY_TYPE:
        shape = _BY_TYPE[kind]
    else:
        raise InvalidMcpServer(f"unknown type {kind!r}; the types are stdio, http and sse")
    fields = {
        key: value for key, value in raw.items() if not (shape is McpServerStdio and key == "type")
    }
    try:
        server = msgspec.convert(fields, shape)
    except msgspec.ValidationError as exc:
        raise InvalidMcpServer(str(exc)) from None
    if not server.name.strip():
        raise InvalidMcpServer("name must not be empty")
    return server


__all__ = [
    "HttpHeader",
    "InvalidMcpServer",
    "McpServerConfig",
    "McpServerHttp",
    "McpServerSse",
    "McpServerStdio",
    "decode_mcp_server",
]
