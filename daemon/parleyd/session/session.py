"""A live session: its conversations, its log, and the one turn it may run.

The session owns its turn through an explicit state, `idle -> running ->
cancelling -> idle`, and answers every request from that state: a second
cancel, or a cancel while the turn is closing, changes nothing. A turn runs in
a task of its own under the session's cancel scope; whatever stops it
(its end, a cancel, a provider failure, a bug), the closing runs shielded and
bounded: what was said is recorded, open tool calls are answered, the turn's
end is written and fsynced, and the session is ready for the next prompt.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from pathlib import Path
from typing import Any, Protocol

import anyio

from parley_protocol.acp import (
    RequestPermissionRequest,
    SessionNotification,
    SessionUpdate,
    StopReason,
)
from parleyd.config import Settings
from parleyd.providers.base import Provider
from parleyd.session.conversation import Conversation, new_id
from parleyd.session.errors import ProviderFailed, SessionBusy, TurnCrashed, TurnFailed
from parleyd.session.port import TurnFactory, TurnLoop
from parleyd.session.usage import UsageLedger
from parleyd.store.index import SessionIndex
from parleyd.store.log import SessionLog
from parleyd.store.records import (
    Record,
    TitleSet,
    TurnEnded,
    TurnEnding,
    TurnStarted,
    UserTurn,
)
from parleyd.tools.permission import PermissionPolicy
from parleyd.tools.registry import ToolRegistry

log = logging.getLogger(__name__)

# The closing of a turn sends a few updates; a client that stopped reading
# must not hold the session (and the fsync) hostage.
_CLOSING_SECONDS = 5.0

_CANCELLED = "Cancelled by the user before it finished."


class ClientChannel(Protocol):
    """The client as a session sees it."""

    async def send_update(self, notification: SessionNotification) -> None: ...

    async def request_permission(self, request: RequestPermissionRequest) -> str | None:
        """The option the user chose, or None if the request was cancelled."""
        ...


class TurnState(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    CANCELLING = "cancelling"


class Session:
    def __init__(
        self,
        *,
        session_id: str,
        cwd: Path,
        settings: Settings,
        log_file: SessionLog,
        index: SessionIndex,
        root: Conversation,
        channel: ClientChannel,
        provider: Provider,
        tools: ToolRegistry,
        permissions: PermissionPolicy,
        new_turn: TurnFactory,
        ledger: UsageLedger | None = None,
        title: str | None = None,
    ) -> None:
        self.id = session_id
        self.cwd = cwd
        self.settings = settings
        self.log = log_file
        self.index = index
        self.root = root
        self.conversations: dict[str, Conversation] = {root.id: root}
        self.channel = channel
        self.provider = provider
        self.tools = tools
        self.permissions = permissions
        self.ledger = ledger or UsageLedger.empty()
        self.title = title
        self.state = TurnState.IDLE
        self._new_turn = new_turn
        self._turn: TurnLoop | None = None
        # Made for each turn (anyio's event-loop backend loads with the first).
        self._scope: anyio.CancelScope | None = None
        self._task: asyncio.Task[StopReason] | None = None

    # -- the turn's host ------------------------------------------------------

    async def send(self, update: SessionUpdate) -> None:
        await self.channel.send_update(SessionNotification(session_id=self.id, update=update))

    def record(self, record: Record, conversation: Conversation, turn: str | None) -> Record:
        record.turn = turn
        return self.log.append(record, conversation.id)

    async def request_permission(self, request: RequestPermissionRequest) -> str | None:
        return await self.channel.request_permission(request)

    # -- turns ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state is not TurnState.IDLE

    async def prompt(self, text: str, content: list[dict[str, Any]]) -> StopReason:
        """Run one turn to its end. Raises SessionBusy if one is running, and a
        TurnFailed once a failed turn has been closed and recorded."""
        if self.state is not TurnState.IDLE:
            raise SessionBusy(
                f"session {self.id} is already running a prompt; cancel it or wait for its answer"
            )
        self.state = TurnState.RUNNING
        scope = self._scope = anyio.CancelScope()
        # Its own task: whatever happens to the request that asked for it,
        # the turn runs to its recorded end.
        self._task = asyncio.create_task(self._run_turn(scope, new_id("turn"), text, content))
        return await asyncio.shield(self._task)

    def cancel(self) -> None:
        """Stop the running turn; it answers `cancelled`. Idempotent."""
        if self.state is TurnState.RUNNING and self._scope is not None:
            self.state = TurnState.CANCELLING
            self._scope.cancel()

    def cancel_tool_call(self, call_id: str) -> bool:
        """Stop one running tool call of the turn; False if there is none such."""
        return (
            self.state is TurnState.RUNNING
            and self._turn is not None
            and self._turn.cancel_tool_call(call_id)
        )

    async def _run_turn(
        self, scope: anyio.CancelScope, turn_id: str, text: str, content: list[dict[str, Any]]
    ) -> StopReason:
        self.record(TurnStarted(), self.root, turn_id)
        self.record(
            UserTurn(text=text, content=content, message_id=new_id("msg")), self.root, turn_id
        )
        if self.title is None and text.strip():
            self.title = _title_from(text)
            self.record(TitleSet(title=self.title), self.root, turn_id)
        # Listed from its first prompt on (the index rebuilds that from UserTurn).
        self.index.touch(self.id, time.time(), self.title)
        turn = self._turn = self._new_turn(self, self.root, turn_id)
        stop: StopReason = "cancelled"
        failure: TurnFailed | None = None
        with scope:
            try:
                stop = await turn.run(text)
            except ProviderFailed as exc:
                failure = exc
            except Exception as exc:
                log.exception("turn %s of session %s failed", turn_id, self.id)
                failure = TurnCrashed(f"{type(exc).__name__}: {exc}")
        if scope.cancel_called:
            # ACP: once cancelled, the answer is `cancelled`, whatever else
            # went wrong while the turn stopped.
            stop, failure = "cancelled", None
        with anyio.CancelScope(shield=True):
            await self._close_turn(turn, turn_id, "error" if failure else stop, failure)
        if failure is not None:
            raise failure
        return stop

    async def _close_turn(
        self, turn: TurnLoop, turn_id: str, ending: TurnEnding, failure: TurnFailed | None
    ) -> None:
        reason = _CANCELLED if failure is None else f"Not run: the turn failed ({failure})."
        closing: list[SessionUpdate] = []
        try:
            closing = turn.close(reason)
            error = None if failure is None else str(failure)
            self.record(TurnEnded(stop_reason=ending, error=error), self.root, turn_id)
        except Exception:
            # The log itself failed (a full disk): the client still gets its
            # answer, and the next load closes the turn from what did land.
            log.exception("could not record the end of turn %s", turn_id)
        with anyio.move_on_after(_CLOSING_SECONDS) as sending:
            for update in closing:
                await self.send(update)
        if sending.cancelled_caught:
            log.warning("turn %s: the client did not take its closing updates in time", turn_id)
        try:
            await anyio.to_thread.run_sync(self.log.sync)
        except OSError:
            log.exception("could not sync the log of session %s", self.id)
        self.index.touch(self.id, time.time(), self.title)
        self._turn = None
        self.state = TurnState.IDLE

    async def close(self) -> None:
        """Stop a running turn, wait for its recorded end, and release the log."""
        self.cancel()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self.log.close()


def _title_from(text: str) -> str:
    first_line = text.strip().splitlines()[0]
    return first_line if len(first_line) <= 80 else first_line[:79] + "…"
