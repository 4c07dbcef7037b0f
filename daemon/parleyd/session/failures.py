"""How a turn fails, apart from the agent loop so that handlers can catch it
without importing the loop (and everything it needs) at start-up."""

from __future__ import annotations

from parleyd.providers.events import StreamError


class TurnFailed(Exception):
    """The provider could not produce a response; the prompt answers with an error."""

    def __init__(self, error: StreamError) -> None:
        super().__init__(error.message)
        self.error = error
