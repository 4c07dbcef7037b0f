"""The benchmarks run end to end. Their figures are for reading, never asserted:
this only keeps `python3 dev.py bench` from rotting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def test_quick_bench_measures_everything(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads(out.read_text())
    assert document["crashed"] == []
    measured = {row["measurement"] for row in document["rows"]}
    assert any("start-up" in name for name in measured)
    assert any(name.startswith("shim start-up") for name in measured)
    assert any("deltas/s" in name for name in measured)
    assert any("cancel" in name and "streaming" in name for name in measured)
    assert any("pause" in name and "streaming" in name for name in measured)
    assert any("CPU per delta" in name for name in measured)
    assert sum("adapter, wire events/s" in name for name in measured) == 5
    assert any("RSS" in name and "reading nothing" in name for name in measured)
    assert any(name.startswith("append") for name in measured)
    assert any(name.startswith("session/load") for name in measured)
    assert any(name.startswith("session/list") for name in measured)
    assert any("MCP servers" in name for name in measured)
