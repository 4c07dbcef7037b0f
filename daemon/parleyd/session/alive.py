"""Word to the client while a model is slow to answer (a model loading, a long
silent think), so a UI can show that the daemon is alive and what it waits for.

A watchdog runs beside each model call and costs the stream nothing: it never
hears of a delta, it looks a few times per interval at how far the response
has come (`Progress.mark`, which the turn reads off what it keeps anyway).
Once the response has come no further for a whole interval, the watchdog sends
a `ModelStatus` saying what the client waits for and for how long, again each
interval while the silence lasts; when anything comes again, or the call ends,
one more status says the wait is over. A call cancelled while the client waits
says nothing more: the end of its turn tells the client.

Statuses are liveness, not history: nothing records them, so no replay has them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from types import TracebackType

from parleyd.session.wire import ModelStatus, WaitingFor

log = logging.getLogger(__name__)

# How often the watchdog looks: the first status comes at most a quarter
# interval after a whole one of silence, and the end of a wait is told within a
# quarter interval, and within `_LONGEST_LOOK` however long the interval.
_LOOKS_PER_INTERVAL = 4
_LONGEST_LOOK = 0.25


@dataclass(frozen=True)
class Progress:
    """How far a response has come: `mark` changes whenever it grows, and
    `waiting_for` says what the client waits for while it does not."""

    mark: Hashable
    waiting_for: WaitingFor


class ModelWatch:
    """`async with ModelWatch(interval, progress, send):` around one model call.
    An `interval` of 0 (or less) watches nothing."""

    def __init__(
        self,
        interval: float,
        progress: Callable[[], Progress],
        send: Callable[[ModelStatus], Awaitable[None]],
    ) -> None:
        self._interval = interval
        self._progress = progress
        self._send = send
        self._task: asyncio.Task[None] | None = None
        # A status that the wait is on may have gone out, and none that it is
        # over surely has (a send cut short by the call's end may have or not).
        self._waiting = False

    async def __aenter__(self) -> None:
        if self._interval > 0:
            # A task of its own rather than a task group's, which would wrap
            # the call's exceptions (a provider failure) in an exception group.
            self._task = asyncio.create_task(self._watch(), name="model watchdog")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is None:
            return
        self._task.cancel()
        if self._waiting and (exc is None or isinstance(exc, Exception)):
            await self._send(ModelStatus(waiting=None))

    async def _watch(self) -> None:
        try:
            await self._look_until_cancelled()
        except Exception:
            # Liveness is a courtesy: its failure must never stop the turn.
            log.exception("the model watchdog stopped; no more statuses for this call")

    async def _look_until_cancelled(self) -> None:
        interval = self._interval
        look = min(interval / _LOOKS_PER_INTERVAL, _LONGEST_LOOK)
        seen = self._progress().mark
        quiet_since = time.monotonic()
        told = 0  # the whole intervals of this silence a status has told
        while True:
            await asyncio.sleep(look)
            progress = self._progress()
            now = time.monotonic()
            if progress.mark != seen:
                seen, quiet_since, told = progress.mark, now, 0
                if self._waiting:
                    await self._send(ModelStatus(waiting=None))
                    self._waiting = False
            elif (quiet := now - quiet_since) >= (told + 1) * interval:
                # A send held up by a client that lags must not be followed by a burst.
                told = int(quiet // interval)
                self._waiting = True
                await self._send(ModelStatus(progress.waiting_for, round(quiet, 2)))
