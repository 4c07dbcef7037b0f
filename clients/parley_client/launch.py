"""Where the daemon runs: a child process on stdio pipes, or a socket it listens on.

Both give the JSON-RPC layer a reader/writer pair, close it, and say in words
why the stream ended, so a dead daemon surfaces as a sentence, not a hang.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Final, Literal, Protocol, TypeAlias

from parley_client.scripts import daemon_command

# The daemon's own frame limit: a tool output up to this size arrives as one line.
MAX_FRAME_BYTES: Final = 64 * 1024 * 1024
# How long the daemon gets to finish after its stdin closes (it cancels running
# turns and syncs every session log) before it is terminated.
EXIT_GRACE_SECONDS: Final = 5.0
_STDERR_TAIL_LINES: Final = 20

StderrTarget: TypeAlias = Literal["capture"] | Path | int | IO[Any] | None
"""Where the daemon's stderr goes: None inherits ours; "capture" keeps its last
lines in memory for the error raised when it dies; a Path is appended to; an int
(`subprocess.DEVNULL`) or an open file is handed to the process as is."""


class Endpoint(Protocol):
    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...

    async def close(self) -> None: ...

    async def describe_end(self) -> str:
        """Why the stream from the daemon ended, as a sentence for an error message."""
        ...


class DaemonProcess:
    """`parleyd` as a child speaking on its stdin/stdout."""

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        stderr: StderrTarget = None,
        cwd: Path | None = None,
    ) -> None:
        self.command = list(command) if command is not None else daemon_command()
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._stderr = stderr
        self._process: asyncio.subprocess.Process | None = None
        self._opened_file: IO[bytes] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        self._drain: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        stderr: Any = self._stderr
        if self._stderr == "capture":
            stderr = subprocess.PIPE
        elif isinstance(self._stderr, Path):
            self._opened_file = stderr = self._stderr.open("ab")
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=self.env,
                cwd=self.cwd,
                limit=MAX_FRAME_BYTES,
                # Its own process group: a Ctrl-C in the terminal is for the client
                # to turn into session/cancel, not a signal that kills the daemon.
                start_new_session=True,
            )
        except OSError as exc:
            self._close_file()
            raise OSError(f"cannot start {self.command[0]}: {exc.strerror or exc}") from exc
        if self._process.stderr is not None:
            self._drain = asyncio.create_task(self._keep_tail(self._process.stderr))
        assert self._process.stdout is not None and self._process.stdin is not None
        return self._process.stdout, self._process.stdin

    async def _keep_tail(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self._tail.append(line.decode(errors="replace").rstrip())

    async def close(self) -> None:
        process = self._process
        if process is None:
            return
        self._closing = True
        if process.stdin is not None and not process.stdin.is_closing():
            # End of input is the daemon's cue to cancel turns, sync logs and exit.
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), EXIT_GRACE_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), EXIT_GRACE_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._drain is not None:
            await self._drain
        self._close_file()

    def _close_file(self) -> None:
        if self._opened_file is not None:
            self._opened_file.close()
            self._opened_file = None

    async def describe_end(self) -> str:
        if self._closing:
            return "the connection to parleyd was closed by the client"
        assert self._process is not None
        try:
            code = await asyncio.wait_for(self._process.wait(), EXIT_GRACE_SECONDS)
        except TimeoutError:
            return "parleyd closed its output but is still running"
        if self._drain is not None:
            await self._drain
        last = next((line for line in reversed(self._tail) if line.strip()), None)
        reason = f"parleyd exited with code {code}"
        return f"{reason}: {last}" if last else reason


class SocketEndpoint:
    """A daemon already serving `parleyd --listen tcp://HOST:PORT` or `--listen unix:PATH`."""

    def __init__(
        self,
        address: str,
        connect: Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]],
    ) -> None:
        self.address = address
        self._connect = connect
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False

    @classmethod
    def tcp(cls, host: str, port: int) -> SocketEndpoint:
        return cls(
            f"{host}:{port}", lambda: asyncio.open_connection(host, port, limit=MAX_FRAME_BYTES)
        )

    @classmethod
    def unix(cls, path: Path) -> SocketEndpoint:
        return cls(
            f"unix:{path}",
            lambda: asyncio.open_unix_connection(str(path), limit=MAX_FRAME_BYTES),
        )

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            reader, self._writer = await self._connect()
        except OSError as exc:
            raise OSError(
                f"cannot connect to parleyd at {self.address}: {exc.strerror or exc}"
            ) from exc
        return reader, self._writer

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def describe_end(self) -> str:
        if self._closing:
            return "the connection to parleyd was closed by the client"
        return f"parleyd at {self.address} closed the connection"
