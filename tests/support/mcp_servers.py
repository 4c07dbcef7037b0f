"""The suite's MCP server (`mcp_server.py`) as a session is given it: over
stdio, or started on a loopback port for streamable HTTP or SSE."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

SCRIPT = Path(__file__).with_name("mcp_server.py")
# The server imports the SDK (over a second) before it listens.
_LISTEN_SECONDS = 30.0


def stdio_server(name: str, **env: str) -> dict[str, Any]:
    """ACP's description of the suite's server over stdio, with `env` set."""
    return {
        "name": name,
        "command": sys.executable,
        "args": [str(SCRIPT)],
        "env": [{"name": key, "value": value} for key, value in env.items()],
    }


@asynccontextmanager
async def http_server(transport: Literal["http", "sse"] = "http") -> AsyncIterator[str]:
    """The suite's server on a free loopback port; its MCP endpoint's URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), f"--{transport}", str(port)
    )
    try:
        async with asyncio.timeout(_LISTEN_SECONDS):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        yield f"http://127.0.0.1:{port}/{'mcp' if transport == 'http' else 'sse'}"
    finally:
        process.terminate()
        await process.wait()
