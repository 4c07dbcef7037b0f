"""What the agent loop needs from a provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from parleyd.providers.events import ProviderEvent
from parleyd.providers.messages import ModelRequest


class Provider(Protocol):
    """A model API. `stream` never raises for provider failures: it ends with a
    `StreamError` event instead (see `events.py`)."""

    name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]: ...

    async def aclose(self) -> None: ...
