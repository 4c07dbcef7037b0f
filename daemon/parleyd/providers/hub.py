"""Builds each session's provider from its settings, and owns what providers
share: one HTTP connection pool, and the built-in offline model server.

Both are set up, and httpx and the provider's module imported, when a session
first streams: loading a stored session, or creating one, needs neither."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from parleyd.config import ConfigError, Settings
from parleyd.providers.base import Provider
from parleyd.providers.call_layer import Link, ProviderChain, RetryPolicy

if TYPE_CHECKING:
    import httpx

    from parleyd.offline.model_server import ScriptedModelServer
    from parleyd.providers.http_call import Connection


class ProviderHub:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._offline: ScriptedModelServer | None = None
        self._offline_lock = asyncio.Lock()

    def provider_for(self, settings: Settings) -> Provider:
        """The provider a session with these settings streams from: its own,
        then its fallbacks (see `call_layer`). A ConfigError now if none of
        them can work, naming what the session's own provider needs."""
        chain = [settings, *settings.fallbacks()]
        if not any(_configured(link) for link in chain):
            settings.require_credentials()
        links = [
            Link(link.provider, link.model_name, functools.partial(self._connect, link))
            for link in chain
        ]
        return ProviderChain(links, RetryPolicy(attempts=settings.model_attempts), ConfigError)

    async def _connect(self, settings: Settings) -> Provider:
        """The provider itself, with the shared pool (and the offline server) it uses."""
        settings.require_credentials()
        from parleyd.providers.transport import model_client

        if self._client is None:
            self._client = model_client()
        connection: Connection = {"client": self._client, "idle_timeout": settings.idle_timeout}
        match settings.api:
            case "openai-responses":
                from parleyd.providers.openai_responses import (
                    OpenAIResponsesProvider,
                    reasoning_for,
                )

                return OpenAIResponsesProvider(
                    settings.endpoint,
                    settings.api_key,
                    reasoning=reasoning_for(settings.model_name),
                    **connection,
                )
            case "openai" | "offline":
                from parleyd.providers.openai_chat import OpenAIChatProvider

                base_url = settings.endpoint
                if settings.provider == "offline":
                    base_url = (await self._offline_server(settings.offline_pace)).base_url
                return OpenAIChatProvider(base_url, settings.api_key, **connection)
            case "ollama":
                from parleyd.providers.ollama import OllamaProvider, host_url

                return OllamaProvider(
                    host_url(settings.endpoint),
                    settings.api_key,
                    num_ctx=settings.context_size,
                    **connection | {"load_timeout": settings.model_load_timeout},
                )
            case "anthropic":
                from parleyd.providers.anthropic import AnthropicProvider

                try:
                    return AnthropicProvider(
                        settings.endpoint,
                        settings.api_key,
                        cache_ttl=settings.prompt_cache_ttl,
                        thinking_budget=settings.thinking_budget,
                        **connection,
                    )
                except ValueError as exc:  # a thinking budget it does not take
                    raise ConfigError(str(exc)) from None
            case "gemini":
                from parleyd.providers.gemini import GeminiProvider

                return GeminiProvider(
                    settings.endpoint,
                    settings.api_key,
                    thinking_budget=settings.thinking_budget,
                    **connection,
                )

    async def _offline_server(self, pace: float) -> ScriptedModelServer:
        """The daemon's one scripted model server, at the pace of the first
        session that streams from it."""
        from parleyd.offline.model_server import ScriptedModelServer

        async with self._offline_lock:
            if self._offline is None:
                server = ScriptedModelServer(pace=pace)
                await server.start()
                self._offline = server
            return self._offline

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._offline is not None:
            await self._offline.close()


def _configured(settings: Settings) -> bool:
    try:
        settings.require_credentials()
    except ConfigError:
        return False
    return True
