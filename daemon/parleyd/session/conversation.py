"""A conversation: one model-facing history inside a session.

A session has a root conversation and, later, sub-conversations (subagents)
whose parent is another conversation. Each has its own id from the start, and
every update and record names it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from parley_protocol.parley import PARLEY_META_KEY, ConversationRef
from parleyd.providers.messages import Message


def new_id(prefix: str) -> str:
    """Time-ordered, unguessable ids: sorting them sorts by creation."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


@dataclass
class Conversation:
    id: str
    parent: str | None = None
    parent_tool_call: str | None = None
    depth: int = 0
    history: list[Message] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Built once: every update of this conversation carries this `_meta`.
        self.meta: dict[str, Any] = {PARLEY_META_KEY: {"conversation": self.ref()}}

    def ref(self) -> ConversationRef:
        return ConversationRef(
            id=self.id,
            parent=self.parent,
            parent_tool_call=self.parent_tool_call,
            depth=self.depth,
        )

    def meta_with(self, **extra: Any) -> dict[str, Any]:
        """This conversation's `_meta` with more `_meta.parley` keys (usage, ...)."""
        return {PARLEY_META_KEY: {"conversation": self.ref(), **extra}}
