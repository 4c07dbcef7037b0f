"""Model-neutral conversation messages: what the agent loop sends to any provider.

These are also what the store persists, so a session recorded against one
provider can be continued against another.
"""

from __future__ import annotations

import msgspec


class ToolCall(msgspec.Struct, frozen=True):
    """A tool call the model made: `arguments` is the JSON text exactly as streamed."""

    id: str
    name: str
    arguments: str


class UserMessage(msgspec.Struct, tag="user", frozen=True):
    text: str


class AssistantMessage(msgspec.Struct, tag="assistant", frozen=True):
    """One model response. Reasoning stays with the message it preceded, so
    providers that need it back (DeepSeek, Anthropic signatures) get it."""

    text: str = ""
    thinking: str = ""
    thinking_signature: str | None = None
    refusal: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class ToolResultMessage(msgspec.Struct, tag="tool_result", frozen=True):
    call_id: str
    name: str
    content: str
    is_error: bool = False


Message = UserMessage | AssistantMessage | ToolResultMessage


class ToolSpec(msgspec.Struct, frozen=True):
    """A tool offered to the model: `parameters` is a JSON Schema object."""

    name: str
    description: str
    parameters: dict[str, object]


class ModelRequest(msgspec.Struct, frozen=True):
    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_output_tokens: int | None = None
