"""Idle resident memory: parleyd after `initialize` and one `session/new`, beside bare pygls."""

from __future__ import annotations

import asyncio

from report import Row
from rpc_client import rss_mb
from servers import INITIALIZE, PYGLS_SERVER, Daemon, scratch, spawn

RSS_BAR_MB = 80.0
# Long enough for start-up garbage to be collected and lazy imports to settle.
SETTLE = 1.0


async def parleyd_idle_rss() -> float:
    async with Daemon.running() as daemon:
        await daemon.new_session()
        await asyncio.sleep(SETTLE)
        return daemon.rss_mb


async def pygls_idle_rss() -> float:
    with scratch() as where:
        client = await spawn(PYGLS_SERVER, where, "content-length")
        try:
            await client.request("initialize", INITIALIZE)
            await asyncio.sleep(SETTLE)
            return rss_mb(client.pid)
        finally:
            await client.close()


async def run() -> list[Row]:
    # Side by side: both only sleep while they settle, so neither disturbs the other.
    parleyd, pygls = await asyncio.gather(parleyd_idle_rss(), pygls_idle_rss())
    return [
        Row(
            measurement="idle RSS (initialize + session/new)",
            unit="MB",
            parley=parleyd,
            baseline=pygls,
            baseline_name="bare pygls",
            bar=f"<= {RSS_BAR_MB:.0f} MB",
            meets=parleyd <= RSS_BAR_MB,
        )
    ]
