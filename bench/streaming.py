"""Deltas per second and the latency each delta gains: through parleyd, and read bare."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from memory import RSS_BAR_MB
from provider import BenchProvider, DeltaClock, Plan, read_bare
from report import Row
from servers import PARLEYD, Daemon, UnexpectedAnswer, profiled
from stats import median, ms, percentile

ANSWER_DELTAS = 2000
# The fastest other ACP agent measured (Rust) streams a 2,000-delta answer in
# 163 ms; Parley aims at a third of that.
FASTEST_OTHER_AGENT_MS = 163.0
TARGET_SPEEDUP = 3
RATE_BAR = 0.5
ADDED_P99_BAR_MS = 1.0
PACE = 0.002
WARM_UP = Plan(deltas=50)


@dataclass(frozen=True)
class Timing:
    """One stream: when it was asked for, each delta's send and receive time, when it ended."""

    start_ns: int
    sent_ns: list[int]
    received_ns: list[int]
    end_ns: int

    @property
    def deltas_per_second(self) -> float:
        return len(self.received_ns) / ((self.received_ns[-1] - self.start_ns) / 1e9)

    @property
    def total_ms(self) -> float:
        return ms(self.end_ns - self.start_ns)

    @property
    def latencies_ns(self) -> list[int]:
        return [r - s for r, s in zip(self.received_ns, self.sent_ns, strict=True)]


async def through_daemon(daemon: Daemon, provider: BenchProvider, plan: Plan) -> Timing:
    """One turn in a fresh session, so no run's history weighs on the next."""
    session = await daemon.new_session()
    provider.plan = plan
    clock = DeltaClock(plan.deltas)
    with daemon.watching(session, clock.on_text):
        start = time.monotonic_ns()
        stop = await daemon.prompt(session, "bench")
        end = time.monotonic_ns()
    if stop != "end_turn" or not clock.complete:
        raise UnexpectedAnswer(
            f"turn ended {stop!r} after {len(clock.received_ns)} of {plan.deltas} deltas"
        )
    return Timing(start, provider.sent_ns, clock.received_ns, end)


async def bare(client: httpx.AsyncClient, provider: BenchProvider, plan: Plan) -> Timing:
    provider.plan = plan
    clock = DeltaClock(plan.deltas)
    start = time.monotonic_ns()
    await read_bare(client, provider.base_url, clock)
    end = time.monotonic_ns()
    if not clock.complete:
        raise UnexpectedAnswer(f"bare reader got {len(clock.received_ns)} of {plan.deltas}")
    return Timing(start, provider.sent_ns, clock.received_ns, end)


async def run(repeats: int, paced_deltas: int, profile_to: Path | None) -> list[Row]:
    async with (
        BenchProvider() as provider,
        httpx.AsyncClient() as client,
        Daemon.running(
            provider.base_url, PARLEYD if profile_to is None else profiled(profile_to)
        ) as daemon,
    ):
        # Untimed: opens the connections and runs each code path once, as an
        # editor's daemon would have by its second answer.
        await through_daemon(daemon, provider, WARM_UP)
        await bare(client, provider, WARM_UP)
        flat_out = Plan(ANSWER_DELTAS)
        daemon_runs: list[Timing] = []
        bare_runs: list[Timing] = []
        for _ in range(repeats):
            daemon_runs.append(await through_daemon(daemon, provider, flat_out))
            bare_runs.append(await bare(client, provider, flat_out))
        paced = Plan(paced_deltas, interval=PACE)
        daemon_paced = await through_daemon(daemon, provider, paced)
        bare_paced = await bare(client, provider, paced)
        rss_after = daemon.rss_mb
    return [
        *_throughput_rows(daemon_runs, bare_runs),
        *_latency_rows(daemon_paced, bare_paced),
        Row(
            measurement="RSS after the streaming turns",
            unit="MB",
            parley=rss_after,
            bar=f"<= {RSS_BAR_MB:.0f} MB",
            meets=rss_after <= RSS_BAR_MB,
        ),
    ]


def _throughput_rows(daemon_runs: list[Timing], bare_runs: list[Timing]) -> list[Row]:
    daemon_rate = median([t.deltas_per_second for t in daemon_runs])
    bare_rate = median([t.deltas_per_second for t in bare_runs])
    answer_ms = median([t.total_ms for t in daemon_runs])
    target_ms = FASTEST_OTHER_AGENT_MS / TARGET_SPEEDUP
    return [
        Row(
            measurement=f"deltas/s, {ANSWER_DELTAS:,} flat out (median)",
            unit="/s",
            parley=daemon_rate,
            baseline=bare_rate,
            baseline_name="bare httpx",
            bar=f">= {RATE_BAR}x bare",
            meets=daemon_rate >= RATE_BAR * bare_rate,
            detail={
                "daemon_rates": [t.deltas_per_second for t in daemon_runs],
                "bare_rates": [t.deltas_per_second for t in bare_runs],
            },
        ),
        Row(
            measurement=f"{ANSWER_DELTAS:,}-delta answer, prompt to stopReason",
            unit="ms",
            parley=answer_ms,
            baseline=FASTEST_OTHER_AGENT_MS,
            baseline_name="fastest other agent",
            bar=f"<= {target_ms:.0f} ms ({TARGET_SPEEDUP}x faster)",
            meets=answer_ms <= target_ms,
            detail={
                "daemon_ms": [t.total_ms for t in daemon_runs],
                "bare_reader_ms": [t.total_ms for t in bare_runs],
            },
        ),
    ]


def _latency_rows(daemon_paced: Timing, bare_paced: Timing) -> list[Row]:
    through = daemon_paced.latencies_ns
    direct = bare_paced.latencies_ns
    # Delta i of one stream against delta i of the other: both were sent at the
    # same point of the same pacing, so the difference is what the daemon adds.
    added = [ms(d - b) for d, b in zip(through, direct, strict=True)]
    count = len(added)
    rows = [
        Row(
            measurement=f"latency per delta p{p} ({count} paced {PACE * 1000:g} ms)",
            unit="ms",
            parley=percentile([ms(v) for v in through], p),
            baseline=percentile([ms(v) for v in direct], p),
            baseline_name="bare httpx",
        )
        for p in (50, 99)
    ]
    added_p99 = percentile(added, 99)
    rows += [
        Row(measurement="added latency per delta p50", unit="ms", parley=percentile(added, 50)),
        Row(
            measurement="added latency per delta p99",
            unit="ms",
            parley=added_p99,
            bar=f"< {ADDED_P99_BAR_MS:g} ms",
            meets=added_p99 < ADDED_P99_BAR_MS,
            detail={"added_max_ms": max(added)},
        ),
    ]
    return rows
