"""Error bodies as the APIs write them, for the tests that answer with one."""

from __future__ import annotations

import json
from typing import Any


def anthropic_error(error_type: str, message: str) -> bytes:
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return json.dumps({**body, "request_id": "req_1"}).encode()


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    """`status` is the word Google gives the code: `google_error(404, "NOT_FOUND", ...)`."""
    return json.dumps(
        {"error": {"code": code, "message": message, "status": status, "details": list(details)}}
    ).encode()
