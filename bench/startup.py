"""Spawn to `initialize` answered: parleyd beside a bare pygls server and a minimal msgspec one."""

from __future__ import annotations

import time
from collections.abc import Sequence

from report import Row
from rpc_client import Framing
from servers import INITIALIZE, MINIMAL_SERVER, PARLEYD, PYGLS_SERVER, scratch, spawn
from stats import median, ms

# pygls is the engine Parley is built on: start-up may cost a quarter more than it alone.
PYGLS_BAR = 1.25


async def time_to_initialize(argv: Sequence[str], framing: Framing) -> float:
    """Milliseconds from asking for the process to holding its `initialize` answer."""
    with scratch() as where:
        start = time.monotonic_ns()
        client = await spawn(argv, where, framing)
        try:
            await client.request("initialize", INITIALIZE)
            return ms(time.monotonic_ns() - start)
        finally:
            await client.close()


async def run(runs: int) -> list[Row]:
    servers: dict[str, tuple[Sequence[str], Framing]] = {
        "parleyd": (PARLEYD, "ndjson"),
        "minimal": (MINIMAL_SERVER, "ndjson"),
        "pygls": (PYGLS_SERVER, "content-length"),
    }
    # One untimed round first, so the first timed run does not pay to fill the
    # page cache with the interpreter and site-packages.
    for argv, framing in servers.values():
        await time_to_initialize(argv, framing)
    samples: dict[str, list[float]] = {name: [] for name in servers}
    # Interleaved rounds, so drift in the machine's load touches every server alike.
    for _ in range(runs):
        for name, (argv, framing) in servers.items():
            samples[name].append(await time_to_initialize(argv, framing))
    parleyd, pygls, minimal = (median(samples[name]) for name in ("parleyd", "pygls", "minimal"))
    detail = {"runs": runs, "samples_ms": samples}
    return [
        Row(
            measurement="start-up to initialize (median)",
            unit="ms",
            parley=parleyd,
            baseline=pygls,
            baseline_name="bare pygls",
            bar=f"<= {PYGLS_BAR}x pygls",
            meets=parleyd <= PYGLS_BAR * pygls,
            detail=detail,
        ),
        Row(
            measurement="start-up to initialize (median)",
            unit="ms",
            parley=parleyd,
            baseline=minimal,
            baseline_name="msgspec+asyncio",
        ),
    ]
