"""The seam between a turn and its host: all a turn may do or know.

The loop (`parleyd.agent`) sees its session only through `TurnHost`, and the
session drives a turn only through `TurnLoop`, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from parley_protocol.acp import RequestPermissionRequest, StopReason
from parleyd.config import Settings
from parleyd.providers.base import Provider
from parleyd.providers.messages import UserMessage
from parleyd.session.conversation import Conversation
from parleyd.session.pause import PauseGate
from parleyd.session.usage import UsageLedger
from parleyd.session.wire import Outgoing
from parleyd.store.records import BudgetReached, Record
from parleyd.tools.base import ChildTask, EditorFiles, EditorTerminals, ToolResult
from parleyd.tools.permission import PermissionPolicy
from parleyd.tools.registry import ToolRegistry


@dataclass(frozen=True)
class Steer:
    """A user message sent into a running turn: `text` for the model, `content`
    as the client sent it."""

    text: str
    content: list[dict[str, Any]]
    message_id: str


class TurnHost(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def cwd(self) -> Path: ...

    @property
    def additional_roots(self) -> tuple[Path, ...]: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def provider(self) -> Provider: ...

    @property
    def permissions(self) -> PermissionPolicy: ...

    @property
    def ledger(self) -> UsageLedger: ...

    @property
    def pauses(self) -> PauseGate:
        """Where the session's turns hold while it is paused."""
        ...

    def tools_for(self, conversation: Conversation) -> ToolRegistry:
        """The tools this conversation's model is offered."""
        ...

    def editor_files(self, conversation: Conversation) -> EditorFiles | None:
        """The client's files for the conversation's tools, where it offers them."""
        ...

    def editor_terminals(self, conversation: Conversation) -> EditorTerminals | None:
        """The client's terminals for the conversation's commands, where it offers them."""
        ...

    def lineage(self, conversation: Conversation) -> list[Conversation]:
        """The conversation, its parent, ..., the root."""
        ...

    def budget_reached(self, conversation: Conversation) -> BudgetReached | None:
        """The budget of the conversation or an ancestor that is spent, if any."""
        ...

    async def send(self, update: Outgoing, conversation: Conversation) -> None:
        """Stream an update of a conversation to the client, waiting while it lags behind."""
        ...

    async def send_all(self, items: Iterable[tuple[Outgoing, Conversation]]) -> None:
        """Stream updates in this order, nothing of another task's between them."""
        ...

    def record(self, record: Record, conversation: Conversation, turn: str | None) -> Record:
        """Append to the session log."""
        ...

    async def request_permission(
        self, request: RequestPermissionRequest, conversation: Conversation
    ) -> str | None:
        """The option the user chose, or None if the question was withdrawn."""
        ...

    async def run_child(self, parent: Conversation, call_id: str, task: ChildTask) -> ToolResult:
        """Run a child conversation for the parent's `subagent` call `call_id`."""
        ...


class TurnLoop(Protocol):
    """One prompt turn. `run` may be cancelled at any await; `close` then
    records what was said and answers every open tool call, without awaiting,
    and returns the updates that tell the client so."""

    async def run(self, prompt: UserMessage) -> StopReason:
        """Answer the prompt, which the host has recorded."""
        ...

    async def go_on(self) -> StopReason:
        """Carry on the turn from its conversation's history (paused before a
        restart): its waiting calls run, then the model is called."""
        ...

    async def compact(self, focus: str) -> StopReason:
        """A turn that only summarises the conversation's whole history."""
        ...

    def steer(self, message: Steer) -> bool:
        """Join `message` to the turn at its next step boundary; False if the
        turn has taken its last step."""
        ...

    @property
    def running_tool_calls(self) -> list[str]: ...

    def cancel_running_tools(self) -> None: ...

    def close(self, reason: str) -> list[Outgoing]: ...

    @property
    def stop_note(self) -> str | None:
        """Why the turn stopped early (a budget), for whoever reads its answer."""
        ...

    def cancel_tool_call(self, call_id: str) -> bool:
        """Stop one running tool call; the model reads that it was cancelled."""
        ...


TurnFactory = Callable[[TurnHost, Conversation, str], TurnLoop]
