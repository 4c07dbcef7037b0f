"""Builds each session's provider from its settings, and owns what providers
share: one HTTP connection pool, and the built-in offline model server,
started on first use."""

from __future__ import annotations

import asyncio

import httpx

from parleyd.config import OPENAI_DEFAULT_BASE_URL, Settings
from parleyd.offline.model_server import ScriptedModelServer
from parleyd.providers.base import Provider
from parleyd.providers.openai_chat import OpenAIChatProvider


class ProviderHub:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._offline: ScriptedModelServer | None = None
        self._offline_lock = asyncio.Lock()

    async def provider_for(self, settings: Settings) -> Provider:
        settings.require_credentials()
        if self._client is None:
            self._client = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=8))
        if settings.provider == "offline":
            base_url = (await self._offline_server()).base_url
        else:
            base_url = settings.base_url or OPENAI_DEFAULT_BASE_URL
        return OpenAIChatProvider(
            base_url, settings.api_key, client=self._client, idle_timeout=settings.idle_timeout
        )

    async def _offline_server(self) -> ScriptedModelServer:
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
