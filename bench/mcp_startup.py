"""`session/new` request to answer with MCP servers to start (three at full
size), beside one with none, in the same daemon, rounds interleaved.

The servers (the suite's own, written with the official `mcp` SDK, over stdio)
start once the answer is out, in the background: the answer should take no
longer for them. How long until all are ready is shown beside it.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from report import Row
from rpc_client import Message
from servers import INITIALIZE, PARLEYD, scratch, spawn
from stats import median, ms

SERVER_SCRIPT = Path(__file__).resolve().parents[1] / "tests" / "support" / "mcp_server.py"
# Noise on a busy 2-core machine: the answer must not take a fifth longer.
NO_SLOWER_BAR = 1.2


def _servers(count: int) -> list[Message]:
    return [
        {"name": f"server{n}", "command": sys.executable, "args": [str(SERVER_SCRIPT)], "env": []}
        for n in range(count)
    ]


async def run(runs: int, servers: int) -> list[Row]:
    with scratch() as where:
        client = await spawn(PARLEYD, where)
        ready: dict[str, set[str]] = {}
        all_ready: dict[str, asyncio.Event] = {}

        def note(message: Message, _received_ns: int) -> None:
            params: dict[str, Any] = message.get("params") or {}
            status = ((params.get("update") or {}).get("_meta") or {}).get("parley", {})
            server = status.get("mcpServer")
            session = params.get("sessionId")
            if server and server["state"] == "ready" and session in ready:
                ready[session].add(server["name"])
                if len(ready[session]) == servers:
                    all_ready[session].set()

        client.on_notification = note
        try:
            await client.request("initialize", INITIALIZE)
            without: list[float] = []
            with_servers: list[float] = []
            until_ready: list[float] = []
            for _ in range(runs + 1):  # the first round untimed: it loads the SDK
                start = time.monotonic_ns()
                plain = {"cwd": str(where.work), "mcpServers": []}
                opened = await client.request("session/new", plain)
                without.append(ms(time.monotonic_ns() - start))
                await client.request("session/close", {"sessionId": opened["sessionId"]})

                start = time.monotonic_ns()
                served = {"cwd": str(where.work), "mcpServers": _servers(servers)}
                opened = await client.request("session/new", served)
                with_servers.append(ms(time.monotonic_ns() - start))
                session = opened["sessionId"]
                ready[session], all_ready[session] = set(), asyncio.Event()
                async with asyncio.timeout(60):
                    await all_ready[session].wait()
                until_ready.append(ms(time.monotonic_ns() - start))
                await client.request("session/close", {"sessionId": session})
        finally:
            await client.close()
    del without[0], with_servers[0], until_ready[0]
    parley, baseline = median(with_servers), median(without)
    detail = {
        "runs": runs,
        "servers": servers,
        "samples_ms": {"none": without, "servers": with_servers, "ready": until_ready},
    }
    return [
        Row(
            measurement=f"session/new answered, {servers} MCP servers (median)",
            unit="ms",
            parley=parley,
            baseline=baseline,
            baseline_name="no MCP servers",
            bar=f"<= {NO_SLOWER_BAR}x none",
            meets=parley <= NO_SLOWER_BAR * baseline,
            detail=detail,
        ),
        Row(
            measurement=f"session/new to {servers} MCP servers ready (median)",
            unit="ms",
            parley=median(until_ready),
            detail={"runs": runs},
        ),
    ]
