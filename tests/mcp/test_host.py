"""A session's MCP servers kept up, or given up, by their supervisors: real
processes that never answer or die at once, through the official SDK."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from parley_protocol.mcp_servers import McpServerStdio
from parleyd.mcp import host as host_module
from parleyd.mcp.host import McpHost, McpServerStatus


def _python(name: str, code: str) -> McpServerStdio:
    return McpServerStdio(name=name, command=sys.executable, args=["-c", code])


class Told:
    """The statuses a host reports, until `enough` of them."""

    def __init__(self, enough: int) -> None:
        self.statuses: list[McpServerStatus] = []
        self._enough = enough
        self._done = anyio.Event()

    async def __call__(self, status: McpServerStatus) -> None:
        self.statuses.append(status)
        if len(self.statuses) >= self._enough:
            self._done.set()

    async def run(self, host: McpHost, seconds: float = 60.0) -> list[McpServerStatus]:
        host.start()
        with anyio.fail_after(seconds):
            await self._done.wait()
        await host.close()
        return self.statuses


async def test_a_server_silent_past_the_start_timeout_is_restarted(tmp_path: Path) -> None:
    report = Told(enough=2)
    silent = _python("silent", "import time; time.sleep(60)")
    host = McpHost([silent], tmp_path, {}, report, start_timeout=0.5)
    told = await report.run(host)
    starting, restarting = told[:2]
    assert (starting.state, restarting.state) == ("starting", "restarting")
    assert restarting.error == "it did not answer within 0.5 s"
    assert restarting.retry_in == host_module.RESTART_DELAY_SECONDS
    assert host.tools() == []


async def test_a_server_that_dies_at_once_is_given_up_with_its_last_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_module, "RESTART_DELAY_SECONDS", 0.01)
    # Starting, then a restart after each failure but the last, which gives up.
    report = Told(enough=1 + host_module.MAX_FAILURES)
    dying = _python("dying", "import sys; print('no config here', file=sys.stderr); sys.exit(2)")
    told = await report.run(McpHost([dying], tmp_path, {}, report, start_timeout=30))
    states = [status.state for status in told]
    assert states == ["starting", *["restarting"] * (host_module.MAX_FAILURES - 1), "failed"]
    delays = [status.retry_in for status in told if status.state == "restarting"]
    assert delays == [0.01 * 2**n for n in range(host_module.MAX_FAILURES - 1)]
    assert told[-1].failures == host_module.MAX_FAILURES
    assert "(its last words: no config here)" in (told[-1].error or "")
