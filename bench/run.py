"""Parley's benchmarks: each figure beside a baseline measured in the same run.

    python bench/run.py [--quick] [--json FILE] [--profile DIR]

Prints one table and never judges: a missed bar is reported, not failed. The
exit status is 1 only when a benchmark could not be measured at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import adapters
import control
import cpu
import mcp_startup
import memory
import session_list
import session_load
import shim_startup
import startup
import store_append
import streaming
from report import Row, table, write_json
from stored import Shape


@dataclass(frozen=True)
class Sizes:
    startup_runs: int
    # Editors on the shared daemon, each with an idle session, for its memory.
    shim_editors: int
    mcp_runs: int
    mcp_servers: int
    stream_repeats: int
    paced_deltas: int
    cpu_deltas: int
    cpu_repeats: int
    adapter_repeats: int
    control_runs: int
    # The most time the control runs may take, alone and again under load.
    control_seconds: float
    loaded_sessions: int
    unread_deltas: int
    unread_seconds: float
    # The first log size is the baseline the others are held against.
    log_sizes: tuple[int, ...]
    append_rounds: int
    stored_sessions: tuple[Shape, ...]
    load_runs: int
    listed_sessions: int
    list_repeats: int


FULL = Sizes(
    startup_runs=15,
    shim_editors=10,
    mcp_runs=10,
    mcp_servers=3,
    stream_repeats=5,
    paced_deltas=1000,
    cpu_deltas=20_000,
    cpu_repeats=3,
    adapter_repeats=500,
    control_runs=100,
    control_seconds=90.0,
    loaded_sessions=20,
    unread_deltas=100_000,
    unread_seconds=10.0,
    log_sizes=(10, 10_000, 100_000),
    append_rounds=5,
    # 100,000 deltas with 100 children: in a few long responses, and in many small ones.
    stored_sessions=(
        Shape(turns=100, responses=2, deltas_per_response=500, children=100),
        Shape(turns=1000, responses=10, deltas_per_response=10, children=100),
    ),
    load_runs=5,
    listed_sessions=1000,
    list_repeats=15,
)
QUICK = Sizes(
    startup_runs=1,
    shim_editors=2,
    mcp_runs=1,
    mcp_servers=1,
    stream_repeats=1,
    paced_deltas=100,
    cpu_deltas=2000,
    cpu_repeats=1,
    adapter_repeats=5,
    control_runs=3,
    control_seconds=1.0,
    loaded_sessions=2,
    unread_deltas=5000,
    unread_seconds=0.5,
    log_sizes=(10, 1000),
    append_rounds=2,
    stored_sessions=(Shape(turns=10, responses=10, deltas_per_response=10, children=5),),
    load_runs=1,
    listed_sessions=120,
    list_repeats=2,
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, for a smoke check")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the streaming daemon under cProfile and write DIR/parleyd-streaming.prof "
        "(its figures then include the profiler's overhead)",
    )
    return parser.parse_args()


async def _main(arguments: argparse.Namespace) -> int:
    sizes = QUICK if arguments.quick else FULL
    profile_to = None
    if arguments.profile:
        arguments.profile.mkdir(parents=True, exist_ok=True)
        profile_to = arguments.profile.resolve() / "parleyd-streaming.prof"
    benchmarks: dict[str, Callable[[], Awaitable[list[Row]]]] = {
        "start-up": lambda: startup.run(sizes.startup_runs),
        "shim": lambda: shim_startup.run(sizes.startup_runs, sizes.shim_editors),
        "streaming": lambda: streaming.run(sizes.stream_repeats, sizes.paced_deltas, profile_to),
        "agent CPU": lambda: cpu.run(sizes.cpu_deltas, sizes.cpu_repeats),
        "provider adapters": lambda: adapters.run(sizes.adapter_repeats),
        "cancel and pause": lambda: control.run(
            sizes.control_runs, sizes.loaded_sessions, sizes.control_seconds
        ),
        "memory": lambda: memory.run(sizes.unread_deltas, sizes.unread_seconds),
        "store append": lambda: asyncio.to_thread(
            store_append.run, sizes.log_sizes, sizes.append_rounds
        ),
        "session/load": lambda: session_load.run(sizes.stored_sessions, sizes.load_runs),
        "session/list": lambda: session_list.run(sizes.listed_sessions, sizes.list_repeats),
        "MCP servers": lambda: mcp_startup.run(sizes.mcp_runs, sizes.mcp_servers),
    }
    rows: list[Row] = []
    crashed: list[str] = []
    began = time.monotonic()
    for name, benchmark in benchmarks.items():
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        try:
            rows += await benchmark()
        except Exception:
            crashed.append(name)
            print(f"bench: {name} crashed:\n{traceback.format_exc()}", file=sys.stderr)
    print(table(rows))
    print(
        f"\n{'quick' if arguments.quick else 'full'} run, {time.monotonic() - began:.0f} s, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
        + ("; streaming figures include cProfile overhead" if profile_to else "")
    )
    if crashed:
        print(f"crashed: {', '.join(crashed)}")
    if arguments.json:
        about = {
            "quick": arguments.quick,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "profiled": profile_to is not None,
        }
        write_json(arguments.json, rows, crashed, about)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(_arguments())))
