"""A failing run reports its failures.

A daemon left behind by a failed test is collected after its event loop has
closed, and pytest formats the warning that raises on the spot. When that
collection lands inside pytest's own `ast.parse` of a failure's source, Python
3.11's parser state is clobbered by the nested parse, and the run ends in an
INTERNALERROR ("AST constructor recursion depth mismatch") instead of the
failures. So a failed conformance check in the pytest-lsp client's teardown
must still stop the daemon.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLANTED = "a violation planted by the test"
PLANTING_MODULE = f"""
from tests.e2e.test_pytest_lsp import AcpTestClient, client


async def test_planted(client: AcpTestClient) -> None:
    await client.call("initialize", {{"protocolVersion": 1}})
    client.protocol.violations.append({PLANTED!r})
"""


def test_a_failed_conformance_check_is_reported_and_the_daemon_stopped(tmp_path: Path) -> None:
    test_file = tmp_path / "test_planted.py"
    test_file.write_text(PLANTING_MODULE)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            "-c",
            str(ROOT / "pyproject.toml"),
            "-p",
            "no:cacheprovider",
            # A daemon collected late would now fail the run by name.
            "-W",
            "error::pytest.PytestUnraisableExceptionWarning",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = run.stdout + run.stderr
    assert "1 passed, 1 error" in output, output
    assert PLANTED in output
    assert "INTERNALERROR" not in output
    assert "Unraisable" not in output, output
