"""An MCP tool's result as a Parley tool result: its text for the model and
the client, its images, audio and binary resources as attachments both see."""

from __future__ import annotations

import json

import mcp_types

from parleyd.providers.messages import Attachment
from parleyd.tools.base import ToolResult

_NO_OUTPUT = "(the tool returned nothing)"


def tool_result(result: mcp_types.CallToolResult) -> ToolResult:
    texts: list[str] = []
    attachments: list[Attachment] = []
    for block in result.content:
        match block:
            case mcp_types.TextContent(text=text):
                texts.append(text)
            case (
                mcp_types.ImageContent(data=data, mime_type=mime)
                | mcp_types.AudioContent(data=data, mime_type=mime)
            ):
                attachments.append(Attachment(mime_type=mime, data=data))
            case mcp_types.EmbeddedResource(resource=mcp_types.TextResourceContents() as text):
                texts.append(f"Resource {text.uri}:\n{text.text}")
            case mcp_types.EmbeddedResource(resource=mcp_types.BlobResourceContents() as blob):
                mime = blob.mime_type or "application/octet-stream"
                attachments.append(Attachment(mime_type=mime, data=blob.blob, name=str(blob.uri)))
            case mcp_types.ResourceLink():
                described = f" ({block.description})" if block.description else ""
                texts.append(f"Resource link {block.name}: {block.uri}{described}")
    if not texts and result.structured_content is not None:
        # A server that answers in structured content only: its JSON is the answer.
        texts.append(json.dumps(result.structured_content, ensure_ascii=False, indent=2))
    if not texts:
        texts.append(
            _NO_OUTPUT if not attachments else f"(the tool returned {len(attachments)} file(s))"
        )
    return ToolResult(
        "\n\n".join(texts), is_error=bool(result.is_error), attachments=tuple(attachments)
    )
