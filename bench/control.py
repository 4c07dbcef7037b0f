"""How fast control requests take effect, with the session alone in the daemon and while
other sessions stream flat out: `session/cancel` sent to `{stopReason: cancelled}` read,
and `_parley/session/pause` sent to its answer read (the model stream stopped and what
it sent recorded)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass, field

from provider import DELTA_TEXT, BenchProvider, Plan, in_own_process
from report import Row
from servers import Daemon, UnexpectedAnswer
from stats import median, ms, percentile

# Other ACP agents take 4 to 60 ms to cancel; Parley means to beat the fastest of them.
FASTEST_OTHER_AGENT_MS = 4.0
# The goal for cancel under load; pause is a control request held to the same.
LOADED_P99_BAR_MS = 50.0
# How long the turn streams before each request, so it lands mid-stream.
STREAMING_FOR = 0.05
# Paced like a fast model; long enough never to end before the request lands.
MEASURED = Plan(deltas=1_000_000, interval=0.002)
# As fast as the provider can send, and never ending while measured.
FLAT_OUT = Plan(deltas=1_000_000_000)
# Time for every loaded session's stream to be under way before measuring.
LOAD_SETTLE = 1.0
STREAM_TIMEOUT = 60.0
PAUSED: dict[str, object] = {"runningToolCalls": []}


@dataclass
class Latencies:
    pause_ms: list[float] = field(default_factory=list)
    cancel_ms: list[float] = field(default_factory=list)


Turn = asyncio.Task[tuple[str, int]]


async def _chunk_or_end(chunk: asyncio.Event, turn: Turn, waiting_for: str) -> None:
    """Wait for the next text chunk; a turn that ends or stalls first is an error."""
    chunk.clear()
    arrived = asyncio.create_task(chunk.wait())
    try:
        done, _ = await asyncio.wait(
            {arrived, turn}, timeout=STREAM_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        arrived.cancel()
    if turn in done:
        stop, _received_ns = turn.result()
        raise UnexpectedAnswer(f"the turn ended {stop!r} {waiting_for}")
    if not done:
        raise UnexpectedAnswer(f"no text in {STREAM_TIMEOUT:g} s {waiting_for}")


async def pause_then_cancel(daemon: Daemon, session: str) -> tuple[float, float]:
    """A turn streams, is paused, resumed, streams again and is cancelled: how long the
    pause and the cancel took to be answered, in ms."""
    chunk = asyncio.Event()
    with daemon.watching(session, lambda _text, _received_ns: chunk.set()):
        turn = asyncio.create_task(daemon.prompt_stamped(session, "bench"))
        await _chunk_or_end(chunk, turn, "before the pause")
        await asyncio.sleep(STREAMING_FOR)
        sent = time.monotonic_ns()
        paused, answered = await daemon.pause_stamped(session)
        pause_ms = ms(answered - sent)
        if paused != PAUSED:
            raise UnexpectedAnswer(f"pause answered {paused!r}, not {PAUSED!r}")
        await daemon.resume(session)
        await _chunk_or_end(chunk, turn, "after the resume")
        await asyncio.sleep(STREAMING_FOR)
        sent = time.monotonic_ns()
        daemon.cancel(session)
        stop, answered = await turn
    if stop != "cancelled":
        raise UnexpectedAnswer(f"a cancelled turn ended {stop!r}")
    return pause_ms, ms(answered - sent)


async def measure(daemon: Daemon, runs: int, budget: float) -> Latencies:
    """`runs` turns in one session, or as many as end within `budget` seconds (one at
    least): a daemon slow to answer gets fewer samples, not a bench that runs for hours."""
    session = await daemon.new_session()
    latencies = Latencies()
    deadline = time.monotonic() + budget
    while len(latencies.cancel_ms) < runs:
        pause_ms, cancel_ms = await pause_then_cancel(daemon, session)
        latencies.pause_ms.append(pause_ms)
        latencies.cancel_ms.append(cancel_ms)
        if time.monotonic() > deadline:
            break
    return latencies


@dataclass
class Stream:
    """What one loaded session has delivered to the client so far."""

    characters: int = 0
    started: asyncio.Event = field(default_factory=asyncio.Event)

    def on_text(self, text: str, _received_ns: int) -> None:
        self.started.set()
        self.characters += len(text)


@dataclass(frozen=True)
class Load:
    streams: list[Stream]

    @property
    def deltas(self) -> int:
        return sum(stream.characters for stream in self.streams) // len(DELTA_TEXT)

    async def started(self) -> None:
        """Return once every stream has delivered text."""
        try:
            async with asyncio.timeout(STREAM_TIMEOUT):
                await asyncio.gather(*(stream.started.wait() for stream in self.streams))
        except TimeoutError:
            raise UnexpectedAnswer(
                f"not every loaded session streamed within {STREAM_TIMEOUT:g} s"
            ) from None


@asynccontextmanager
async def streaming_sessions(daemon: Daemon, count: int, base_url: str) -> AsyncIterator[Load]:
    """`count` sessions of the daemon streaming from the model at `base_url` until the
    block ends, when they are cancelled."""
    load = Load([Stream() for _ in range(count)])
    sessions = [await daemon.new_session({"baseUrl": base_url}) for _ in range(count)]
    with ExitStack() as watches:
        for session, stream in zip(sessions, load.streams, strict=True):
            watches.enter_context(daemon.watching(session, stream.on_text))
        turns = [
            asyncio.create_task(daemon.prompt_until_cancelled(session, "load"))
            for session in sessions
        ]
        try:
            await load.started()
            yield load
        finally:
            for session in sessions:
                daemon.cancel(session)
            stops = await asyncio.gather(*turns)
    if any(stop != "cancelled" for stop in stops):
        raise UnexpectedAnswer(f"loaded turns ended {sorted(set(stops))}, not all cancelled")


async def run(runs: int, loaded_sessions: int, budget: float) -> list[Row]:
    """`runs` samples alone, then under load, each within `budget` seconds."""
    async with (
        BenchProvider() as provider,
        in_own_process(FLAT_OUT) as load_url,
        Daemon.running(provider.base_url) as daemon,
    ):
        provider.plan = MEASURED
        # Untimed: the first loads the code paths.
        await pause_then_cancel(daemon, await daemon.new_session())
        alone = await measure(daemon, runs, budget)
        async with streaming_sessions(daemon, loaded_sessions, load_url) as load:
            await asyncio.sleep(LOAD_SETTLE)
            began, deltas_before, cpu_before = time.monotonic(), load.deltas, daemon.cpu_seconds
            loaded = await measure(daemon, runs, budget)
            delivered = load.deltas - deltas_before
            load_rate = delivered / (time.monotonic() - began)
            cpu_per_delta_us = (daemon.cpu_seconds - cpu_before) / delivered * 1e6
    under_load = f"{loaded_sessions} other sessions streaming"
    return [
        Row(
            measurement="cancel to stopReason cancelled, alone (median)",
            unit="ms",
            parley=median(alone.cancel_ms),
            baseline=FASTEST_OTHER_AGENT_MS,
            baseline_name="fastest other agent",
            bar=f"<= {FASTEST_OTHER_AGENT_MS:g} ms",
            meets=median(alone.cancel_ms) <= FASTEST_OTHER_AGENT_MS,
        ),
        *_loaded_rows(
            "cancel to stopReason cancelled", under_load, alone.cancel_ms, loaded.cancel_ms
        ),
        *_loaded_rows("pause answered", under_load, alone.pause_ms, loaded.pause_ms),
        Row(
            measurement=f"deltas/s to the client while {under_load} flat out",
            unit="/s",
            parley=load_rate,
            detail={"daemon_cpu_per_delta_us": cpu_per_delta_us},
        ),
    ]


def _loaded_rows(
    what: str, under_load: str, alone_ms: list[float], loaded_ms: list[float]
) -> list[Row]:
    """p50 and p99 under load, each beside the same figure with the session alone."""
    p99 = percentile(loaded_ms, 99)
    return [
        Row(
            measurement=f"{what} p50, {under_load}",
            unit="ms",
            parley=percentile(loaded_ms, 50),
            baseline=percentile(alone_ms, 50),
            baseline_name="alone",
            detail={"alone_ms": alone_ms, "loaded_ms": loaded_ms},
        ),
        Row(
            measurement=f"{what} p99, {under_load}",
            unit="ms",
            parley=p99,
            baseline=percentile(alone_ms, 99),
            baseline_name="alone",
            bar=f"< {LOADED_P99_BAR_MS:g} ms",
            meets=p99 < LOADED_P99_BAR_MS,
        ),
    ]
