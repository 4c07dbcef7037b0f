"""A live session: its conversations, its log, its running turn."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from parley_protocol.acp import (
    RequestPermissionRequest,
    SessionNotification,
    SessionUpdate,
    StopReason,
)
from parley_protocol.jsonrpc import ErrorCode
from parleyd.config import Settings
from parleyd.providers.base import Provider
from parleyd.rpc.server import RpcError
from parleyd.session.conversation import Conversation
from parleyd.session.usage import UsageLedger
from parleyd.store.index import SessionIndex
from parleyd.store.log import SessionLog
from parleyd.store.records import Record, TitleSet, TurnEnded
from parleyd.tools.permission import PermissionPolicy
from parleyd.tools.registry import ToolRegistry

log = logging.getLogger(__name__)


class ClientChannel(Protocol):
    """The client as a session sees it."""

    async def send_update(self, notification: SessionNotification) -> None: ...

    async def request_permission(self, request: RequestPermissionRequest) -> str | None:
        """The option the user chose, or None if the request was cancelled."""
        ...


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
        self._turn: asyncio.Task[StopReason] | None = None

    # -- output ---------------------------------------------------------------

    async def send(self, update: SessionUpdate) -> None:
        await self.channel.send_update(SessionNotification(session_id=self.id, update=update))

    def record(self, record: Record, conversation: Conversation) -> Record:
        return self.log.append(record, conversation.id)

    # -- turns ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._turn is not None and not self._turn.done()

    async def prompt(self, text: str, content: list[dict[str, Any]]) -> StopReason:
        from parleyd.agent import Turn

        if self.running:
            raise RpcError(
                ErrorCode.SESSION_BUSY,
                f"session {self.id} is already running a prompt; cancel it or wait for its answer",
            )
        if self.title is None and text.strip():
            self.title = _title_from(text)
            self.record(TitleSet(title=self.title), self.root)
        self._turn = asyncio.create_task(Turn(self, self.root).run(text, content))
        return await asyncio.shield(self._turn)

    def cancel(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()

    async def end_turn(self, stop_reason: str, error: str | None = None) -> None:
        """Close the turn on disk: the record, then fsync before the prompt answers."""
        self.record(TurnEnded(stop_reason=stop_reason, error=error), self.root)
        await asyncio.to_thread(self.log.sync)
        self.index.touch(self.id, time.time(), self.title)

    async def close(self) -> None:
        """Stop a running turn (it records what it has) and release the log."""
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()
            await asyncio.gather(self._turn, return_exceptions=True)
        self.log.close()


def _title_from(text: str) -> str:
    first_line = text.strip().splitlines()[0]
    return first_line if len(first_line) <= 80 else first_line[:79] + "…"
