"""What every connection of one daemon shares: the settings, the store, the
open sessions and the providers (DESIGN.md, "One runtime, many connections").

A connection owns only its framing, its `initialize` capabilities and the
channel its sessions' updates go to (`acp_agent.AcpChannel`). When it goes
away, each session attached to it is let go: a running turn runs on,
unattended, in a daemon that serves many editors and keeps turns
(`keeps_turns`), for the next editor to attach to, and the session is closed
once the turn is over; every other session is paused if it ran and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from parleyd.config import Settings

if TYPE_CHECKING:
    from parleyd.session.conversation import Conversation
    from parleyd.session.manager import SessionManager
    from parleyd.session.port import TurnHost, TurnLoop
    from parleyd.session.session import ClientChannel, Session

log = logging.getLogger(__name__)

CLIENT_GONE = "The editor went away while the turn ran."
# Pausing stops the model streams and syncs the logs: quick, but a daemon
# whose client left must exit at once whatever a stream or a disk does.
_PAUSING_WHEN_LEFT_SECONDS = 1.0


def _new_turn(host: TurnHost, conversation: Conversation, turn_id: str) -> TurnLoop:
    # The loop is imported with the first prompt: a session only created or
    # loaded never pays for it.
    from parleyd.agent import Turn

    return Turn(host, conversation, turn_id)


class Runtime:
    def __init__(self, settings: Settings, home: Path, *, keeps_turns: bool) -> None:
        self.settings = settings
        self.home = home
        self.keeps_turns = keeps_turns
        self.connections = 0
        self._sessions: SessionManager | None = None
        # Set whenever what keeps the daemon busy may have changed.
        self._changed = asyncio.Event()
        self._watchers: set[asyncio.Task[None]] = set()

    @property
    def sessions(self) -> SessionManager:
        # Built, and its modules imported (httpx, the agent loop, the tools),
        # on first use: `initialize` answers without them, which keeps the
        # editor's start-up wait at about that of a bare pygls server.
        if self._sessions is None:
            from parleyd.providers.hub import ProviderHub
            from parleyd.session.manager import SessionManager

            self._sessions = SessionManager(
                self.home, self.settings, ProviderHub(), new_turn=_new_turn
            )
        return self._sessions

    def connected(self) -> None:
        self.connections += 1
        self._changed.set()

    async def editor_left(self, channel: ClientChannel) -> None:
        """The connection of `channel` went away: let its sessions go."""
        self.connections -= 1
        self._changed.set()
        if self._sessions is None:
            return
        # With the sessions, which exist here: not at start-up.
        from parleyd.session.errors import WrongTurnState
        from parleyd.session.session import TurnState
        from parleyd.session.unattended import UNATTENDED

        mine = [s for s in self._sessions.sessions.values() if s.channel is channel]
        kept = [s for s in mine if self.keeps_turns and s.state is TurnState.RUNNING]
        for session in kept:
            session.rehome(UNATTENDED)
            watcher = asyncio.get_running_loop().create_task(self._close_when_over(session))
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)
        let_go = [s for s in mine if s not in kept]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_PAUSING_WHEN_LEFT_SECONDS):
                for session in let_go:
                    with contextlib.suppress(WrongTurnState):
                        await session.pause(CLIENT_GONE, cancel_running=False)
        for session in let_go:
            await self._sessions.close(session.id)

    async def _close_when_over(self, session: Session) -> None:
        """An unattended session is closed once its turn (and the queue's
        turns after it) are over, unless an editor attached meanwhile."""
        from parleyd.session.unattended import UNATTENDED

        while session.channel is UNATTENDED and await session.turn_over():
            pass
        sessions = self.sessions
        if session.channel is UNATTENDED and sessions.sessions.get(session.id) is session:
            log.info("session %s: its unattended turn is over, closing it", session.id)
            await sessions.close(session.id)
        self._changed.set()

    @property
    def idle(self) -> bool:
        """No editor connected, and no turn running on unattended."""
        return self.connections == 0 and not (self._sessions and self._sessions.sessions)

    async def until_idle_for(self, seconds: float) -> None:
        """Return once the daemon has been idle for `seconds` on end."""
        while True:
            self._changed.clear()
            if not self.idle:
                await self._changed.wait()
                continue
            try:
                async with asyncio.timeout(seconds):
                    await self._changed.wait()
            except TimeoutError:
                if self.idle:
                    return

    async def shutdown(self) -> None:
        for watcher in list(self._watchers):
            watcher.cancel()
        if self._sessions is not None:
            await self._sessions.close_all()
