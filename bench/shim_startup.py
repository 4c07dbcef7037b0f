"""The `parleyd` shim, what editors run: spawn to `initialize` answered through
the user's warm daemon, beside a stdlib-only process that answers a line (the
floor for any Python process), a cold start (the shim starts the daemon) and
`parleyd --standalone` (a daemon per editor, as before the shim); what the shim
and the shared daemon hold in memory; and spawn to `session/load` answered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from report import Row
from rpc_client import Message, RpcClient, rss_mb
from servers import BENCH_DIR, INITIALIZE, Scratch, parleyd_env, scratch
from stats import median, ms
from stored import ONE_TURN, write_sessions

from parley_client.scripts import console_script

# What editors run: the console script (pip's wrapper, which imports re), else the module.
_SCRIPT = console_script("parleyd")
SHIM = (str(_SCRIPT),) if _SCRIPT else (sys.executable, "-m", "parleyd.shim")
STANDALONE = (*SHIM, "--standalone")
LINE_SERVER = (sys.executable, str(BENCH_DIR / "baselines" / "stdlib_line_server.py"))
# The shim has to start an interpreter, as any Python process does; all the
# rest (its imports, the connection, the daemon's answer) may cost that again.
WARM_BAR = 2.0
# Long enough for start-up garbage to be collected and lazy imports to settle.
SETTLE = 1.0
# A daemon the bench leaves behind (it crashed) goes soon; none goes mid-run.
IDLE_EXIT = "60"
_STOP_TIMEOUT = 30.0

Calls = Sequence[tuple[str, Message]]
INITIALIZE_ONLY: Calls = (("initialize", INITIALIZE),)


@dataclass(frozen=True)
class Place:
    """A scratch home and work folder, and the runtime folder shims there meet
    their daemon in."""

    where: Scratch
    runtime: Path
    env: dict[str, str]

    async def spawn(self, argv: Sequence[str]) -> RpcClient:
        return await RpcClient.spawn(
            argv,
            env=self.env,
            cwd=self.where.work,
            framing="ndjson",
            stderr_path=self.where.stderr,
        )

    def daemon_pid(self) -> int:
        """The pid of the one daemon listening here: the socket's peer, as the kernel says."""
        (path,) = self.runtime.glob("*.sock")
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(path))
            credentials = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        pid, _uid, _gid = struct.unpack("3i", credentials)
        return int(pid)

    def load_calls(self, session_id: str) -> Calls:
        params = {"sessionId": session_id, "cwd": str(self.where.work), "mcpServers": []}
        return (*INITIALIZE_ONLY, ("session/load", params))


@asynccontextmanager
async def place() -> AsyncIterator[Place]:
    """A place of its own; the daemon a shim started there is stopped on the way out."""
    with scratch() as where:
        runtime = where.home.parent / "run"
        env = parleyd_env(where) | {
            "PARLEY_RUNTIME_DIR": str(runtime),
            "PARLEY_DAEMON_IDLE_EXIT": IDLE_EXIT,
        }
        here = Place(where, runtime, env)
        try:
            yield here
        finally:
            if any(runtime.glob("*.sock")):
                await _stop(here.daemon_pid())


async def _stop(pid: int) -> None:
    """SIGTERM, and wait until it is gone: it is no child of ours to wait for."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead, and who reaps it is this machine's init


async def time_to_answer(argv: Sequence[str], at: Place, calls: Calls) -> float:
    """Milliseconds from asking for the process to holding the answer to its last call."""
    start = time.monotonic_ns()
    client = await at.spawn(argv)
    try:
        for method, params in calls:
            await client.request(method, params)
        return ms(time.monotonic_ns() - start)
    finally:
        await client.close()


async def cold_start() -> float:
    """Spawn to `initialize` answered by a shim that finds no daemon and starts one."""
    async with place() as fresh:
        return await time_to_answer(SHIM, fresh, INITIALIZE_ONLY)


async def peak_rss_answering(argv: Sequence[str], at: Place) -> float:
    """The most a process held up to its `initialize` answer, still connected."""
    client = await at.spawn(argv)
    try:
        await client.request("initialize", INITIALIZE)
        return rss_mb(client.pid, peak=True)
    finally:
        await client.close()


async def standalone_rss_one_session() -> float:
    async with place() as alone:
        client = await alone.spawn(STANDALONE)
        try:
            await _open_session(client, alone)
            await asyncio.sleep(SETTLE)
            return rss_mb(client.pid)
        finally:
            await client.close()


async def shared_rss(sessions: int) -> tuple[float, float]:
    """The shared daemon's RSS with one idle session, then with `sessions`, each
    opened by a shim of its own and kept open."""
    async with place() as shared:
        clients: list[RpcClient] = []

        async def connect() -> None:
            clients.append(client := await shared.spawn(SHIM))
            await _open_session(client, shared)

        try:
            await connect()
            await asyncio.sleep(SETTLE)
            one = rss_mb(shared.daemon_pid())
            for _ in range(sessions - 1):
                await connect()
            await asyncio.sleep(SETTLE)
            return one, rss_mb(shared.daemon_pid())
        finally:
            for client in clients:
                await client.close()


async def _open_session(client: RpcClient, at: Place) -> None:
    await client.request("initialize", INITIALIZE)
    await client.request("session/new", {"cwd": str(at.where.work), "mcpServers": []})


@dataclass(frozen=True)
class Memory:
    """In MB: peaks of the shim and the line server once they answered; the shared
    daemon's RSS with one idle session, then with one per editor."""

    shim_peak: float
    line_peak: float
    one_session: float
    idle_sessions: float


async def run(runs: int, editors: int) -> list[Row]:
    async with place() as warm, place() as alone:
        # The same one-turn session in each home: the standalone daemon must not
        # wait on the lock of a session the shared daemon holds.
        (warm_session,) = write_sessions(warm.where.home, warm.where.work, ONE_TURN, 1)
        (alone_session,) = write_sessions(alone.where.home, alone.where.work, ONE_TURN, 1)
        starts: dict[str, Callable[[], Awaitable[float]]] = {
            "line server": lambda: time_to_answer(LINE_SERVER, warm, INITIALIZE_ONLY),
            "warm shim": lambda: time_to_answer(SHIM, warm, INITIALIZE_ONLY),
            "standalone": lambda: time_to_answer(STANDALONE, alone, INITIALIZE_ONLY),
            "cold shim": cold_start,
            "warm shim load": lambda: time_to_answer(SHIM, warm, warm.load_calls(warm_session)),
            "standalone load": lambda: time_to_answer(
                STANDALONE, alone, alone.load_calls(alone_session)
            ),
        }
        # One untimed start first: it starts the warm daemon, and fills the page
        # cache for every later start.
        await starts["warm shim"]()
        samples: dict[str, list[float]] = {name: [] for name in starts}
        # Interleaved rounds, so drift in the machine's load touches every figure alike.
        for _ in range(runs):
            for name, start in starts.items():
                samples[name].append(await start())
        shim_peak = await peak_rss_answering(SHIM, warm)
        line_peak = await peak_rss_answering(LINE_SERVER, warm)
    one_session, idle_sessions = await shared_rss(editors)
    memory = Memory(shim_peak, line_peak, one_session, idle_sessions)
    return _rows(samples, memory, await standalone_rss_one_session(), editors)


def _rows(
    samples: dict[str, list[float]], memory: Memory, standalone_one: float, editors: int
) -> list[Row]:
    middle = {name: median(values) for name, values in samples.items()}
    warm, line, standalone = middle["warm shim"], middle["line server"], middle["standalone"]
    idle_sessions = memory.idle_sessions
    detail = {"runs": len(samples["warm shim"]), "samples_ms": samples}
    return [
        Row(
            measurement="shim start-up to initialize, warm daemon (median)",
            unit="ms",
            parley=warm,
            baseline=line,
            baseline_name="stdlib line server",
            bar=f"<= {WARM_BAR:g}x stdlib",
            meets=warm <= WARM_BAR * line,
            detail=detail,
        ),
        Row(
            measurement="shim start-up to initialize, warm daemon (median)",
            unit="ms",
            parley=warm,
            baseline=standalone,
            baseline_name="parleyd --standalone",
        ),
        Row(
            measurement="shim start-up to initialize, cold: starts the daemon (median)",
            unit="ms",
            parley=middle["cold shim"],
            baseline=standalone,
            baseline_name="parleyd --standalone",
        ),
        Row(
            measurement="shim start-up to session/load of a one-turn session (median)",
            unit="ms",
            parley=middle["warm shim load"],
            baseline=middle["standalone load"],
            baseline_name="parleyd --standalone",
        ),
        Row(
            measurement="shim peak RSS, connected",
            unit="MB",
            parley=memory.shim_peak,
            baseline=memory.line_peak,
            baseline_name="stdlib line server",
        ),
        Row(
            measurement=f"shared daemon RSS, {editors} shims with an idle session each",
            unit="MB",
            parley=idle_sessions,
            baseline=editors * standalone_one,
            baseline_name=f"{editors} x parleyd --standalone",
        ),
        Row(
            measurement=f"shared daemon RSS, {editors} shims with an idle session each",
            unit="MB",
            parley=idle_sessions,
            baseline=memory.one_session,
            baseline_name="same daemon, one shim",
        ),
    ]
