"""`session/list` over many stored sessions beside a few: the first page, and
every page by cursor, in a daemon that has listed once already."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from report import Row
from rpc_client import RpcClient
from servers import INITIALIZE, PARLEYD, UnexpectedAnswer, scratch, spawn
from stats import median, ms
from stored import ONE_TURN, write_sessions

LIST_BAR_MS = 100.0
BASELINE_SESSIONS = 10


@dataclass
class Lister:
    """A daemon on a home of `sessions` listed sessions, and its timings so far."""

    client: RpcClient
    cwd: str
    sessions: int
    first_page_ms: list[float] = field(default_factory=list)
    walk_ms: list[float] = field(default_factory=list)
    pages: int = 0

    async def page(self, cursor: str | None = None) -> dict[str, Any]:
        params = {"cwd": self.cwd} if cursor is None else {"cwd": self.cwd, "cursor": cursor}
        result: dict[str, Any] = await self.client.request("session/list", params)
        return result

    async def time_first_page(self) -> float:
        start = time.monotonic_ns()
        await self.page()
        return ms(time.monotonic_ns() - start)

    async def time_walk(self) -> float:
        """Every page, each asked for with the cursor of the one before."""
        start = time.monotonic_ns()
        result = await self.page()
        listed, pages = len(result["sessions"]), 1
        while cursor := result.get("nextCursor"):
            result = await self.page(cursor)
            listed, pages = listed + len(result["sessions"]), pages + 1
        elapsed = ms(time.monotonic_ns() - start)
        if listed != self.sessions:
            raise UnexpectedAnswer(f"listed {listed} of {self.sessions} sessions")
        self.pages = pages
        return elapsed


@asynccontextmanager
async def listing(sessions: int) -> AsyncIterator[Lister]:
    with scratch() as where:
        write_sessions(where.home, where.work, ONE_TURN, sessions)
        client = await spawn(PARLEYD, where)
        try:
            await client.request("initialize", INITIALIZE)
            yield Lister(client, str(where.work), sessions)
        finally:
            await client.close()


async def run(sessions: int, repeats: int) -> list[Row]:
    async with AsyncExitStack() as daemons:
        few = await daemons.enter_async_context(listing(BASELINE_SESSIONS))
        many = await daemons.enter_async_context(listing(sessions))
        listers = (few, many)
        # Untimed: the first session request of a daemon imports its session
        # modules and opens the index, which session/load's baseline shows.
        for lister in listers:
            await lister.page()
        # Interleaved, so drift in the machine's load touches both daemons alike.
        for _ in range(repeats):
            for lister in listers:
                lister.first_page_ms.append(await lister.time_first_page())
                lister.walk_ms.append(await lister.time_walk())
    return _rows(few, many)


def _rows(few: Lister, many: Lister) -> list[Row]:
    def row(measurement: str, samples: list[float], baseline: list[float]) -> Row:
        return Row(
            measurement=measurement,
            unit="ms",
            parley=median(samples),
            baseline=median(baseline),
            baseline_name=f"{few.sessions} sessions",
            bar=f"< {LIST_BAR_MS:g} ms",
            meets=median(samples) < LIST_BAR_MS,
            detail={"samples_ms": samples, "baseline_samples_ms": baseline},
        )

    over = f"{many.sessions:,} sessions"
    return [
        row(f"session/list first page, {over} (median)", many.first_page_ms, few.first_page_ms),
        row(
            f"session/list all {many.pages} pages by cursor, {over} (median)",
            many.walk_ms,
            few.walk_ms,
        ),
    ]
