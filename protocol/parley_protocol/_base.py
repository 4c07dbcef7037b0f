"""The base every ACP Struct shares, and the small aliases the schema names."""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

import msgspec

Meta: TypeAlias = dict[str, Any]
"""`_meta`: free-form extension data, kept untouched (`{ [key: string]: unknown }`)."""

SessionId: TypeAlias = str
ToolCallId: TypeAlias = str
MessageId: TypeAlias = str
PermissionOptionId: TypeAlias = str
TerminalId: TypeAlias = str
SessionModeId: TypeAlias = str
CompactionId: TypeAlias = str
AcpRequestId: TypeAlias = int | str | None
"""ACP's RequestId: null, an integer or a string (the `$/cancel_request` target)."""

ProtocolVersion: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=65535)]
UInt32: TypeAlias = Annotated[int, msgspec.Meta(ge=0, le=4294967295)]
UInt64: TypeAlias = Annotated[int, msgspec.Meta(ge=0)]


class AcpStruct(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    """Base of every ACP v1 type: camelCase on the wire, `None` fields omitted.

    Unknown fields are ignored on decode (msgspec's default), so a newer peer's
    additions never break us. Subclasses that carry `_meta` declare it as::

        meta: Meta | None = msgspec.field(default=None, name="_meta")
    """
