"""Which MCP servers a session has, and the names their tools go by.

A session has the servers of `config.toml`'s `[mcp_servers]` and those its
client passes when it opens the session; a client's server replaces the
configured one of the same name. The model calls a server's tool as
`mcp__<server>__<tool>`, the convention editors' agents share: names the
providers take (letters, digits, `_` and `-`, at most 64 characters) that
say where a tool comes from and cannot collide with a built-in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from parley_protocol.mcp_servers import (
    InvalidMcpServer,
    McpServerConfig,
    McpServerHttp,
    McpServerSse,
    decode_mcp_server,
)

TOOL_PREFIX = "mcp__"
# The strictest provider's limit on a tool name (OpenAI's, and Gemini's).
_NAME_LIMIT = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_DIGEST_CHARS = 8


class ServerListError(ValueError):
    """Servers that cannot be started as described; the message names them."""


def tool_name(server: str, tool: str) -> str:
    """The name the model calls `tool` of `server` by. A name past the limit
    keeps its start and a digest of the whole, so two long names stay two."""
    name = f"{TOOL_PREFIX}{_UNSAFE.sub('_', server)}__{_UNSAFE.sub('_', tool)}"
    if len(name) <= _NAME_LIMIT:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_DIGEST_CHARS]
    return f"{name[: _NAME_LIMIT - _DIGEST_CHARS - 1]}_{digest}"


def from_client(raw: Sequence[Any], http: bool = True, sse: bool = True) -> list[McpServerConfig]:
    """A request's `mcpServers`, typed; ServerListError names the first one wrong."""
    servers = []
    for index, entry in enumerate(raw):
        try:
            server = decode_mcp_server(entry)
        except InvalidMcpServer as exc:
            raise ServerListError(f"mcpServers[{index}]: {exc}") from None
        if (isinstance(server, McpServerHttp) and not http) or (
            isinstance(server, McpServerSse) and not sse
        ):
            raise ServerListError(f"mcpServers[{index}]: {server.type} servers are not supported")
        servers.append(server)
    _refuse_duplicates(servers, "mcpServers")
    return servers


def from_config(table: Any, origin: str) -> tuple[McpServerConfig, ...]:
    """`config.toml`'s `[mcp_servers.<name>]` tables: `command` with `args` and
    an `env` table, or `url` with `type` ("http", the default, or "sse") and a
    `headers` table."""
    if not isinstance(table, dict):
        raise ServerListError(
            f"{origin}: mcp_servers must be a table of servers, "
            'e.g. [mcp_servers.files] command = "npx"'
        )
    servers = []
    for name, entry in table.items():
        where = f"{origin}: mcp_servers.{name}"
        if not isinstance(entry, dict):
            raise ServerListError(f"{where} must be a table with `command` or `url`")
        servers.append(_configured(name, entry, where))
    _refuse_duplicates(servers, f"{origin}: mcp_servers")
    return tuple(servers)


def _configured(name: str, entry: dict[str, Any], where: str) -> McpServerConfig:
    known = {"command", "args", "env"} if "command" in entry else {"url", "type", "headers"}
    unknown = sorted(set(entry) - known)
    if unknown or not ({"command", "url"} & set(entry)):
        said = f"unknown key(s) {', '.join(unknown)}"
        if not ({"command", "url"} & set(entry)):
            said = "no `command` or `url`"
        raise ServerListError(
            f"{where}: {said}; a server has `command` (with `args`, `env`) "
            "or `url` (with `type`, `headers`)"
        )
    wire: dict[str, Any] = {"name": name}
    if "command" in entry:
        wire |= {
            "command": entry["command"],
            "args": entry.get("args", []),
            "env": _pairs(entry.get("env", {}), f"{where}.env"),
        }
    else:
        wire |= {
            "type": entry.get("type", "http"),
            "url": entry["url"],
            "headers": _pairs(entry.get("headers", {}), f"{where}.headers"),
        }
    try:
        return decode_mcp_server(wire)
    except InvalidMcpServer as exc:
        raise ServerListError(f"{where}: {exc}") from None


def _pairs(table: Any, where: str) -> list[dict[str, Any]]:
    """A TOML table of strings as ACP's list of name/value objects (`env`, `headers`)."""
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ServerListError(f'{where} must be a table of strings, e.g. NAME = "value"')
    return [{"name": key, "value": value} for key, value in table.items()]


def session_servers(
    configured: Iterable[McpServerConfig], requested: Iterable[McpServerConfig]
) -> tuple[McpServerConfig, ...]:
    """The configured servers, each replaced by the client's of the same name,
    then the client's others, in the order given."""
    requested = list(requested)
    asked = {server.name for server in requested}
    servers = (*(s for s in configured if s.name not in asked), *requested)
    _refuse_duplicates(servers, "mcpServers and config.toml's mcp_servers")
    return servers


def _refuse_duplicates(servers: Sequence[McpServerConfig], origin: str) -> None:
    """Two servers whose tools would go by the same names."""
    seen: dict[str, str] = {}
    for server in servers:
        key = _UNSAFE.sub("_", server.name)
        if key in seen:
            raise ServerListError(
                f"{origin}: two servers are named {seen[key]!r} and {server.name!r}, "
                f"which their tools' names cannot tell apart"
                if seen[key] != server.name
                else f"{origin}: two servers are named {server.name!r}"
            )
        seen[key] = server.name
