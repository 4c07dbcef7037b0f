"""What the model gets of the blocks an editor sends in a prompt."""

from __future__ import annotations

from typing import Any

import msgspec

from parley_protocol.acp import (
    AudioContent,
    BlobResourceContents,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)
from parleyd.providers.messages import Attachment, UserMessage
from parleyd.session.user_input import attachments, prompt_text, user_message


def _as_received(blocks: list[ContentBlock]) -> list[ContentBlock]:
    """The blocks as the daemon decodes them off the wire."""
    return msgspec.json.decode(msgspec.json.encode(blocks), type=list[ContentBlock])


def test_an_embedded_file_is_read_by_the_model_with_its_name() -> None:
    # Decoded, an embedded resource is the one Struct that holds text or blob:
    # its text must still reach the model (it once went as "binary, not shown").
    blocks = _as_received(
        [
            TextContent(text="Why does this fail?"),
            EmbeddedResource(resource=TextResourceContents(uri="file:///w/a.py", text="1/0")),
            ResourceLink(name="notes.md", uri="file:///w/notes.md"),
        ]
    )
    assert prompt_text(blocks) == (
        'Why does this fail?\n\n<file uri="file:///w/a.py">\n1/0\n</file>\n\n'
        "[attached: notes.md <file:///w/notes.md>]"
    )
    assert attachments(blocks) == ()


def test_images_audio_and_binary_files_are_attachments_in_their_order() -> None:
    blocks = _as_received(
        [
            ImageContent(data="aW1n", mime_type="image/png", uri="file:///w/shot.png"),
            EmbeddedResource(resource=BlobResourceContents(uri="file:///w/r.pdf", blob="cGRm")),
            AudioContent(data="d2F2", mime_type="audio/wav"),
            EmbeddedResource(resource=BlobResourceContents(uri="file:///w/data.bin", blob="AAE=")),
            TextContent(text="Compare them."),
        ]
    )
    assert attachments(blocks) == (
        Attachment("image/png", "aW1n", "file:///w/shot.png"),
        Attachment("application/pdf", "cGRm", "file:///w/r.pdf"),  # from the file's name
        Attachment("audio/wav", "d2F2"),
        Attachment("application/octet-stream", "AAE=", "file:///w/data.bin"),
    )
    assert prompt_text(blocks) == "Compare them."


def test_a_recorded_prompt_gives_back_its_attachments_and_skips_what_no_longer_validates() -> None:
    content: list[dict[str, Any]] = [
        {"type": "hologram"},
        {"type": "image", "data": "aW1n", "mimeType": "image/jpeg"},
        {"type": "text", "text": "this"},
    ]
    assert user_message("this", content) == UserMessage(
        "this", attachments=(Attachment("image/jpeg", "aW1n"),)
    )
    assert user_message("hi", [{"type": "text", "text": "hi"}]) == UserMessage("hi")


def test_an_attachment_has_a_file_name_and_a_note_for_apis_that_cannot_take_it() -> None:
    pdf = Attachment("application/pdf", "cGRm", "file:///w/docs/r.pdf")
    assert pdf.file_name == "r.pdf"
    assert pdf.data_url == "data:application/pdf;base64,cGRm"
    assert Attachment("image/png", "x").file_name == "attachment"
    assert Attachment("application/zip", "x").unreadable("Ollama") == (
        "[attached: a file of type application/zip, "
        "which the Ollama API does not pass to the model]"
    )
