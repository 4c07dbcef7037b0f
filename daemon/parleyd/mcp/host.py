"""A session's MCP servers: started together once the client knows the
session, each kept up by a supervisor of its own, their tools offered while
they are up, and what becomes of each told to the client.

A server that stops (its process exits, its stream drops) is started again
after a delay that doubles with each failure in a row, and given up after a
few; one that stayed up a while starts its count afresh. While a server is
down its tools leave the session's tool list at the next model call, and a
call the model makes to it meanwhile fails at once, saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio

from parley_protocol.mcp_servers import McpServerConfig
from parleyd.tools.base import Tool, ToolError, ToolResult

from .failure import ServerFailed, with_last_words
from .tool import McpTool

if TYPE_CHECKING:
    from .connection import Connection

log = logging.getLogger(__name__)

ServerState = Literal["starting", "ready", "restarting", "failed", "stopped"]

# The first restart's delay, doubled for each failure in a row after it.
RESTART_DELAY_SECONDS = 0.5
RESTART_DELAY_LIMIT_SECONDS = 30.0
# Failures in a row after which a server is given up (until the session reopens).
MAX_FAILURES = 5
# A server up this long had recovered: its next failure counts as the first.
STABLE_SECONDS = 60.0
# A server's stdio shutdown waits for the process a few seconds at most.
_CLOSING_SECONDS = 10.0


@dataclass(frozen=True)
class McpServerStatus:
    """What the client is told of a server: its state, the names its tools go
    by for the model, and, when it is down, why and when it is tried again."""

    server: str
    state: ServerState
    tools: tuple[str, ...] = ()
    error: str | None = None
    retry_in: float | None = None
    failures: int = 0


class Connect(Protocol):
    def __call__(
        self,
        server: McpServerConfig,
        cwd: Path,
        environment: Mapping[str, str],
        on_tools_changed: Callable[[], Awaitable[None]],
    ) -> contextlib.AbstractAsyncContextManager[Connection]: ...


def _load_sdk() -> Connect:
    from .connection import connect

    return connect


@dataclass
class _Server:
    config: McpServerConfig
    state: ServerState = "starting"
    connection: Connection | None = None
    tools: tuple[McpTool, ...] = ()
    error: str | None = None
    failures: int = 0
    tools_changed: anyio.Event = field(default_factory=anyio.Event)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def is_up(self) -> bool:
        """Ready, and not lost since: the supervisor may not have seen it go yet."""
        connection = self.connection
        return self.state == "ready" and connection is not None and not connection.lost.is_set()

    def status(self, retry_in: float | None = None) -> McpServerStatus:
        return McpServerStatus(
            server=self.name,
            state=self.state,
            tools=tuple(tool.name for tool in self.tools),
            error=self.error,
            retry_in=retry_in,
            failures=self.failures,
        )

    def unavailable(self) -> str:
        """Why a call cannot reach the server now."""
        said = {
            "starting": "is still starting",
            "restarting": "stopped and is being restarted",
            "failed": "could not be started and has been given up",
            "stopped": "has been stopped",
            "ready": "has just stopped",
        }[self.state]
        why = f" ({self.error})" if self.error else ""
        return f"The MCP server {self.name!r} {said}{why}; its tools cannot be called now."


class McpHost:
    def __init__(
        self,
        servers: Sequence[McpServerConfig],
        cwd: Path,
        environment: Mapping[str, str],
        report: Callable[[McpServerStatus], Awaitable[None]],
        start_timeout: float,
    ) -> None:
        self._servers = [_Server(config) for config in servers]
        self._cwd = cwd
        self._environment = environment
        self._report = report
        self._start_timeout = start_timeout
        self._task: asyncio.Task[None] | None = None

    @property
    def servers(self) -> tuple[str, ...]:
        return tuple(server.name for server in self._servers)

    def statuses(self) -> list[McpServerStatus]:
        return [server.status() for server in self._servers]

    def tools(self) -> list[Tool]:
        """The tools of every server up now, in the order the servers were given."""
        return [tool for server in self._servers if server.is_up for tool in server.tools]

    def start(self) -> None:
        """Start every server in the background; the first call only."""
        if self._servers and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Stop every server, waiting a bounded time for their processes."""
        if self._task is None:
            return
        self._task.cancel()
        with anyio.move_on_after(_CLOSING_SECONDS):
            await asyncio.gather(self._task, return_exceptions=True)
        for server in self._servers:
            server.state, server.connection = "stopped", None

    async def _run(self) -> None:
        try:
            # Over a second of imports, off the event loop the other sessions stream on.
            connect = await anyio.to_thread.run_sync(_load_sdk)
        except ImportError as exc:
            for server in self._servers:
                server.state, server.error = "failed", f"the MCP SDK cannot be loaded: {exc}"
                await self._tell(server)
            return
        async with anyio.create_task_group() as group:
            for server in self._servers:
                group.start_soon(self._supervise, server, connect)

    async def _tell(self, server: _Server, retry_in: float | None = None) -> None:
        try:
            await self._report(server.status(retry_in))
        except Exception:
            log.exception("could not tell the client of MCP server %s", server.name)

    async def _supervise(self, server: _Server, connect: Connect) -> None:
        await self._tell(server)
        while True:
            up_since: float | None = None
            try:
                async with self._connected(server, connect) as connection:
                    up_since = time.monotonic()
                    await self._serve(server, connection)
                    server.error = with_last_words("it stopped", connection.stderr_tail())
            except ServerFailed as failure:
                server.error = str(failure)
            except TimeoutError:
                server.error = f"it did not answer within {self._start_timeout:g} s"
            server.connection, server.tools = None, ()
            recovered = up_since is not None and time.monotonic() - up_since >= STABLE_SECONDS
            server.failures = 1 if recovered else server.failures + 1
            log.warning("MCP server %s: %s", server.name, server.error)
            if server.failures >= MAX_FAILURES:
                server.state = "failed"
                await self._tell(server)
                return
            delay = min(
                RESTART_DELAY_SECONDS * 2 ** (server.failures - 1), RESTART_DELAY_LIMIT_SECONDS
            )
            server.state = "restarting"
            await self._tell(server, retry_in=delay)
            await anyio.sleep(delay)

    @contextlib.asynccontextmanager
    async def _connected(self, server: _Server, connect: Connect) -> AsyncIterator[Connection]:
        """The server started and its tools listed, within the start timeout."""

        async def tools_changed() -> None:
            server.tools_changed.set()

        with anyio.CancelScope(deadline=anyio.current_time() + self._start_timeout) as starting:
            async with connect(server.config, self._cwd, self._environment, tools_changed) as c:
                server.connection = c
                await self._list_tools(server, c)
                starting.deadline = math.inf
                yield c
        if starting.cancelled_caught:
            raise TimeoutError

    async def _serve(self, server: _Server, connection: Connection) -> None:
        """Up: told so, then its tool list kept as the server changes it, until it stops."""
        server.state, server.error = "ready", None
        await self._tell(server)
        while not connection.lost.is_set():
            server.tools_changed = anyio.Event()
            await _first_of(connection.lost, server.tools_changed)
            if server.tools_changed.is_set() and not connection.lost.is_set():
                await self._list_tools(server, connection)
                await self._tell(server)

    async def _list_tools(self, server: _Server, connection: Connection) -> None:
        async def call(tool: str, arguments: Mapping[str, Any]) -> ToolResult:
            return await self._call(server, connection, tool, arguments)

        server.tools = tuple(
            McpTool(
                server=server.name,
                tool=listed.name,
                description=listed.description,
                parameters=listed.parameters,
                call_server=call,
                kind="read" if listed.read_only else "other",
                display_title=listed.title,
            )
            for listed in await connection.tools()
        )

    async def _call(
        self, server: _Server, connection: Connection, tool: str, arguments: Mapping[str, Any]
    ) -> ToolResult:
        if server.connection is not connection or not server.is_up:
            raise ToolError(server.unavailable())
        try:
            return await connection.call(tool, arguments)
        except Exception as exc:
            if connection.lost.is_set():
                said = with_last_words("stopped during the call", connection.stderr_tail())
                raise ToolError(f"The MCP server {server.name!r} {said}.") from None
            raise ToolError(f"The MCP server {server.name!r} failed the call: {exc}") from None


async def _first_of(*events: anyio.Event) -> None:
    async with anyio.create_task_group() as group:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            group.cancel_scope.cancel()

        for event in events:
            group.start_soon(wait, event)
