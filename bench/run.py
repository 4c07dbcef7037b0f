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

import cancel
import memory
import startup
import streaming
from report import Row, table, write_json


@dataclass(frozen=True)
class Sizes:
    startup_runs: int
    stream_repeats: int
    paced_deltas: int
    cancel_runs: int


FULL = Sizes(startup_runs=15, stream_repeats=5, paced_deltas=1000, cancel_runs=7)
QUICK = Sizes(startup_runs=5, stream_repeats=3, paced_deltas=250, cancel_runs=3)


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
        "streaming": lambda: streaming.run(sizes.stream_repeats, sizes.paced_deltas, profile_to),
        "cancel": lambda: cancel.run(sizes.cancel_runs),
        "memory": memory.run,
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
