"""A client that stops reading while a long answer streams: once the
daemon's output is full, the session's deltas join into the chunks still
queued (see `rpc/outbox.py`), up to a bound, and then the stream waits for
the client: the daemon's memory stays bounded, and the client, reading again,
gets every word, in far fewer chunks, then the answer.

The stream is far larger than every buffer on the way: about 60 MB of
`agent_message_chunk` frames, one per delta, against this side's read-ahead
(64 KiB), the pipe (64 KiB by default) and the daemon's high-water mark
(64 KiB)."""

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
# All the buffers above hold some 200 KB, about 1,000 of these frames; then
# what joined while the client did not read, at most 16 KiB a chunk.
MAX_CHUNKS_AFTER = 20_000
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
    """Until the daemon uses no CPU for half a second: it has taken the whole
    stream (or, were it to wait for the client, it is blocked on the pipe)."""
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


async def test_a_client_that_stops_reading_gets_every_word_once_it_reads_again(
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
        first = await daemon.until(_is_chunk)
        # Stop reading, and let the daemon run until it can do no more.
        await _until_idle(pid)
        assert _resident_bytes(pid) - baseline < MAX_GROWTH_BYTES

        text = [first["params"]["update"]["content"]["text"]]
        chunks = 0
        while True:
            frame = await daemon.receive(check=False)
            if frame.get("id") == 70:
                break
            if _is_chunk(frame):
                chunks += 1
                text.append(frame["params"]["update"]["content"]["text"])
        assert frame["result"] == {"stopReason": "end_turn"}
        # Every word, none twice, in far fewer chunks than deltas.
        assert "".join(text) == "tok " * DELTAS
        assert 0 < chunks < MAX_CHUNKS_AFTER
        assert "result" in await daemon.request("session/list", {})
