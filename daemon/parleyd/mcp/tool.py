"""A tool of an MCP server, as the session's registry holds it: called like a
built-in, asked about like one, answered by its server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from parleyd.mcp_servers import tool_name
from parleyd.tools.base import ToolContext, ToolKind, ToolResult

# Calls the server by the tool's own name.
ServerCall = Callable[[str, Mapping[str, Any]], Awaitable[ToolResult]]


@dataclass
class McpTool:
    """See `tools.base.Tool`. Every call asks by default, whatever the server
    says of the tool: its annotations are hints from a stranger."""

    server: str
    tool: str
    description: str
    parameters: Mapping[str, Any]
    call_server: ServerCall = field(repr=False, compare=False)
    kind: ToolKind = "other"
    display_title: str | None = None
    name: str = field(init=False)
    needs_permission: bool = field(default=True, init=False)

    def __post_init__(self) -> None:
        self.name = tool_name(self.server, self.tool)

    def title(self, arguments: Mapping[str, Any]) -> str:
        return f"{self.display_title or self.tool} ({self.server})"

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        return await self.call_server(self.tool, arguments)

    async def preview(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        # The request shows the call's arguments; what the server will do with them is its own.
        return ToolResult("")
