"""The agent's CPU time per streamed delta: parleyd beside the msgspec floor.

Both stream the same local provider's deltas through one session to a client
that reads every frame at once; the figure is the agent process's user plus
system time over the measured turns, divided by the deltas they carried.
"""

from __future__ import annotations

from collections.abc import Sequence

from provider import BenchProvider, Plan
from report import Row
from servers import MSGSPEC_FLOOR_AGENT, PARLEYD, Daemon
from streaming import WARM_UP, through_daemon

CPU_PER_DELTA_BAR_US = 10.0


async def cpu_per_delta_us(
    argv: Sequence[str], provider: BenchProvider, deltas: int, repeats: int
) -> float:
    async with Daemon.running(provider.base_url, argv) as agent:
        await through_daemon(agent, provider, WARM_UP)  # untimed: loads the code paths
        before = agent.cpu_seconds
        for _ in range(repeats):
            await through_daemon(agent, provider, Plan(deltas))
        return (agent.cpu_seconds - before) / (deltas * repeats) * 1e6


async def run(deltas: int, repeats: int) -> list[Row]:
    # One after the other: side by side, each would take CPU from the other's client.
    async with BenchProvider() as provider:
        parleyd = await cpu_per_delta_us(PARLEYD, provider, deltas, repeats)
        floor = await cpu_per_delta_us(MSGSPEC_FLOOR_AGENT, provider, deltas, repeats)
    return [
        Row(
            measurement=f"agent CPU per delta ({repeats} x {deltas:,}, one session)",
            unit="µs",
            parley=parleyd,
            baseline=floor,
            baseline_name="msgspec floor",
            bar=f"<= {CPU_PER_DELTA_BAR_US:g} µs",
            meets=parleyd <= CPU_PER_DELTA_BAR_US,
        )
    ]
