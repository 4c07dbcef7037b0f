"""What every built-in tool shares: arguments declared as a msgspec Struct (the
schema the model is sent, and the validation of what it sends back) and the
session's workspace to act in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import msgspec

from .base import ToolContext, ToolError, ToolKind, ToolResult
from .paths import Workspace

ArgumentsT = TypeVar("ArgumentsT", bound=msgspec.Struct)


class WorkspaceTool(ABC, Generic[ArgumentsT]):
    """A built-in tool (see `Tool`). A subclass sets `arguments_type` and the tool's
    metadata and writes `execute`; `parameters` is derived from `arguments_type`."""

    name: str
    description: str
    kind: ToolKind
    needs_permission: bool
    arguments_type: type[ArgumentsT]
    parameters: Mapping[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.parameters = arguments_schema(cls.arguments_type)

    @abstractmethod
    def title(self, arguments: Mapping[str, Any]) -> str:
        """A short human title for the call, e.g. `Read src/main.py`."""

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        return await self.execute(*self._prepared(arguments, context), context)

    async def preview(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        return await self.describe(*self._prepared(arguments, context), context)

    def _prepared(
        self, arguments: Mapping[str, Any], context: ToolContext
    ) -> tuple[ArgumentsT, Workspace]:
        """The model's arguments validated, and the workspace they act in."""
        workspace = Workspace.at(context.cwd, context.additional_roots)
        return decode_arguments(self.name, self.arguments_type, arguments), workspace

    async def describe(
        self, args: ArgumentsT, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        """What a call with these arguments would do (see `Tool.preview`); the
        title says it all for tools that change nothing."""
        return ToolResult("")

    @abstractmethod
    async def execute(
        self, args: ArgumentsT, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        """Run the call with valid arguments (see `Tool.run`)."""


def arguments_schema(arguments_type: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of a tool's arguments Struct, with every `$ref` inlined:
    providers want a plain `{"type": "object", "properties": ...}` and several
    reject `$defs`."""
    generated = msgspec.json.schema(arguments_type)
    definitions: dict[str, Any] = generated.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
        # A Struct's class name means nothing to the model; its docstring repeats the
        # tool's description. `properties` is keyed by field names, which stay.
        return {
            key: {name: inline(sub) for name, sub in value.items()}
            if key == "properties"
            else inline(value)
            for key, value in node.items()
            if key not in ("title", "$defs")
        }

    schema: dict[str, Any] = inline(generated)
    schema.pop("description", None)
    return schema


def decode_arguments(
    tool_name: str, arguments_type: type[ArgumentsT], arguments: Mapping[str, Any]
) -> ArgumentsT:
    """Validate the model's arguments against the tool's Struct. The error names the
    offending field and lists the accepted ones, so the model can correct its call."""
    try:
        # Lax: models often send numbers and booleans as strings ("5", "true").
        return msgspec.convert(dict(arguments), arguments_type, strict=False)
    except msgspec.ValidationError as err:
        accepted = ", ".join(arguments_type.__struct_fields__)
        raise ToolError(
            f"invalid arguments for {tool_name}: {err} (accepted: {accepted})"
        ) from None
