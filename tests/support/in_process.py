"""A session run in the test's own process, on a given provider and tools:
the turn engine without the daemon's process and wire around it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from parley_protocol.acp import RequestPermissionRequest, SessionNotification
from parleyd.agent import Turn
from parleyd.config import Settings
from parleyd.providers.base import Provider
from parleyd.session.conversation import Conversation, new_id
from parleyd.session.session import Session
from parleyd.store.index import SessionIndex
from parleyd.store.log import SessionLog
from parleyd.tools.permission import PermissionPolicy
from parleyd.tools.registry import ToolRegistry


class RecordingChannel:
    """The client side: keeps every update, allows every call once."""

    capabilities = None

    def __init__(self) -> None:
        self.updates: list[Any] = []
        self.on_update: Any = None

    async def send_updates_in_lane(
        self, notifications: Sequence[SessionNotification], lane: str
    ) -> None:
        for notification in notifications:
            self.updates.append(notification.update)
            if self.on_update is not None:
                await self.on_update(notification.update)

    async def request_permission(self, request: RequestPermissionRequest) -> str | None:
        return "allow_once"


def in_process_session(tmp_path: Path, provider: Provider, *tools: Any) -> Session:
    session_id = new_id("sess")
    index = SessionIndex(tmp_path / "home")
    log_file, _ = SessionLog.open(index.sessions_dir / session_id)
    return Session(
        session_id=session_id,
        cwd=tmp_path,
        settings=Settings(provider="offline"),
        log_file=log_file,
        index=index,
        root=Conversation(id=new_id("conv")),
        channel=RecordingChannel(),
        provider=provider,
        tools=ToolRegistry(tools),
        permissions=PermissionPolicy(),
        new_turn=Turn,
    )
