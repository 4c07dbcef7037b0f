"""Resident memory: parleyd idle beside bare pygls, and while its client reads nothing."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from provider import BenchProvider, DeltaClock, Plan
from report import Row
from rpc_client import rss_mb
from servers import INITIALIZE, PYGLS_SERVER, Daemon, UnexpectedAnswer, scratch, spawn

RSS_BAR_MB = 80.0
# Frames held for a client that reads nothing would be 150 bytes or more a delta,
# 15 MB for 100,000; their text merged is 4 bytes a delta. Within this much of
# what the same turn costs when the client reads, nothing grew with the deltas held.
UNREAD_EXTRA_BAR_MB = 5.0
# Long enough for start-up garbage to be collected and lazy imports to settle.
SETTLE = 1.0
FIRST_TURN = Plan(deltas=50)


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


@dataclass(frozen=True)
class Unread:
    """One turn streamed flat out to a client that read nothing for a while at its
    start, in a daemon of its own."""

    idle_mb: float
    peak_mb: float
    sent_while_unread: int
    turn_seconds: float

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.idle_mb


async def unread_turn(deltas: int, unread_for: float) -> Unread:
    """`unread_for` 0 is a client that reads all along."""
    async with BenchProvider() as provider, Daemon.running(provider.base_url) as daemon:
        session = await daemon.new_session()
        # A first turn loads the code a turn needs, which is not growth.
        provider.plan = FIRST_TURN
        await daemon.prompt(session, "bench")
        await asyncio.sleep(SETTLE)
        idle = daemon.rss_mb
        provider.plan = Plan(deltas)
        clock = DeltaClock(deltas)
        daemon.reset_peak_rss()
        start = time.monotonic()
        with daemon.watching(session, clock.on_text):
            with daemon.reading_nothing():
                turn = asyncio.create_task(daemon.prompt(session, "bench"))
                await asyncio.sleep(unread_for)
                sent = len(provider.sent_ns)
            stop = await turn
        turn_seconds = time.monotonic() - start
        peak = daemon.peak_rss_mb
    if stop != "end_turn" or not clock.complete:
        raise UnexpectedAnswer(
            f"turn ended {stop!r} after {len(clock.received_ns)} of {deltas} deltas"
        )
    return Unread(idle, peak, sent, turn_seconds)


async def run(unread_deltas: int, unread_for: float) -> list[Row]:
    # Side by side: both only sleep while they settle, so neither disturbs the other.
    parleyd, pygls = await asyncio.gather(parleyd_idle_rss(), pygls_idle_rss())
    reading = await unread_turn(unread_deltas, 0.0)
    unread = await unread_turn(unread_deltas, unread_for)
    stalled = f"client reading nothing {unread_for:g} s of {unread_deltas:,} deltas"
    return [
        Row(
            measurement="idle RSS (initialize + session/new)",
            unit="MB",
            parley=parleyd,
            baseline=pygls,
            baseline_name="bare pygls",
            bar=f"<= {RSS_BAR_MB:.0f} MB",
            meets=parleyd <= RSS_BAR_MB,
        ),
        Row(
            measurement=f"peak RSS, {stalled}",
            unit="MB",
            parley=unread.peak_mb,
            baseline=unread.idle_mb,
            baseline_name="same daemon idle",
            bar=f"<= {RSS_BAR_MB:.0f} MB",
            meets=unread.peak_mb <= RSS_BAR_MB,
            detail={
                "deltas_sent_while_unread": unread.sent_while_unread,
                "turn_seconds": unread.turn_seconds,
            },
        ),
        Row(
            measurement=f"RSS growth, {stalled}",
            unit="MB",
            parley=unread.growth_mb,
            baseline=reading.growth_mb,
            baseline_name="client reading",
            bar=f"<= reading + {UNREAD_EXTRA_BAR_MB:g} MB",
            meets=unread.growth_mb <= reading.growth_mb + UNREAD_EXTRA_BAR_MB,
            detail={"reading_turn_seconds": reading.turn_seconds},
        ),
    ]
