"""How fast a `session/cancel` ends a streaming turn: cancel sent to `{stopReason: cancelled}`."""

from __future__ import annotations

import asyncio
import time

from provider import BenchProvider, Plan
from report import Row
from servers import Daemon, UnexpectedAnswer
from stats import median, ms

# Other ACP agents take 4 to 60 ms; Parley means to beat the fastest of them.
FASTEST_OTHER_AGENT_MS = 4.0
STREAMING_FOR = 0.2
# Long enough never to end on its own before the cancel lands.
ENDLESS = Plan(deltas=1_000_000, interval=0.002)


async def cancel_once(daemon: Daemon, provider: BenchProvider) -> float:
    session = await daemon.new_session()
    provider.plan = ENDLESS
    streaming = asyncio.Event()
    daemon.on_chunk = lambda _text, _received_ns: streaming.set()
    turn = asyncio.create_task(daemon.prompt(session, "bench"))
    await streaming.wait()
    await asyncio.sleep(STREAMING_FOR)
    start = time.monotonic_ns()
    daemon.cancel(session)
    stop = await turn
    elapsed = ms(time.monotonic_ns() - start)
    daemon.on_chunk = None
    if stop != "cancelled":
        raise UnexpectedAnswer(f"a cancelled turn ended {stop!r}")
    return elapsed


async def run(runs: int) -> list[Row]:
    async with BenchProvider() as provider, Daemon.running(provider.base_url) as daemon:
        await cancel_once(daemon, provider)  # untimed: the first cancel loads its code paths
        samples = [await cancel_once(daemon, provider) for _ in range(runs)]
    figure = median(samples)
    return [
        Row(
            measurement="cancel to stopReason cancelled (median)",
            unit="ms",
            parley=figure,
            baseline=FASTEST_OTHER_AGENT_MS,
            baseline_name="fastest other agent",
            bar=f"<= {FASTEST_OTHER_AGENT_MS:g} ms",
            meets=figure <= FASTEST_OTHER_AGENT_MS,
            detail={"samples_ms": samples},
        )
    ]
