"""ACP content blocks (`ContentBlock`) and the resources they embed."""

from __future__ import annotations

from typing import Literal, TypeAlias

import msgspec

from ._base import AcpStruct, Meta

Role: TypeAlias = Literal["assistant", "user"]


class Annotations(AcpStruct):
    """Hints for how a client should use or display a content block."""

    audience: list[Role] | None = None
    last_modified: str | None = None
    priority: float | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class TextContent(AcpStruct, tag_field="type", tag="text"):
    text: str
    annotations: Annotations | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ImageContent(AcpStruct, tag_field="type", tag="image"):
    data: str
    mime_type: str
    uri: str | None = None
    annotations: Annotations | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class AudioContent(AcpStruct, tag_field="type", tag="audio"):
    data: str
    mime_type: str
    annotations: Annotations | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class ResourceLink(AcpStruct, tag_field="type", tag="resource_link"):
    name: str
    uri: str
    title: str | None = None
    description: str | None = None
    mime_type: str | None = None
    size: int | None = None
    annotations: Annotations | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


class EmbeddedResourceResource(AcpStruct):
    """The `resource` of an embedded resource: text contents or blob contents.

    On the wire this is an *untagged* union of `TextResourceContents` (has
    `text`) and `BlobResourceContents` (has `blob`). msgspec cannot decode an
    untagged union of two Structs, so the field is typed with this one Struct
    that holds both optional members and requires at least one of them; it
    round-trips either shape unchanged. `TextResourceContents` and
    `BlobResourceContents` are its subclasses with the member required: build
    with those, read with `.text is not None` / `.blob is not None`.
    """

    uri: str
    mime_type: str | None = None
    text: str | None = None
    blob: str | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")

    def __post_init__(self) -> None:
        if self.text is None and self.blob is None:
            raise ValueError("an embedded resource needs either `text` or `blob`")


class TextResourceContents(EmbeddedResourceResource, kw_only=True):
    text: str


class BlobResourceContents(EmbeddedResourceResource, kw_only=True):
    blob: str


class EmbeddedResource(AcpStruct, tag_field="type", tag="resource"):
    resource: EmbeddedResourceResource
    annotations: Annotations | None = None
    meta: Meta | None = msgspec.field(default=None, name="_meta")


ContentBlock: TypeAlias = (
    TextContent | ImageContent | AudioContent | ResourceLink | EmbeddedResource
)
"""ACP's ContentBlock, tagged by `type`."""

__all__ = [
    "Annotations",
    "AudioContent",
    "BlobResourceContents",
    "ContentBlock",
    "EmbeddedResource",
    "EmbeddedResourceResource",
    "ImageContent",
    "ResourceLink",
    "Role",
    "TextContent",
    "TextResourceContents",
]
