"""A conversation: one model-facing history inside a session.

A session has a root conversation and sub-conversations (subagents) whose
parent is another conversation, started by the parent's `subagent` tool call.
Each has its own id from the start, and every update and record names it; a
child's id is also its ACP child session id.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from parley_protocol.parley import PARLEY_META_KEY, ConversationRef
from parleyd.providers.messages import Message
from parleyd.store.records import ConversationStarted


def new_id(prefix: str) -> str:
    """Time-ordered, unguessable ids: sorting them sorts by creation."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Budget:
    """What a conversation may spend (see `session/budget.py`); None: no limit."""

    cost: float | None = None
    """US dollars, descendants included."""
    responses: int | None = None
    """Model responses, descendants included."""
    seconds: float | None = None
    """Wall time of the conversation's own turns."""


@dataclass
class Conversation:
    id: str
    parent: str | None = None
    parent_tool_call: str | None = None
    depth: int = 0
    history: list[Message] = field(default_factory=list)
    # A child's task as its parent named it, and the role it was given.
    title: str | None = None
    description: str | None = None
    # What a child's model is told beyond the common system prompt, and the
    # tools it may use (None: all of its parent's).
    instructions: str | None = None
    tool_names: tuple[str, ...] | None = None
    budget: Budget = field(default_factory=Budget)

    def __post_init__(self) -> None:
        # Built once: every update of this conversation carries this `_meta`.
        self.meta: dict[str, Any] = {PARLEY_META_KEY: {"conversation": self.ref()}}

    @classmethod
    def started(cls, record: ConversationStarted) -> Conversation:
        """The conversation a `conversation` record starts, without its history."""
        return cls(
            id=record.conv,
            parent=record.parent,
            parent_tool_call=record.parent_tool_call,
            depth=record.depth,
            title=record.title,
            description=record.description,
            instructions=record.instructions,
            tool_names=None if record.tools is None else tuple(record.tools),
        )

    def start_record(self) -> ConversationStarted:
        return ConversationStarted(
            parent=self.parent,
            parent_tool_call=self.parent_tool_call,
            depth=self.depth,
            title=self.title,
            description=self.description,
            instructions=self.instructions,
            tools=None if self.tool_names is None else list(self.tool_names),
        )

    @property
    def is_root(self) -> bool:
        return self.parent is None

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
