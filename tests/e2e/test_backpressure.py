"""A client that stops reading while a long answer streams: the daemon stops
producing once its buffers are full (backpressure), its memory stays bounded,
and it still reads and answers the client's cancel.

The stream is far larger than every buffer on the way: about 60 MB of
`agent_message_chunk` frames against this side's read-ahead (128 KiB), the
pipe (64 KiB by default) and the daemon's high-water mark (1 MiB)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import offline_env
from tests.support.raw_daemon import RawDaemon, raw_daemon

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the daemon's CPU time and memory in /proc"
)

DELTAS = 200_000  # the scripted model's cap for `bench N`
READ_AHEAD = 64 * 1024
# All the buffers above hold some 1.2 MB, about 5,000 of these frames; the
# daemon's batching and the turn's own last steps add a few hundred more.
MAX_CHUNKS_IN_FLIGHT = 20_000
MAX_GROWTH_BYTES = 40 * 1024 * 1024


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def _until_idle(pid: int) -> None:
    """Until the daemon uses no CPU for half a second: it is blocked on the full
    pipe, or (without backpressure) it has produced the whole stream."""
    async with asyncio.timeout(120):
        before = _cpu_ticks(pid)
        while True:
            await asyncio.sleep(0.5)
            now = _cpu_ticks(pid)
            if now == before:
                return
            before = now


def _is_chunk(frame: dict[str, Any]) -> bool:
    return frame.get("params", {}).get("update", {}).get("sessionUpdate") == "agent_message_chunk"


async def _prompt(daemon: RawDaemon, session_id: str, request_id: int) -> None:
    await daemon.send(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "session/prompt",
            "params": {
                "sessionId": session_id,
                "prompt": [{"type": "text", "text": f"bench {DELTAS}"}],
            },
        }
    )


async def test_a_client_that_stops_reading_holds_the_stream_back(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workspace = tmp_path_factory.mktemp("workspace")
    async with raw_daemon(offline_env(tmp_path / "home"), read_ahead=READ_AHEAD) as daemon:
        pid = daemon.process.pid
        await daemon.initialize()
        session = await daemon.request("session/new", {"cwd": str(workspace)})
        session_id = session["result"]["sessionId"]
        baseline = _resident_bytes(pid)

        await _prompt(daemon, session_id, 70)
        while not _is_chunk(await daemon.receive()):
            pass
        # Stop reading, and let the daemon run until it can do no more.
        await _until_idle(pid)
        assert _resident_bytes(pid) - baseline < MAX_GROWTH_BYTES

        # The daemon still reads while it cannot write: the cancel stops the turn.
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
        )
        chunks = 0
        while True:
            frame = await daemon.receive(check=False)
            if frame.get("id") == 70:
                break
            chunks += _is_chunk(frame)
        assert frame["result"] == {"stopReason": "cancelled"}
        assert 0 < chunks < MAX_CHUNKS_IN_FLIGHT
        assert "result" in await daemon.request("session/list", {})
