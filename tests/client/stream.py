"""`session/update` notifications of a session tree as the daemon sends them to a
client that takes no child sessions: everything under one session id, each update
naming its conversation at `_meta.parley.conversation`."""

from __future__ import annotations

from typing import Literal

import msgspec

from parley_protocol.acp import (
    AgentMessageChunk,
    AgentThoughtChunk,
    AnySessionUpdate,
    Meta,
    SessionNotification,
    TextContent,
    ToolCallProgress,
    ToolCallStart,
    ToolCallStatus,
    UsageUpdate,
    UserMessageChunk,
)
from parley_protocol.parley import (
    PARLEY_META_KEY,
    ConversationRef,
    SubagentInfo,
    UsageDetail,
    UsageTotals,
    parley_meta,
)

SESSION_ID = "sess_0123456789abcdef01234567"
ROOT = ConversationRef(id="conv_root")

_CHUNKS: dict[str, type[UserMessageChunk | AgentMessageChunk | AgentThoughtChunk]] = {
    "user": UserMessageChunk,
    "agent": AgentMessageChunk,
    "thought": AgentThoughtChunk,
}


def child(id: str, parent: ConversationRef, tool_call_id: str) -> ConversationRef:
    return ConversationRef(
        id=id, parent=parent.id, parent_tool_call=tool_call_id, depth=parent.depth + 1
    )


# The tree the client tests stream: two sub-agents of the root, one with a child.
READER = child("conv_reader", ROOT, "call_1")
LISTER = child("conv_lister", ROOT, "call_2")
GRANDCHILD = child("conv_grandchild", LISTER, "call_1")


def _notification(update: AnySessionUpdate) -> SessionNotification:
    return SessionNotification(session_id=SESSION_ID, update=update)


def text(
    conversation: ConversationRef,
    role: Literal["user", "agent", "thought"],
    said: str,
    message_id: str,
) -> SessionNotification:
    chunk = _CHUNKS[role]
    return _notification(
        chunk(
            content=TextContent(text=said),
            message_id=message_id,
            meta=parley_meta(conversation=conversation),
        )
    )


def tool_call(conversation: ConversationRef, tool_call_id: str, title: str) -> SessionNotification:
    return _notification(
        ToolCallStart(
            tool_call_id=tool_call_id,
            title=title,
            status="pending",
            meta=parley_meta(conversation=conversation),
        )
    )


def tool_ended(
    conversation: ConversationRef,
    tool_call_id: str,
    status: ToolCallStatus = "completed",
    output: str = "",
) -> SessionNotification:
    return _notification(
        ToolCallProgress(
            tool_call_id=tool_call_id,
            status=status,
            raw_output={"output": output, "durationMs": 5},
            meta=parley_meta(conversation=conversation),
        )
    )


def announced(
    parent: ConversationRef, sub_agent: ConversationRef, title: str
) -> SessionNotification:
    """The sub-agent's start, on its parent's `subagent` call."""
    assert sub_agent.parent == parent.id and sub_agent.parent_tool_call is not None
    meta: Meta = parley_meta(conversation=parent)
    meta[PARLEY_META_KEY]["subagent"] = msgspec.to_builtins(
        SubagentInfo(conversation=sub_agent, title=title)
    )
    return _notification(ToolCallProgress(tool_call_id=sub_agent.parent_tool_call, meta=meta))


def usage(conversation: ConversationRef, input_tokens: int) -> SessionNotification:
    figures = UsageTotals(responses=1, input_tokens=input_tokens)
    detail = UsageDetail(turn=figures, session=figures, conversation=conversation.id)
    return _notification(
        UsageUpdate(
            used=input_tokens,
            size=32_000,
            meta=parley_meta(conversation=conversation, usage=detail),
        )
    )
