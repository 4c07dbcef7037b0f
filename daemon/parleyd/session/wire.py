"""What a session sends, addressed for the client at hand.

Every update belongs to a conversation. A client that advertises
`clientCapabilities.subagents` sees each child conversation as an ACP child
session: the child's updates go out under its own id, and its creation and
state as `subagent_update` on its parent. Any other client gets everything
under the session's id, and a child's creation and state under
`_meta.parley.subagent` on its parent's `subagent` tool call, which it can
validate like any tool call update.

A model slow to answer is told as a `notice` to clients that advertise
`session.notices`, as a `session_info_update` to the others, either with
`_meta.parley.status`; the end of the wait is a `session_info_update` to all.
An MCP server's state goes the same ways, under `_meta.parley.mcpServer`; its
start is news to no one but a client that reads the `_meta`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from parley_protocol.acp import (
    AgentMessageChunk,
    AgentThoughtChunk,
    AnySessionUpdate,
    ClientCapabilities,
    CompactionUpdate,
    ContentBlock,
    IdleState,
    Notice,
    RequiresActionState,
    RunningState,
    SessionCancelCapabilities,
    SessionInfoUpdate,
    SessionNotification,
    SessionUpdate,
    SubagentSessionCapabilities,
    SubagentState,
    SubagentUpdate,
    TextContent,
    ToolCallProgress,
)
from parley_protocol.parley import SubagentInfo
from parleyd.mcp.host import McpServerStatus
from parleyd.providers.events import FallingBack, Retrying
from parleyd.session.conversation import Conversation
from parleyd.store.records import BudgetReached, Compacted, CompactionStarted, TurnEnding

ChildStateName = Literal["running", "idle", "requires_action"]
# What the client waits for while a model says nothing (see `alive.py`).
WaitingFor = Literal["first_output", "more_output", "tool_call_arguments"]

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


@dataclass(frozen=True)
class ModelStatus:
    """A conversation's model has sent nothing for `seconds` while the client
    waits for `waiting`; `waiting` None: the wait is over."""

    waiting: WaitingFor | None
    seconds: float | None = None


_WAITING_SAID: dict[WaitingFor, str] = {
    "first_output": "The model has not begun to answer in {seconds:.1f} s; it may be loading "
    "or thinking.",
    "more_output": "The model has sent nothing more for {seconds:.1f} s; it may be thinking.",
    "tool_call_arguments": "The model has been writing a tool call for {seconds:.1f} s.",
}

# A budget stop and a compaction are sent as their records say them, and a
# model's status (recorded nowhere) as the watchdog saw it, in the form the
# client takes: notices and compaction updates to those that advertise them,
# `_meta.parley` on an agent update (a session info update, for a status) to
# the others.
Outgoing = (
    SessionUpdate
    | ChildState
    | BudgetReached
    | CompactionStarted
    | Compacted
    | ModelStatus
    | Retrying
    | FallingBack
    | McpServerStatus
)


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
        self.compaction = capabilities is not None and capabilities.supports_compaction

    def session_id_of(self, conversation: Conversation) -> str:
        """The ACP session a conversation's traffic goes to."""
        if conversation.is_root or not self.subagents:
            return self.session_id
        return conversation.id

    def notification(
        self, item: Outgoing, conversation: Conversation
    ) -> SessionNotification | None:
        """The notification that says `item` to this client; None if it says nothing."""
        if isinstance(item, CompactionStarted | Compacted):
            update = self._compaction_update(item, conversation)
            if update is None:
                return None
            return SessionNotification(session_id=self.session_id_of(conversation), update=update)
        if isinstance(item, ChildState):
            parent = self.conversations[item.child.parent or ""]
            return SessionNotification(
                session_id=self.session_id_of(parent), update=self._child_update(item, parent)
            )
        if isinstance(item, BudgetReached):
            item = self._budget_update(item, conversation)
        elif isinstance(item, ModelStatus):
            item = self._status_update(item, conversation)
        elif isinstance(item, Retrying | FallingBack):
            item = self._call_update(item, conversation)
        elif isinstance(item, McpServerStatus):
            item = self._mcp_update(item, conversation)
        return SessionNotification(session_id=self.session_id_of(conversation), update=item)

    def _compaction_update(
        self, item: CompactionStarted | Compacted, conversation: Conversation
    ) -> SessionUpdate | None:
        if isinstance(item, CompactionStarted):
            if not self.compaction:
                return None  # the others hear of it once it has ended
            return CompactionUpdate(
                compaction_id=item.compaction_id, status="in_progress", meta=conversation.meta
            )
        summary: list[ContentBlock] | None = (
            None if item.summary is None else [TextContent(text=item.summary)]
        )
        if self.compaction:
            return CompactionUpdate(
                compaction_id=item.compaction_id,
                status=item.status,
                summary=summary,
                error=item.error,
                meta=conversation.meta,
            )
        described = {
            "id": item.compaction_id,
            "status": item.status,
            "summary": item.summary,
            "error": item.error,
        }
        said = {
            "completed": "I compacted the earlier conversation into a summary to stay "
            "within the context window.",
            "failed": f"Compacting the earlier conversation failed: {item.error}.",
            "cancelled": "Compacting the earlier conversation was cancelled.",
        }[item.status]
        return AgentThoughtChunk(
            content=TextContent(text=said),
            message_id=f"msg_{item.compaction_id}",
            meta=conversation.meta_with(compaction=described),
        )

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

    def _status_update(self, status: ModelStatus, conversation: Conversation) -> SessionUpdate:
        described = {"waiting": status.waiting, "seconds": status.seconds}
        meta = conversation.meta_with(status=described)
        # The end of a wait is no news to the user: a notice would only say it.
        if status.waiting is None or not self.notices:
            return SessionInfoUpdate(meta=meta)
        title = "Waiting for the model"
        if not conversation.is_root:
            title += f" (sub-agent: {conversation.title or conversation.id})"
        return Notice(
            severity="info",
            title=title,
            description=_WAITING_SAID[status.waiting].format(seconds=status.seconds),
            meta=meta,
        )

    def _call_update(
        self, item: Retrying | FallingBack, conversation: Conversation
    ) -> SessionUpdate:
        """A model call tried again, or handed to the next provider: told as it
        happens, recorded nowhere (the response that follows is)."""
        error = item.error
        reason = {"kind": error.kind, "message": error.message, "status": error.status}
        told: dict[str, object]
        if isinstance(item, Retrying):
            told = {"attempt": item.attempt, "attempts": item.attempts, "delaySeconds": item.delay}
            meta = conversation.meta_with(retry={**told, "reason": reason})
            title = (
                f"Model call failed; try {item.attempt} of {item.attempts} in {item.delay:.1f} s"
            )
        else:
            told = {"provider": item.provider, "model": item.model}
            meta = conversation.meta_with(fallback={**told, "reason": reason})
            title = f"Model call handed to {item.provider} ({item.model})"
        if not self.notices:
            return SessionInfoUpdate(meta=meta)
        return Notice(severity="warning", title=title, description=error.message, meta=meta)

    def _mcp_update(self, status: McpServerStatus, conversation: Conversation) -> SessionUpdate:
        described = {
            "name": status.server,
            "state": status.state,
            "tools": list(status.tools),
            "error": status.error,
            "retryInSeconds": status.retry_in,
            "failures": status.failures,
        }
        meta = conversation.meta_with(mcpServer=described)
        name = status.server
        description: str | None
        match status.state:
            case "ready":
                count = len(status.tools)
                told = ("info", f"MCP server {name} is ready with {count} tool(s)")
                description = ", ".join(status.tools) or "It offers no tools."
            case "restarting":
                told = (
                    "warning",
                    f"MCP server {name} stopped; restarting in {status.retry_in:g} s",
                )
                description = status.error
            case "failed":
                told = ("error", f"MCP server {name} could not be started")
                description = f"{status.error}; given up after {status.failures} tries."
            case _:
                return SessionInfoUpdate(meta=meta)
        if not self.notices:
            return SessionInfoUpdate(meta=meta)
        severity, title = told
        return Notice(severity=severity, title=title, description=description, meta=meta)

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
