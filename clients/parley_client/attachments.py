"""Files a prompt carries, as the ACP blocks that hold them: a text file's
contents as an embedded text resource, an image as an image, anything else as
an embedded binary resource; each named by its `file://` URI."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path

from parley_protocol.acp import (
    BlobResourceContents,
    ContentBlock,
    EmbeddedResource,
    ImageContent,
    TextResourceContents,
)


def file_block(path: Path) -> ContentBlock:
    """`path`'s contents as a prompt block (an OSError when it cannot be read)."""
    data = path.read_bytes()
    uri = path.absolute().as_uri()
    mime_type = mimetypes.guess_type(path.name)[0]
    if mime_type is not None and mime_type.startswith("image/"):
        return ImageContent(data=base64.b64encode(data).decode(), mime_type=mime_type, uri=uri)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        blob = base64.b64encode(data).decode()
        return EmbeddedResource(
            resource=BlobResourceContents(uri=uri, blob=blob, mime_type=mime_type)
        )
    return EmbeddedResource(resource=TextResourceContents(uri=uri, text=text, mime_type=mime_type))
