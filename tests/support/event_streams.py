"""Event streams written as the APIs that name their events write them."""

from __future__ import annotations

import json
from typing import Any


def typed_events(*payloads: dict[str, Any]) -> bytes:
    """Each payload as one event, named by an `event:` line after its `type`, as
    OpenAI's Responses and Anthropic's Messages APIs write them."""
    return b"".join(
        f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()
        for payload in payloads
    )
