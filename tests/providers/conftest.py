"""The loopback server every provider test replays its streams from."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.replay_server import ReplayServer


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    async with ReplayServer() as replay:
        yield replay
