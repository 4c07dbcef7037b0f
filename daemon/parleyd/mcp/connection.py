"""One live connection to an MCP server, through the official `mcp` SDK.

The only module that imports the SDK (with `content.py`): it costs over a
second to import, so `host.py` imports this in a worker thread the first time
a session has a server, and a daemon whose sessions have none never pays it.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

import anyio
import httpx2
import mcp_types
from anyio.streams.memory import MemoryObjectSendStream
from mcp import Client, StdioServerParameters
from mcp.client._transport import ReadStream, Transport, TransportStreams
from mcp.client.session import IncomingMessage
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from parley_protocol.mcp_servers import McpServerConfig, McpServerStdio
from parleyd import __version__
from parleyd.tools.base import ToolResult

from .content import tool_result
from .failure import ServerFailed

# What a failure report quotes of the server's stderr: its last words.
_STDERR_TAIL_BYTES = 2000
# The SDK's own defaults: a server may hold a response stream open for long.
_HTTP_TIMEOUT_SECONDS = 30.0
_HTTP_STREAM_SECONDS = 300.0

_CLIENT_INFO = mcp_types.Implementation(name="parley", version=__version__)


@dataclass(frozen=True)
class ListedTool:
    """A tool as its server lists it, in the terms the registry takes."""

    name: str
    description: str
    parameters: dict[str, Any]
    read_only: bool
    title: str | None


@dataclass
class Connection:
    """A server that answered the handshake. `lost` is set once its transport
    closed (a stdio server exited, a stream dropped); calls fail from then on."""

    client: Client
    lost: anyio.Event
    stderr: TextIO | None

    async def tools(self) -> list[ListedTool]:
        """Every tool the server lists, page after page, as it has them now."""
        tools: list[ListedTool] = []
        cursor: str | None = None
        while True:
            page = await self.client.list_tools(cursor=cursor, cache_mode="refresh")
            tools.extend(map(_listed, page.tools))
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def call(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        return tool_result(await self.client.call_tool(name, dict(arguments)))

    def stderr_tail(self) -> str:
        return read_tail(self.stderr)


def _listed(tool: mcp_types.Tool) -> ListedTool:
    annotations = tool.annotations
    return ListedTool(
        name=tool.name,
        description=tool.description or tool.title or tool.name,
        parameters=tool.input_schema,
        read_only=bool(annotations and annotations.read_only_hint),
        title=tool.title or (annotations.title if annotations else None),
    )


def read_tail(stderr: TextIO | None) -> str:
    """The end of what a stdio server wrote to stderr, for a failure report."""
    if stderr is None:
        return ""
    with contextlib.suppress(OSError, ValueError):
        stderr.flush()
        size = stderr.seek(0, 2)
        stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
        tail = stderr.read()
        stderr.seek(0, 2)
        return tail.strip()
    return ""


@contextlib.asynccontextmanager
async def connect(
    server: McpServerConfig,
    cwd: Path,
    environment: Mapping[str, str],
    on_tools_changed: Callable[[], Awaitable[None]],
) -> AsyncIterator[Connection]:
    """Start (stdio) or reach (http, sse) `server` and shake hands; stopped
    (its process ended, its HTTP session closed) when the block exits."""
    lost = anyio.Event()

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            await on_tools_changed()

    with _stderr_file(server) as stderr:
        transport = _watched(_transport(server, cwd, environment, stderr), lost)
        client = Client(transport, client_info=_CLIENT_INFO, message_handler=on_message)
        try:
            async with client:
                yield Connection(client, lost, stderr)
        except Exception as exc:
            raise ServerFailed(_described(exc), read_tail(stderr)) from exc


def _described(error: BaseException) -> str:
    """What went wrong, from the innermost error the SDK's task groups wrap."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    if isinstance(error, FileNotFoundError | PermissionError):
        return f"cannot start it: {error.strerror}: {error.filename}"
    if isinstance(error, httpx2.TransportError):
        return f"cannot reach it: {error}"
    if isinstance(error, MCPError):
        return error.error.message
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


@contextlib.contextmanager
def _stderr_file(server: McpServerConfig) -> Iterator[TextIO | None]:
    """Where a stdio server's stderr goes: a file whose end a failure quotes."""
    if not isinstance(server, McpServerStdio):
        yield None
        return
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as file:
        yield cast(TextIO, file)


def _transport(
    server: McpServerConfig, cwd: Path, environment: Mapping[str, str], stderr: TextIO | None
) -> Transport:
    if isinstance(server, McpServerStdio):
        parameters = StdioServerParameters(
            command=server.command,
            args=server.args,
            env={**environment, **{variable.name: variable.value for variable in server.env}},
            cwd=cwd,
        )
        return stdio_client(parameters, errlog=stderr or sys.stderr)
    headers = {header.name: header.value for header in server.headers}
    if server.type == "sse":
        return sse_client(server.url, headers=headers)
    return _streamable_http(server.url, headers)


@contextlib.asynccontextmanager
async def _streamable_http(url: str, headers: dict[str, str]) -> AsyncIterator[TransportStreams]:
    """The SDK's streamable HTTP transport over a client with the headers; the
    SDK leaves a client it is given open, so this closes it."""
    timeout = httpx2.Timeout(_HTTP_TIMEOUT_SECONDS, read=_HTTP_STREAM_SECONDS)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


@contextlib.asynccontextmanager
async def _watched(inner: Transport, lost: anyio.Event) -> AsyncIterator[TransportStreams]:
    """`inner`'s streams, with `lost` set when its read side ends: the SDK
    keeps a dead server's connection looking open until the next call."""
    async with inner as (read, write), anyio.create_task_group() as group:
        relay_send, relay_receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        group.start_soon(_relay, read, relay_send, lost)
        try:
            yield relay_receive, write
        finally:
            group.cancel_scope.cancel()


async def _relay(
    read: ReadStream[SessionMessage | Exception],
    relay: MemoryObjectSendStream[SessionMessage | Exception],
    lost: anyio.Event,
) -> None:
    try:
        async with relay:
            async for item in read:
                await relay.send(item)
    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
        pass
    finally:
        lost.set()
