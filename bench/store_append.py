"""Time per `SessionLog.append` of a typical record, in logs of a few to 100,000 records.

Each log is built once. Each round reopens it, times single appends, closes it
and cuts it back to its built length, so every sample lands in a log of the
size it is named for. Rounds go from size to size, so drift in the machine's
load touches every size alike.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from report import Row
from stats import median, percentile
from stored import outcome, read_call, response

from parleyd.store.log import LOG_NAME, SessionLog
from parleyd.store.records import Record

# The goal: appending costs the same however long the session has grown.
FLAT_BAR = 1.5
APPENDS_PER_ROUND = 400
# About three hundred characters of text, then a tool call.
RESPONSE_DELTAS = 60
CONVERSATION = "conv_bench"

Samples = dict[str, list[float]]
# A fresh record for each append, as a turn makes them: append stamps what it writes.
TYPICAL: dict[str, Callable[[], Record]] = {
    "AssistantResponse": lambda: response(RESPONSE_DELTAS, read_call()),
    "ToolOutcome": lambda: outcome(read_call()),
}


def _build(folder: Path, records: int) -> int:
    """A log of `records` typical records; its length in bytes."""
    makers = list(TYPICAL.values())
    log, _ = SessionLog.open(folder)
    try:
        for number in range(records):
            log.append(makers[number % len(makers)](), CONVERSATION)
        return log.size
    finally:
        log.close()


def _round(folder: Path, length: int, samples: Samples) -> None:
    kinds = list(TYPICAL.items())
    log, _ = SessionLog.open(folder)
    try:
        for number in range(APPENDS_PER_ROUND):
            kind, make = kinds[number % len(kinds)]
            record = make()
            start = time.perf_counter_ns()
            log.append(record, CONVERSATION)
            samples[kind].append((time.perf_counter_ns() - start) / 1000)
    finally:
        log.close()
    os.truncate(folder / LOG_NAME, length)


def run(sizes: Sequence[int], rounds: int) -> list[Row]:
    """`sizes[0]` is the baseline: the log every larger one is held against."""
    samples: dict[int, Samples] = {size: {kind: [] for kind in TYPICAL} for size in sizes}
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        folders = {size: Path(tmp) / f"log-{size}" for size in sizes}
        lengths = {size: _build(folders[size], size) for size in sizes}
        for _ in range(rounds):
            for size in sizes:
                _round(folders[size], lengths[size], samples[size])
    baseline = sizes[0]
    rows = []
    for kind in TYPICAL:
        base = samples[baseline][kind]
        for size in sizes[1:]:
            figure = samples[size][kind]
            rows.append(
                Row(
                    measurement=f"append {kind}, {size:,}-record log (median)",
                    unit="µs",
                    parley=median(figure),
                    baseline=median(base),
                    baseline_name=f"{baseline:,}-record log",
                    bar=f"<= {FLAT_BAR:g}x",
                    meets=median(figure) <= FLAT_BAR * median(base),
                    detail={
                        "appends": len(figure),
                        "p99_us": percentile(figure, 99),
                        "baseline_p99_us": percentile(base, 99),
                        "log_bytes": lengths[size],
                    },
                )
            )
    return rows
