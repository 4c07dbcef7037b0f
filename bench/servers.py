"""parleyd and the baseline servers as the benchmarks run them, and the ACP calls they make."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rpc_client import Framing, Message, RpcClient, clean_environ, rss_mb

BENCH_DIR = Path(__file__).resolve().parent
# Every server runs on this same interpreter, so start-up ratios compare servers,
# not Python builds or site-packages.
PARLEYD = (sys.executable, "-m", "parleyd.main")
MINIMAL_SERVER = (sys.executable, str(BENCH_DIR / "baselines" / "minimal_stdio_server.py"))
PYGLS_SERVER = (sys.executable, str(BENCH_DIR / "baselines" / "pygls_server.py"))

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
    """An initialized parleyd and the ACP calls the benchmarks make."""

    def __init__(self, client: RpcClient, where: Scratch) -> None:
        self._client = client
        self._where = where
        self.on_chunk: ChunkHandler | None = None
        client.on_notification = self._notification

    @classmethod
    @asynccontextmanager
    async def running(
        cls, base_url: str | None = None, profile_to: Path | None = None
    ) -> AsyncIterator[Daemon]:
        # cProfile writes its file when the daemon exits, which closing stdin brings about.
        argv = PARLEYD if profile_to is None else _profiled(profile_to)
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

    async def new_session(self) -> str:
        result = await self._client.request(
            "session/new", {"cwd": str(self._where.work), "mcpServers": []}
        )
        return str(result["sessionId"])

    async def prompt(self, session_id: str, text: str) -> str:
        """Run one turn; its stop reason."""
        prompt = [{"type": "text", "text": text}]
        result = await self._client.request(
            "session/prompt", {"sessionId": session_id, "prompt": prompt}
        )
        return str(result["stopReason"])

    def cancel(self, session_id: str) -> None:
        self._client.notify("session/cancel", {"sessionId": session_id})

    def _notification(self, message: Message, received_ns: int) -> None:
        if self.on_chunk is None or message.get("method") != "session/update":
            return
        update: dict[str, Any] = message["params"]["update"]
        if update.get("sessionUpdate") == "agent_message_chunk":
            self.on_chunk(update["content"]["text"], received_ns)


def _profiled(profile_to: Path) -> tuple[str, ...]:
    return (sys.executable, "-m", "cProfile", "-o", str(profile_to), "-m", "parleyd.main")
