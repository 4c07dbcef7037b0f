"""parleyd and the baseline servers as the benchmarks run them, and the ACP calls they make."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpc_client import (
    Framing,
    Message,
    RpcClient,
    clean_environ,
    cpu_seconds,
    reset_peak_rss,
    rss_mb,
)

BENCH_DIR = Path(__file__).resolve().parent
# Every server runs on this same interpreter, so start-up ratios compare servers,
# not Python builds or site-packages.
PARLEYD = (sys.executable, "-m", "parleyd.main")
MINIMAL_SERVER = (sys.executable, str(BENCH_DIR / "baselines" / "minimal_stdio_server.py"))
PYGLS_SERVER = (sys.executable, str(BENCH_DIR / "baselines" / "pygls_server.py"))
MSGSPEC_FLOOR_AGENT = (sys.executable, str(BENCH_DIR / "baselines" / "msgspec_floor_agent.py"))

INITIALIZE = {
    "protocolVersion": 1,
    "clientCapabilities": {"fs": {"readTextFile": False, "writeTextFile": False}},
}

ChunkHandler = Callable[[str, int], None]


class UnexpectedAnswer(Exception):
    """The daemon answered, but not as the benchmark needs: its figure would mean nothing."""


@dataclass(frozen=True)
class Scratch:
    """A fresh PARLEY_HOME and working directory, so no run sees another's sessions."""

    home: Path
    work: Path
    stderr: Path


@contextmanager
def scratch() -> Iterator[Scratch]:
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        root = Path(tmp).resolve()
        work = root / "work"
        work.mkdir()
        yield Scratch(home=root / "home", work=work, stderr=root / "stderr.log")


def parleyd_env(where: Scratch, base_url: str | None = None) -> dict[str, str]:
    """The daemon's environment: the offline model, or an OpenAI-compatible server at base_url."""
    env = clean_environ()
    # A config file of the user's would change what is measured; this one never exists.
    env.update(PARLEY_HOME=str(where.home), PARLEY_CONFIG=str(where.home / "absent.toml"))
    if base_url is None:
        env["PARLEY_PROVIDER"] = "offline"
    else:
        env.update(
            PARLEY_PROVIDER="openai",
            OPENAI_BASE_URL=base_url,
            OPENAI_API_KEY="bench",
            PARLEY_MODEL="bench",
        )
    return env


async def spawn(
    argv: Sequence[str], where: Scratch, framing: Framing = "ndjson", base_url: str | None = None
) -> RpcClient:
    return await RpcClient.spawn(
        argv,
        env=parleyd_env(where, base_url),
        cwd=where.work,
        framing=framing,
        stderr_path=where.stderr,
    )


class Daemon:
    """An initialized ACP agent (parleyd unless told otherwise) and the calls the
    benchmarks make."""

    def __init__(self, client: RpcClient, where: Scratch) -> None:
        self._client = client
        self._where = where
        self._chunk_handlers: dict[str, ChunkHandler] = {}
        client.on_notification = self._notification

    @classmethod
    @asynccontextmanager
    async def running(
        cls, base_url: str | None = None, argv: Sequence[str] = PARLEYD
    ) -> AsyncIterator[Daemon]:
        with scratch() as where:
            client = await spawn(argv, where, base_url=base_url)
            try:
                await client.request("initialize", INITIALIZE)
                yield cls(client, where)
            finally:
                await client.close()

    @property
    def rss_mb(self) -> float:
        return rss_mb(self._client.pid)

    @property
    def peak_rss_mb(self) -> float:
        """The highest RSS since the start or the last `reset_peak_rss`."""
        return rss_mb(self._client.pid, peak=True)

    def reset_peak_rss(self) -> None:
        reset_peak_rss(self._client.pid)

    @property
    def cpu_seconds(self) -> float:
        return cpu_seconds(self._client.pid)

    async def new_session(self, settings: Message | None = None) -> str:
        """A session in the scratch directory; `settings` go in its `_meta.parley`."""
        params: Message = {"cwd": str(self._where.work), "mcpServers": []}
        if settings:
            params["_meta"] = {"parley": settings}
        result = await self._client.request("session/new", params)
        return str(result["sessionId"])

    async def prompt(self, session_id: str, text: str) -> str:
        """Run one turn; its stop reason."""
        stop, _received_ns = await self.prompt_stamped(session_id, text)
        return stop

    async def prompt_stamped(self, session_id: str, text: str) -> tuple[str, int]:
        """Run one turn; its stop reason and when the answer was read."""
        result, received_ns = await self._client.request_stamped(
            "session/prompt", _prompt(session_id, text)
        )
        return str(result["stopReason"]), received_ns

    async def prompt_until_cancelled(self, session_id: str, text: str) -> str:
        """A turn the model streams for ever: its stop reason, however long it runs."""
        result, _received_ns = await self._client.request_unbounded(
            "session/prompt", _prompt(session_id, text)
        )
        return str(result["stopReason"])

    def cancel(self, session_id: str) -> None:
        self._client.notify("session/cancel", {"sessionId": session_id})

    async def pause_stamped(self, session_id: str) -> tuple[Message, int]:
        """Pause the session's turn; the answer and when it was read."""
        result, received_ns = await self._client.request_stamped(
            "_parley/session/pause", {"sessionId": session_id}
        )
        return dict(result), received_ns

    async def resume(self, session_id: str) -> None:
        await self._client.request("_parley/session/resume", {"sessionId": session_id})

    @contextmanager
    def watching(self, session_id: str, on_chunk: ChunkHandler) -> Iterator[None]:
        """Inside, each text chunk of the session's own conversation goes to `on_chunk`."""
        self._chunk_handlers[session_id] = on_chunk
        try:
            yield
        finally:
            del self._chunk_handlers[session_id]

    @contextmanager
    def reading_nothing(self) -> Iterator[None]:
        """Inside, nothing the agent writes is read: it backs up in the pipe."""
        self._client.stop_reading()
        try:
            yield
        finally:
            self._client.resume_reading()

    def _notification(self, message: Message, received_ns: int) -> None:
        if message.get("method") != "session/update":
            return
        params: dict[str, Any] = message["params"]
        handler = self._chunk_handlers.get(params["sessionId"])
        update: dict[str, Any] = params["update"]
        if handler is not None and update.get("sessionUpdate") == "agent_message_chunk":
            handler(update["content"]["text"], received_ns)


def _prompt(session_id: str, text: str) -> Message:
    return {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}


def profiled(profile_to: Path) -> tuple[str, ...]:
    """parleyd under cProfile, which writes its file when the daemon exits (when stdin closes)."""
    return (sys.executable, "-m", "cProfile", "-o", str(profile_to), "-m", "parleyd.main")
