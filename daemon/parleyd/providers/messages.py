"""Model-neutral conversation messages: what the agent loop sends to any provider.

These are also what the store persists, so a session recorded against one
provider can be continued against another.
"""

from __future__ import annotations

from typing import Any

import msgspec


class ToolCall(msgspec.Struct, tag="tool_call", frozen=True, omit_defaults=True):
    """A tool call the model made: `arguments` is the JSON text exactly as streamed;
    `signature` is what the provider signed the call with (Gemini), sent back on it."""

    id: str
    name: str
    arguments: str
    signature: str | None = None

    def arguments_object(self) -> dict[str, Any] | None:
        """The arguments as the JSON object they should be, or None where they
        are not one (a call cut off mid-arguments, a model that streamed broken
        JSON); `repair.py` sends those as `{}`."""
        try:
            value = msgspec.json.decode(self.arguments)
        except msgspec.DecodeError:
            return None
        return value if isinstance(value, dict) else None


class TextPart(msgspec.Struct, tag="text", frozen=True):
    text: str


class ThinkingPart(msgspec.Struct, tag="thinking", frozen=True, omit_defaults=True):
    """Reasoning, kept with the message it preceded so providers that need it
    back get it byte for byte: `signature` signs `text` (Anthropic, Gemini);
    `redacted` is an opaque payload shown to nobody (Anthropic redacted
    thinking, Responses `encrypted_content`)."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    # The provider whose signature or payload this is: no other can read it
    # (see repair.for_provider). None in sessions recorded before it was kept.
    origin: str | None = None


class RefusalPart(msgspec.Struct, tag="refusal", frozen=True):
    text: str


Part = TextPart | ThinkingPart | RefusalPart | ToolCall


class Attachment(msgspec.Struct, frozen=True, omit_defaults=True):
    """An image, audio or a file the user sent with a message, or a tool's
    result carried, for the model to see as well as read about: `data` is
    base64, as ACP and MCP carry it; `name` is the file's URI or name where
    one was given."""

    mime_type: str
    data: str
    name: str | None = None

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data}"

    @property
    def file_name(self) -> str:
        """The file's own name, for APIs that take one: the last part of its URI."""
        return (self.name or "").rstrip("/").rsplit("/", 1)[-1] or "attachment"

    @property
    def is_image(self) -> bool:
        return self.mime_type.startswith("image/")

    def unreadable(self, provider: str) -> str:
        """What a model whose API cannot take this kind of file reads instead."""
        what = (
            f"{self.name} ({self.mime_type})" if self.name else f"a file of type {self.mime_type}"
        )
        return f"[attached: {what}, which the {provider} API does not pass to the model]"


class UserMessage(msgspec.Struct, tag="user", frozen=True):
    """What the user said, and what they attached: providers put the
    attachments before the text, as Anthropic and Gemini advise."""

    text: str
    attachments: tuple[Attachment, ...] = ()


class AssistantMessage(msgspec.Struct, tag="assistant", frozen=True):
    """One model response as the ordered parts it streamed in."""

    parts: tuple[Part, ...] = ()

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))

    @property
    def thinking(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, ThinkingPart))

    @property
    def refusal(self) -> str | None:
        return "".join(p.text for p in self.parts if isinstance(p, RefusalPart)) or None

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(part for part in self.parts if isinstance(part, ToolCall))


class ToolResultMessage(msgspec.Struct, tag="tool_result", frozen=True):
    """What a tool call gave back: `content` is its text; providers put the
    attachments after it, each API where it takes them."""

    call_id: str
    name: str
    content: str
    is_error: bool = False
    attachments: tuple[Attachment, ...] = ()


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
