"""What an MCP tool's result becomes: text for the model and the client, its
images, audio and binary resources as attachments of both."""

from __future__ import annotations

import mcp_types

from parleyd.mcp.content import tool_result
from parleyd.providers.messages import Attachment


def _result(*content: object, **fields: object) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult.model_validate({"content": list(content), **fields})


def test_every_kind_of_content_reaches_the_model_in_order() -> None:
    result = tool_result(
        _result(
            {"type": "text", "text": "first"},
            {"type": "image", "data": "aW1n", "mimeType": "image/png"},
            {"type": "audio", "data": "d2F2", "mimeType": "audio/wav"},
            {"type": "resource", "resource": {"uri": "file:///a.md", "text": "# A"}},
            {
                "type": "resource",
                "resource": {"uri": "file:///b.pdf", "blob": "cGRm", "mimeType": "application/pdf"},
            },
            {"type": "resource_link", "uri": "file:///c.txt", "name": "c", "description": "notes"},
        )
    )
    assert result.output == (
        "first\n\nResource file:///a.md:\n# A\n\nResource link c: file:///c.txt (notes)"
    )
    assert result.attachments == (
        Attachment("image/png", "aW1n"),
        Attachment("audio/wav", "d2F2"),
        Attachment("application/pdf", "cGRm", "file:///b.pdf"),
    )
    assert not result.is_error


def test_a_result_with_structured_content_only_reads_as_its_json() -> None:
    result = tool_result(_result(structuredContent={"sum": 3}))
    assert result.output == '{\n  "sum": 3\n}'


def test_an_error_result_is_a_failed_call_and_nothing_still_says_so() -> None:
    failed = tool_result(_result({"type": "text", "text": "no such city"}, isError=True))
    assert (failed.output, failed.is_error) == ("no such city", True)
    assert tool_result(_result()).output == "(the tool returned nothing)"
    pictured = tool_result(_result({"type": "image", "data": "aW1n", "mimeType": "image/png"}))
    assert pictured.output == "(the tool returned 1 file(s))"
