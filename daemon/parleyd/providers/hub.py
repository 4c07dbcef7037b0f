"""Builds each session's provider from its settings, and owns what providers
share: one HTTP connection pool, and the built-in offline model server.

Both are set up, and httpx imported, when a session first streams: loading a
stored session, or creating one, needs neither."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from parleyd.config import OPENAI_DEFAULT_BASE_URL, Settings
from parleyd.providers.base import Provider
from parleyd.providers.events import ProviderEvent
from parleyd.providers.messages import ModelRequest

if TYPE_CHECKING:
    import httpx

    from parleyd.offline.model_server import ScriptedModelServer


class ProviderHub:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._offline: ScriptedModelServer | None = None
        self._offline_lock = asyncio.Lock()

    def provider_for(self, settings: Settings) -> Provider:
        """The provider a session with these settings streams from; a
        ConfigError now if they cannot work (a missing API key)."""
        settings.require_credentials()
        return _ConnectedOnFirstStream(self, settings)

    async def connect(self, settings: Settings) -> Provider:
        """The provider itself, with the shared pool (and the offline server) it uses."""
        from parleyd.providers.openai_chat import OpenAIChatProvider
        from parleyd.providers.transport import model_client

        if self._client is None:
            self._client = model_client()
        if settings.provider == "offline":
            base_url = (await self._offline_server()).base_url
        else:
            base_url = settings.base_url or OPENAI_DEFAULT_BASE_URL
        return OpenAIChatProvider(
            base_url, settings.api_key, client=self._client, idle_timeout=settings.idle_timeout
        )

    async def _offline_server(self) -> ScriptedModelServer:
        from parleyd.offline.model_server import ScriptedModelServer

        async with self._offline_lock:
            if self._offline is None:
                server = ScriptedModelServer()
                await server.start()
                self._offline = server
            return self._offline

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._offline is not None:
            await self._offline.close()


class _ConnectedOnFirstStream:
    """A session's provider, connected through its hub when it first streams."""

    def __init__(self, hub: ProviderHub, settings: Settings) -> None:
        self.name: str = settings.provider
        self._hub = hub
        self._settings = settings
        self._provider: Provider | None = None

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        if self._provider is None:
            return self._connecting_stream(request)
        # Connected: the provider's own stream, with no generator in between.
        return self._provider.stream(request)

    async def _connecting_stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        if self._provider is None:
            self._provider = await self._hub.connect(self._settings)
        async for event in self._provider.stream(request):
            yield event

    async def aclose(self) -> None:
        if self._provider is not None:
            await self._provider.aclose()
