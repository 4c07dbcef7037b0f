"""A session's model calls: retried while nothing has been said, then handed
to the next provider of the chain.

A call that fails before its first output (a refused connection, a 429, a 5xx,
Anthropic's 529, an `overloaded_error` before any text) goes again after a
jittered exponential backoff, or after the server's `Retry-After` when it sends
one (within `RetryPolicy.longest_wait`). Once output has reached the client a
failure is final: the client has shown the start of an answer that a new call
would not continue, and the error says so. Each retry and each hand-over is an
event of the stream (`Retrying`, `FallingBack`), so the client is told as it
happens.

The chain is the session's provider and then its `fallback` providers; the
next takes the call when one is not configured (no key), refuses the key, or
has failed every try. Whichever answers gets the history repaired first
(`repair.py`).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeGuard

import msgspec

from parleyd.providers.base import Provider
from parleyd.providers.events import (
    FallingBack,
    ProviderEvent,
    Retrying,
    StreamError,
    Usage,
)
from parleyd.providers.messages import ModelRequest
from parleyd.providers.repair import for_provider, repaired

# Errors that make the next provider of the chain worth a try: this one cannot
# answer (its key, its tries). The rest (a bad request, a context overflow)
# would fail anywhere, or are the turn's to handle.
_HANDED_ON = frozenset({"auth", "rate_limit", "server", "network", "timeout"})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_delay: float = 1.0
    longest_delay: float = 30.0
    # A server asking for a longer wait than this is not waited for: the call
    # goes to the next provider, or fails, at once.
    longest_wait: float = 60.0
    jitter: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int, error: StreamError) -> float | None:
        """Seconds before try `attempt + 1` after `error`, or None: no more tries."""
        if attempt >= self.attempts or not error.retryable:
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.longest_wait else None
        backoff = min(self.longest_delay, math.ldexp(self.first_delay, attempt - 1))
        return backoff * (0.5 + self.jitter() / 2)


@dataclass(frozen=True)
class Link:
    """One provider of a chain: `connect` builds it on first use, and raises
    whatever says it is not configured (a missing key)."""

    name: str
    model: str
    connect: Callable[[], Awaitable[Provider]]


class ProviderChain:
    """The Provider a session streams from: its links, tried in order."""

    def __init__(
        self,
        links: Sequence[Link],
        policy: RetryPolicy,
        unconfigured: type[Exception],
    ) -> None:
        self.name = links[0].name
        self._links = links
        self._policy = policy
        self._unconfigured = unconfigured
        self._connected: dict[int, Provider] = {}

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        failure: StreamError | None = None
        last = len(self._links) - 1
        messages = repaired(request.messages)
        for index, link in enumerate(self._links):
            if failure is not None:
                yield FallingBack(provider=link.name, model=link.model, error=failure)
            try:
                provider = await self._provider(index)
            except self._unconfigured as exc:
                failure = StreamError(kind="auth", message=f"{link.name}: {exc}")
                continue
            readable = for_provider(messages, link.name)
            call = msgspec.structs.replace(request, model=link.model, messages=readable)
            spoke = False
            async for event in self._tries(provider, call):
                if _hands_on(event) and not spoke and index < last:
                    failure = event
                    break
                spoke = spoke or not isinstance(event, Usage | Retrying)
                yield event
            else:
                return
        if failure is not None:
            yield failure  # the last link is not configured either

    async def _tries(
        self, provider: Provider, request: ModelRequest
    ) -> AsyncIterator[ProviderEvent]:
        """The provider's stream, again while it fails before any output."""
        attempt = 1
        while True:
            spoke = False
            failure: StreamError | None = None
            async for event in provider.stream(request):
                if isinstance(event, StreamError):
                    failure = event
                    break
                spoke = spoke or not isinstance(event, Usage)
                yield event
            if failure is None:
                return
            if spoke:
                yield _after_output(failure)
                return
            delay = self._policy.delay(attempt, failure)
            if delay is None:
                yield _exhausted(failure, attempt)
                return
            attempt += 1
            yield Retrying(
                attempt=attempt, attempts=self._policy.attempts, delay=delay, error=failure
            )
            await asyncio.sleep(delay)

    async def _provider(self, index: int) -> Provider:
        if (provider := self._connected.get(index)) is None:
            provider = self._connected[index] = await self._links[index].connect()
        return provider

    async def aclose(self) -> None:
        for provider in self._connected.values():
            await provider.aclose()


def _hands_on(event: ProviderEvent) -> TypeGuard[StreamError]:
    """A failure the next provider may not have."""
    return isinstance(event, StreamError) and event.kind in _HANDED_ON


def _after_output(error: StreamError) -> StreamError:
    # Final: what was said stands, and a new call would not continue it.
    return msgspec.structs.replace(
        error, retryable=False, message=f"{error.message} (not retried: the answer had begun)"
    )


def _exhausted(error: StreamError, attempts: int) -> StreamError:
    if attempts == 1:
        return error
    return msgspec.structs.replace(error, message=f"{error.message} (after {attempts} tries)")
