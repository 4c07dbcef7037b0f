"""A recording client for the ACP Python SDK (`agent-client-protocol`), a real
ACP client written by others: it answers permission requests as told, keeps
every update, and checks every frame the daemon sends against ACP's schema."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import acp
from acp.connection import StreamDirection, StreamEvent
from acp.schema import AllowedOutcome, DeniedOutcome, RequestPermissionResponse

from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import PARLEYD


@dataclass
class RecordingClient:
    """`permission_answer`: the option id to pick, or None to answer `cancelled`."""

    permission_answer: str | None = "allow_once"
    updates: list[Any] = field(default_factory=list)
    permission_requests: list[Any] = field(default_factory=list)
    commands: list[Any] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    checker: FrameChecker = field(default_factory=FrameChecker)

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **_: Any
    ) -> RequestPermissionResponse:
        self.permission_requests.append(tool_call)
        if self.permission_answer is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=self.permission_answer)
        )

    async def session_update(self, session_id: str, update: Any, **_: Any) -> None:
        # The slash commands are said of the session on every open, not of its
        # conversation: kept apart, so `updates` is what a replay must repeat.
        if update.session_update == "available_commands_update":
            self.commands.append(update)
            return
        self.updates.append(update)
        self._changed.set()

    async def wait_for(self, wanted: Callable[[Any], bool]) -> Any:
        """The first update, so far or to come, for which `wanted` is true."""
        while True:
            for update in self.updates:
                if wanted(update):
                    return update
            self._changed.clear()
            await self._changed.wait()

    def kinds(self) -> list[str]:
        return [update.session_update for update in self.updates]

    def text(self, kind: str = "agent_message_chunk") -> str:
        return "".join(u.content.text for u in self.updates if u.session_update == kind)

    def observe(self, event: StreamEvent) -> None:
        """Every frame the daemon sends is validated against the ACP schema."""
        if event.direction is StreamDirection.OUTGOING:
            self.checker.sent(event.message)
        else:
            self.frames.append(event.message)
            self.checker.received(event.message)


@asynccontextmanager
async def acp_daemon(
    env: Mapping[str, str], client: RecordingClient
) -> AsyncIterator[tuple[acp.core.ClientSideConnection, asyncio.subprocess.Process]]:
    async with acp.spawn_agent_process(client, *PARLEYD, env=env, observers=[client.observe]) as (
        connection,
        process,
    ):
        yield connection, process
