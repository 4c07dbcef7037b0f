"""What a session sends, addressed for the client at hand.

Every update belongs to a conversation. A client that advertises
`clientCapabilities.subagents` sees each child conversation as an ACP child
session: the child's updates go out under its own id, and its creation and
state as `subagent_update` on its parent. Any other client gets everything
under the session's id, and a child's creation and state under
`_meta.parley.subagent` on its parent's `subagent` tool call, which it can
validate like any tool call update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from parley_protocol.acp import (
    AgentMessageChunk,
    AnySessionUpdate,
    ClientCapabilities,
    IdleState,
    Notice,
    RequiresActionState,
    RunningState,
    SessionCancelCapabilities,
    SessionNotification,
    SessionUpdate,
    SubagentSessionCapabilities,
    SubagentState,
    SubagentUpdate,
    TextContent,
    ToolCallProgress,
)
from parley_protocol.parley import SubagentInfo
from parleyd.session.conversation import Conversation
from parleyd.store.records import BudgetReached, TurnEnding

ChildStateName = Literal["running", "idle", "requires_action"]

# How a child's turn ended, as ACP's child idle state names it; "error" is one of them.
_IDLE_STOP_REASONS: dict[TurnEnding, str] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "max_turn_requests": "max_turn_requests",
    "refusal": "refusal",
    "cancelled": "cancelled",
    "error": "error",
    # Reserved for implementations: Parley stopped while the child ran.
    "interrupted": "_interrupted",
}


@dataclass(frozen=True)
class ChildState:
    """A child conversation started (`announce`), waits for the user, or ended."""

    child: Conversation
    state: ChildStateName
    ending: TurnEnding | None = None
    error: str | None = None
    announce: bool = False


# A budget stop is shown as the record says it: a notice, or a message for
# clients that take no notices.
Outgoing = SessionUpdate | ChildState | BudgetReached


class SessionWire:
    def __init__(
        self,
        session_id: str,
        conversations: dict[str, Conversation],
        capabilities: ClientCapabilities | None,
    ) -> None:
        self.session_id = session_id
        self.conversations = conversations
        self.subagents = capabilities is not None and capabilities.supports_subagents
        self.notices = capabilities is not None and capabilities.supports_notices

    def session_id_of(self, conversation: Conversation) -> str:
        """The ACP session a conversation's traffic goes to."""
        if conversation.is_root or not self.subagents:
            return self.session_id
        return conversation.id

    def notification(self, item: Outgoing, conversation: Conversation) -> SessionNotification:
        if isinstance(item, ChildState):
            parent = self.conversations[item.child.parent or ""]
            return SessionNotification(
                session_id=self.session_id_of(parent), update=self._child_update(item, parent)
            )
        if isinstance(item, BudgetReached):
            item = self._budget_update(item, conversation)
        return SessionNotification(session_id=self.session_id_of(conversation), update=item)

    def _budget_update(self, stop: BudgetReached, conversation: Conversation) -> SessionUpdate:
        spent = {
            "conversation": stop.owner,
            "limit": stop.limit,
            "allowed": stop.allowed,
            "used": stop.used,
        }
        meta = conversation.meta_with(budget=spent)
        if self.notices:
            return Notice(
                severity="warning", title="Budget spent", description=stop.message, meta=meta
            )
        message_id = f"msg_budget_{stop.seq}"
        return AgentMessageChunk(
            content=TextContent(text=stop.message), message_id=message_id, meta=meta
        )

    def _child_update(self, item: ChildState, parent: Conversation) -> AnySessionUpdate:
        child = item.child
        stop_reason = None if item.ending is None else _IDLE_STOP_REASONS[item.ending]
        if self.subagents:
            state: SubagentState
            if item.state == "idle":
                error = None if item.error is None else {"code": -32603, "message": item.error}
                state = IdleState(stop_reason=stop_reason, error=error)
            elif item.state == "requires_action":
                state = RequiresActionState()
            else:
                state = RunningState()
            if not item.announce:
                return SubagentUpdate(session_id=child.id, state=state, meta=parent.meta)
            return SubagentUpdate(
                session_id=child.id,
                title=child.title,
                description=child.description,
                capabilities=SubagentSessionCapabilities(cancel=SessionCancelCapabilities()),
                state=state,
                meta=parent.meta,
            )
        info = SubagentInfo(
            conversation=child.ref(),
            title=child.title or child.id,
            description=child.description,
            state=item.state,
            stop_reason=stop_reason,
        )
        return ToolCallProgress(
            tool_call_id=child.parent_tool_call or "", meta=parent.meta_with(subagent=info)
        )
