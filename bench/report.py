"""One row per measurement, and the table and JSON the run ends with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """A Parley figure, the baseline measured beside it, and the bar it is held to.

    `ratio` is Parley / baseline. `meets` is None for figures that have no bar
    and are there to explain the others.
    """

    measurement: str
    unit: str
    parley: float
    baseline: float | None = None
    baseline_name: str = ""
    bar: str = ""
    meets: bool | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.parley / self.baseline


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2 if abs(value) >= 1 else 3
    return f"{value:,.{digits}f} {unit}"


def _verdict(meets: bool | None) -> str:
    return "-" if meets is None else "yes" if meets else "NO"


def table(rows: Sequence[Row]) -> str:
    header = ("measurement", "Parley", "baseline", "ratio", "bar", "meets")
    lines = [
        (
            row.measurement,
            _figure(row.parley, row.unit),
            f"{_figure(row.baseline, row.unit)} {row.baseline_name}".rstrip(),
            "-" if row.ratio is None else f"{row.ratio:.3g}x",
            row.bar or "-",
            _verdict(row.meets),
        )
        for row in rows
    ]
    widths = [max(len(cells[i]) for cells in [header, *lines]) for i in range(len(header))]
    rule = "  ".join("-" * width for width in widths)
    out = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)), rule]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in lines]
    return "\n".join(line.rstrip() for line in out)


def write_json(
    path: Path, rows: Sequence[Row], crashed: Sequence[str], about: dict[str, Any]
) -> None:
    document = {
        **about,
        "rows": [{**asdict(row), "ratio": row.ratio} for row in rows],
        "crashed": list(crashed),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
