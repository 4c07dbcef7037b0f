"""`session/load` in a fresh daemon, request to answer: long sessions beside a one-turn one.

The answer comes after the replay, so the time covers opening the log, reading
every record, rebuilding the conversations and sending every update.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass

from report import Row
from rpc_client import Message, rss_mb
from servers import INITIALIZE, PARLEYD, Scratch, UnexpectedAnswer, scratch, spawn
from stats import median, ms
from stored import ONE_TURN, Shape, write_sessions

LOAD_BAR_MS = 300.0


@dataclass(frozen=True)
class Load:
    ms: float
    updates: int
    peak_rss_mb: float


@dataclass(frozen=True)
class StoredSession:
    where: Scratch
    session_id: str

    @property
    def log_bytes(self) -> int:
        return (self.where.home / "sessions" / self.session_id / "log.jsonl").stat().st_size


async def load_in_fresh_daemon(stored: StoredSession) -> Load:
    client = await spawn(PARLEYD, stored.where)
    try:
        await client.request("initialize", INITIALIZE)
        replayed = 0

        def count(message: Message, _received_ns: int) -> None:
            nonlocal replayed
            if message.get("method") == "session/update":
                replayed += 1

        client.on_notification = count
        params = {"sessionId": stored.session_id, "cwd": str(stored.where.work), "mcpServers": []}
        start = time.monotonic_ns()
        await client.request("session/load", params)
        elapsed = ms(time.monotonic_ns() - start)
        return Load(elapsed, replayed, rss_mb(client.pid, peak=True))
    finally:
        await client.close()


async def run(shapes: Sequence[Shape], runs: int) -> list[Row]:
    with ExitStack() as scratches:
        stored: dict[Shape, StoredSession] = {}
        for shape in (ONE_TURN, *shapes):
            where = scratches.enter_context(scratch())
            (session_id,) = write_sessions(where.home, where.work, shape, 1)
            stored[shape] = StoredSession(where, session_id)
        # Untimed: fills the page cache with the interpreter and site-packages.
        await load_in_fresh_daemon(stored[ONE_TURN])
        loads: dict[Shape, list[Load]] = {shape: [] for shape in stored}
        # Interleaved, so drift in the machine's load touches every session alike.
        for _ in range(runs):
            for shape, session in stored.items():
                loads[shape].append(await load_in_fresh_daemon(session))
        log_bytes = {shape: session.log_bytes for shape, session in stored.items()}
    for shape, measured in loads.items():
        # Every response replays at least its text: fewer updates means a load
        # that skipped part of the log, and a time that means nothing.
        fewest = min(load.updates for load in measured)
        if fewest < shape.turns * shape.responses:
            raise UnexpectedAnswer(f"{shape.describe()}: only {fewest} updates replayed")
    return [row for shape in shapes for row in _rows(shape, loads, log_bytes)]


def _rows(shape: Shape, loads: dict[Shape, list[Load]], log_bytes: dict[Shape, int]) -> list[Row]:
    def figures(of: Shape) -> tuple[float, float, float]:
        measured = loads[of]
        return (
            median([load.ms for load in measured]),
            median([load.updates for load in measured]),
            median([load.peak_rss_mb for load in measured]),
        )

    load_ms, updates, peak_mb = figures(shape)
    tiny_ms, tiny_updates, tiny_peak_mb = figures(ONE_TURN)
    tiny = "one-turn session"
    label = shape.describe()
    return [
        Row(
            measurement=f"session/load, {label} (median)",
            unit="ms",
            parley=load_ms,
            baseline=tiny_ms,
            baseline_name=tiny,
            bar=f"< {LOAD_BAR_MS:g} ms",
            meets=load_ms < LOAD_BAR_MS,
            detail={
                "samples_ms": [load.ms for load in loads[shape]],
                "baseline_samples_ms": [load.ms for load in loads[ONE_TURN]],
                "log_bytes": log_bytes[shape],
                "baseline_log_bytes": log_bytes[ONE_TURN],
            },
        ),
        Row(
            measurement=f"session/load updates replayed, {label}",
            unit="updates",
            parley=updates,
            baseline=tiny_updates,
            baseline_name=tiny,
        ),
        Row(
            measurement=f"session/load peak RSS, {label}",
            unit="MB",
            parley=peak_mb,
            baseline=tiny_peak_mb,
            baseline_name=tiny,
        ),
    ]
