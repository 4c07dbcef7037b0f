"""Where a session's turns hold while it is paused.

A pause stops nothing abruptly: every turn of the session (the root's and its
sub-agents') checks the gate at its step boundaries (before a model call,
before a tool call starts) and waits there while the session is paused, and a
model response streaming when the pause comes is cut at once, its stream
closed and what it sent kept. The turns' tasks and the open `session/prompt`
live on, so resuming is opening the gate.

A paused session let go (closed, its client gone) stops its turns without
their closing: from then on they record nothing, so the log keeps the turn
open and paused, as a later load resumes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio


class PauseGate:
    def __init__(self) -> None:
        self._opened: anyio.Event | None = None
        # The model streams running now, each cut by a pause.
        self._streams: set[anyio.CancelScope] = set()
        self._quiet: anyio.Event | None = None
        self.released = False

    @property
    def paused(self) -> bool:
        return self._opened is not None

    def release(self) -> None:
        """The paused session is let go: its turns write nothing more."""
        self.released = True

    def pause(self) -> None:
        if self._opened is None:
            self._opened = anyio.Event()
        for scope in self._streams:
            scope.cancel()

    def resume(self) -> None:
        if self._opened is not None:
            self._opened.set()
            self._opened = None

    async def wait_while_paused(self) -> None:
        """Return at once, or when the session resumes (a cancel still stops it)."""
        while self._opened is not None:
            await self._opened.wait()

    async def streams_stopped(self) -> None:
        """Until no model stream runs: each was cut and has kept what it sent."""
        while self._streams:
            self._quiet = anyio.Event()
            await self._quiet.wait()

    @contextmanager
    def model_stream(self) -> Iterator[anyio.CancelScope]:
        """A scope for one model response that a pause cancels; its
        `cancelled_caught` tells the caller the response was cut by one."""
        scope = anyio.CancelScope()
        if self.paused:
            scope.cancel()
        self._streams.add(scope)
        try:
            with scope:
                yield scope
        finally:
            self._streams.discard(scope)
            if not self._streams and self._quiet is not None:
                self._quiet.set()
