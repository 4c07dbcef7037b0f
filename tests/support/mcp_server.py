"""A real MCP server, written with the official `mcp` SDK, for the daemon to
start in tests: `python mcp_server.py` speaks stdio, `--http PORT` streamable
HTTP on 127.0.0.1, `--sse PORT` the older HTTP+SSE transport.

Its tools: `echo` (a text back), `picture` (a PNG and a word on it), `crash`
(the process dies mid-call, as a broken server does), `wait` (a call that runs
until cancelled), `where` (the server's working directory and one variable
of its environment) and `pid` (its process id).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import mcp_types
from mcp.server.mcpserver import MCPServer

# A 1x1 PNG, the smallest image a model can be sent.
PNG_1X1 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)

server = MCPServer("parley-test-server")


@server.tool(description="Say the text back.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(
    description="A picture, with its caption.",
    annotations=mcp_types.ToolAnnotations(read_only_hint=True, title="Draw a picture"),
)
def picture() -> list[mcp_types.TextContent | mcp_types.ImageContent]:
    return [
        mcp_types.TextContent(text="a red dot"),
        mcp_types.ImageContent(data=PNG_1X1, mime_type="image/png"),
    ]


@server.tool(description="Stop the server in the middle of the call.")
def crash() -> str:
    print("crashing on purpose", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool(description="Wait until cancelled.")
async def wait() -> str:
    await asyncio.sleep(3600)
    return "waited"


@server.tool(description="Where the server runs and what PARLEY_TEST_VALUE is.")
def where() -> str:
    return f"{Path.cwd()} {os.environ.get('PARLEY_TEST_VALUE', '-')}"


@server.tool(description="The server's process id.")
def pid() -> str:
    return str(os.getpid())


def main() -> None:
    parser = argparse.ArgumentParser()
    transports = parser.add_mutually_exclusive_group()
    transports.add_argument("--http", type=int, help="serve streamable HTTP on this port")
    transports.add_argument("--sse", type=int, help="serve HTTP+SSE on this port")
    arguments = parser.parse_args()
    if arguments.http is not None:
        server.run("streamable-http", host="127.0.0.1", port=arguments.http)
    elif arguments.sse is not None:
        server.run("sse", host="127.0.0.1", port=arguments.sse)
    else:
        server.run()


if __name__ == "__main__":
    main()
