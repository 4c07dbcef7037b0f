"""What the model gets of a prompt: ACP content blocks as one user message.

Text, and the text of embedded files (each in a `<file>` element naming it),
become the message's text; images, audio and embedded binary files become its
attachments, which each provider passes on in its own shape or, where its API
takes no such file, replaces with a note (`providers/user_content.py`). A
resource link is named, not fetched: the client attached a pointer only.
"""

from __future__ import annotations

import binascii
import logging
import mimetypes
from typing import Any

from parley_protocol.acp import (
    AudioContent,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
)
from parleyd.providers.messages import Attachment, ToolResultMessage, UserMessage
from parleyd.store.records import ToolOutcome

log = logging.getLogger(__name__)


def prompt_text(blocks: list[ContentBlock]) -> str:
    """The prompt's text as the model reads it (titles and the log use it too)."""
    parts: list[str] = []
    for block in blocks:
        match block:
            case TextContent(text=text):
                parts.append(text)
            case ResourceLink(uri=uri, name=name):
                parts.append(f"[attached: {name} <{uri}>]")
            case EmbeddedResource(resource=resource) if resource.text is not None:
                parts.append(f'<file uri="{resource.uri}">\n{resource.text}\n</file>')
            case _:
                pass  # an attachment (see `attachments`)
    return "\n\n".join(parts)


def attachments(blocks: list[ContentBlock]) -> tuple[Attachment, ...]:
    """The prompt's images, audio and binary files, in the order they came."""
    found: list[Attachment] = []
    for block in blocks:
        match block:
            case ImageContent(data=data, mime_type=mime_type, uri=uri):
                found.append(Attachment(mime_type, data, uri))
            case AudioContent(data=data, mime_type=mime_type):
                found.append(Attachment(mime_type, data))
            case EmbeddedResource(resource=resource) if resource.blob is not None:
                kind = resource.mime_type or mimetypes.guess_type(resource.uri)[0]
                found.append(
                    Attachment(kind or "application/octet-stream", resource.blob, resource.uri)
                )
            case _:
                pass
    return tuple(found)


def user_message(text: str, content: list[dict[str, Any]]) -> UserMessage:
    """The message of a recorded prompt: its `text`, and the attachments of its
    ACP `content` (as the log holds it, which a text-only prompt needs no
    decoding of)."""
    if all(block.get("type") in ("text", "resource_link") for block in content):
        return UserMessage(text=text)
    from parleyd.session.updates import stored_blocks  # with the sessions, not at start-up

    return UserMessage(text=text, attachments=attachments(stored_blocks(content)))


def tool_result_message(outcome: ToolOutcome) -> ToolResultMessage:
    """A recorded tool call's result as the model reads it: its output, and the
    images, audio and files it attached, which its ACP `content` holds for the
    client."""
    return ToolResultMessage(
        call_id=outcome.call_id,
        name=outcome.name,
        content=outcome.output,
        is_error=outcome.status != "completed",
        attachments=_readable_attachments(outcome.content),
    )


def _readable_attachments(content: list[dict[str, Any]]) -> tuple[Attachment, ...]:
    """The attachments among a result's stored content. One whose data is not
    base64 (its blob was lost: see `store/blobs.py`) is left out: the provider
    would refuse every later request over it."""
    blocks = [item.get("content") for item in content if item.get("type") == "content"]
    media = [block for block in blocks if isinstance(block, dict) and block.get("type") != "text"]
    if not media:  # nearly every result: nothing to decode
        return ()
    from parleyd.session.updates import stored_blocks  # with the sessions, not at start-up

    readable = []
    for attached in attachments(stored_blocks(media)):
        try:
            binascii.a2b_base64(attached.data, strict_mode=True)
        except binascii.Error:
            log.warning("a tool result's %s attachment is not base64; left out", attached.mime_type)
            continue
        readable.append(attached)
    return tuple(readable)
