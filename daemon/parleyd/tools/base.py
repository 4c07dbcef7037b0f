"""The contract between the agent loop and every tool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import msgspec

# ACP's ToolKind: lets clients pick an icon and a treatment for the call.
ToolKind = Literal["read", "edit", "delete", "move", "search", "execute", "think", "fetch", "other"]


class ToolError(Exception):
    """A failure the model should read (bad arguments, path outside the workspace,
    missing file...). Its message becomes the tool result, marked as an error."""


@dataclass(frozen=True)
class FileDiff:
    """What a write changed, for the client's diff view (`old_text` None: a new file)."""

    path: Path
    old_text: str | None
    new_text: str


@dataclass(frozen=True)
class ToolResult:
    """`output` is what the model reads back; the rest is for the client's display."""

    output: str
    is_error: bool = False
    locations: tuple[Path, ...] = ()
    diff: FileDiff | None = None


@dataclass(frozen=True)
class ToolContext:
    """What a running tool may know. `cwd` is the session's workspace root: every
    path a tool touches must resolve inside it. `report_progress` streams partial
    output (a shell command's lines) to the client while the tool runs."""

    cwd: Path
    report_progress: Callable[[str], Awaitable[None]] = field(default=lambda _text: _noop())


async def _noop() -> None:
    return None


class Tool(Protocol):
    name: str
    description: str
    # JSON Schema of the arguments object, sent to the model as is.
    parameters: Mapping[str, Any]
    kind: ToolKind
    # Whether the client must allow each call (session/request_permission).
    needs_permission: bool

    def title(self, arguments: Mapping[str, Any]) -> str:
        """A short human title for the call, e.g. `Read src/main.py`."""
        ...

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        """Run the call. Raise ToolError for failures the model should see;
        cancellation arrives as asyncio.CancelledError and must stop the work."""
        ...


ArgumentsT = TypeVar("ArgumentsT", bound=msgspec.Struct)


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
