"""The tools a session offers the model, looked up by the name the model calls."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec

from parley_protocol.names import describe_unknown

from ..config import ConfigError
from ..mcp_servers import TOOL_PREFIX
from ..providers.messages import ToolSpec
from .base import Tool, ToolError
from .edit import EditFile
from .files import ListDirectory, ReadFile, WriteFile
from .glob_files import Glob
from .plan import UpdatePlan
from .search import SearchText
from .shell import RunShell
from .subagent import Subagent

# Enough of a broken arguments text for the model to recognise its mistake.
QUOTED_PREFIX_CHARS = 120


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self._tools[tool.name] = tool

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            available = ", ".join(self._tools) or "none"
            raise ToolError(f"unknown tool {name!r}; available: {available}") from None

    def subset(self, names: Iterable[str]) -> ToolRegistry:
        """The named tools only; a name this registry lacks is an error naming it."""
        wanted = list(dict.fromkeys(names))
        unknown = [name for name in wanted if name not in self._tools]
        if unknown:
            available = ", ".join(self._tools) or "none"
            raise ToolError(f"unknown tool(s) {', '.join(unknown)}; available: {available}")
        return ToolRegistry(self._tools[name] for name in wanted)

    def with_tools(self, tools: Iterable[Tool]) -> ToolRegistry:
        """These tools and `tools` after them; self where there are none."""
        more = list(tools)
        return ToolRegistry([*self, *more]) if more else self

    def without(self, name: str) -> ToolRegistry:
        return ToolRegistry(tool for tool in self if tool.name != name)

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(ToolSpec(tool.name, tool.description, dict(tool.parameters)) for tool in self)

    @staticmethod
    def parse_arguments(tool: Tool, arguments_json: str) -> Mapping[str, Any]:
        """The arguments object the model streamed as JSON text. Models send an
        empty text for a call without arguments."""
        if not arguments_json.strip():
            return {}
        try:
            arguments = msgspec.json.decode(arguments_json)
        except msgspec.DecodeError as err:
            prefix = arguments_json[:QUOTED_PREFIX_CHARS]
            more = "..." if len(arguments_json) > QUOTED_PREFIX_CHARS else ""
            raise ToolError(
                f"arguments for {tool.name} are not valid JSON ({err}): {prefix!r}{more}"
            ) from None
        if not isinstance(arguments, dict):
            raise ToolError(
                f"arguments for {tool.name} must be a JSON object, "
                f"not {type(arguments).__name__}: {arguments_json[:QUOTED_PREFIX_CHARS]!r}"
            )
        return arguments


def builtin_registry() -> ToolRegistry:
    return ToolRegistry(
        [
            ReadFile(),
            ListDirectory(),
            SearchText(),
            WriteFile(),
            EditFile(),
            Glob(),
            UpdatePlan(),
            RunShell(),
            Subagent(),
        ]
    )


def refuse_unknown_tools(names: Iterable[str], origin: str) -> None:
    """ConfigError naming every name that is no built-in tool, and the closest
    one. An MCP server's tools (`mcp__...`) are known only once it is up."""
    tools = [tool.name for tool in builtin_registry()]
    unknown = [name for name in names if name not in tools and not name.startswith(TOOL_PREFIX)]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(
            f"{origin}: [permissions] names unknown tool{plural} "
            f"{describe_unknown(unknown, tools)}; the tools are {', '.join(tools)}"
        )
