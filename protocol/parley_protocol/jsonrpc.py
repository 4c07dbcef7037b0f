"""JSON-RPC 2.0 envelopes and error codes, as ACP v1 uses them."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

RequestId = int | str


class ErrorCode(IntEnum):
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    REQUEST_CANCELLED = -32800
    AUTH_REQUIRED = -32000
    RESOURCE_NOT_FOUND = -32002
    # Parley's own, inside the JSON-RPC server-error range.
    NOT_INITIALIZED = -32003
    SESSION_BUSY = -32004
    WRONG_TURN_STATE = -32005
    PROVIDER_ERROR = -32010
    CONFIG_ERROR = -32011


class ErrorObject(msgspec.Struct):
    code: int
    message: str
    data: Any | UnsetType = UNSET


class Incoming(msgspec.Struct, omit_defaults=True):
    """Any message a peer sends, before it is known which kind it is.

    `params` and `result` stay raw JSON so each handler decodes them straight
    into its own typed Struct (bad params -> -32602 with msgspec's message).
    """

    jsonrpc: str | None = None
    id: RequestId | None = None
    method: str | None = None
    params: msgspec.Raw = msgspec.Raw()
    result: msgspec.Raw = msgspec.Raw()
    error: ErrorObject | None = None


class Request(msgspec.Struct):
    id: RequestId
    method: str
    params: Any | UnsetType = UNSET
    jsonrpc: str = "2.0"


class Notification(msgspec.Struct):
    method: str
    params: Any | UnsetType = UNSET
    jsonrpc: str = "2.0"


class Response(msgspec.Struct):
    id: RequestId
    result: Any
    jsonrpc: str = "2.0"


class ErrorResponse(msgspec.Struct):
    id: RequestId | None
    error: ErrorObject
    jsonrpc: str = "2.0"
