"""A session's MCP servers kept up, or given up, by their supervisors: real
processes that never answer or die at once, and the suite's own server over
stdio and SSE, through the official SDK."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import pytest

from parley_protocol.mcp_servers import McpServerSse, McpServerStdio
from parleyd.mcp import host as host_module
from parleyd.mcp.host import McpHost, McpServerStatus
from parleyd.tools.base import Tool, ToolContext, ToolError
from tests.support.mcp_servers import SCRIPT, http_server


def _python(name: str, code: str) -> McpServerStdio:
    return McpServerStdio(name=name, command=sys.executable, args=["-c", code])


class Told:
    """The statuses a host reports, until `enough` of them."""

    def __init__(self, enough: int) -> None:
        self.statuses: list[McpServerStatus] = []
        self._enough = enough
        self._done = anyio.Event()
        self._changed = anyio.Event()

    async def __call__(self, status: McpServerStatus) -> None:
        self.statuses.append(status)
        self._changed.set()
        if len(self.statuses) >= self._enough:
            self._done.set()

    async def wait_for(self, state: str, failures: int = 0) -> None:
        """Until a status in `state` after `failures` failures in a row."""
        while not any((s.state, s.failures) == (state, failures) for s in self.statuses):
            self._changed = anyio.Event()
            await self._changed.wait()

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


def _tools(host: McpHost) -> dict[str, Tool]:
    return {tool.name: tool for tool in host.tools()}


async def _ready(host: McpHost, report: Told) -> dict[str, Tool]:
    host.start()
    with anyio.fail_after(60):
        await report.wait_for("ready")
    return _tools(host)


async def test_an_sse_server_is_reached_and_its_tools_called(tmp_path: Path) -> None:
    report = Told(enough=1_000)
    async with http_server("sse") as url:
        sse = McpServerSse(type="sse", name="old", url=url)
        host = McpHost([sse], tmp_path, {}, report, start_timeout=30)
        tools = await _ready(host, report)
        answer = await tools["mcp__old__echo"].run({"text": "over sse"}, ToolContext(tmp_path))
        await host.close()
    assert answer.output == "echo: over sse"


async def test_a_call_to_a_server_just_gone_fails_at_once_and_close_stops_the_process(
    tmp_path: Path,
) -> None:
    report = Told(enough=1_000)
    served = McpServerStdio(name="local", command=sys.executable, args=[str(SCRIPT)])
    host = McpHost([served], tmp_path, {}, report, start_timeout=30)
    tools = await _ready(host, report)
    context = ToolContext(tmp_path)
    with pytest.raises(ToolError, match="stopped during the call"):
        await tools["mcp__local__crash"].run({}, context)
    # The model may still call a tool of the server it was offered: told why not, at once.
    with pytest.raises(
        ToolError, match=r"The MCP server 'local' (has just stopped|stopped and is)"
    ):
        await tools["mcp__local__echo"].run({"text": "anyone?"}, context)
    with anyio.fail_after(60):
        await report.wait_for("ready", failures=1)
    pid = int((await _tools(host)["mcp__local__pid"].run({}, context)).output)
    await host.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
