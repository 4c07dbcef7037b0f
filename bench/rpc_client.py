"""A small JSON-RPC client over a child process's stdio, for timing servers from outside.

It speaks both framings the servers under test use (NDJSON for ACP agents,
Content-Length for pygls) and stamps every incoming frame with
`time.monotonic_ns()` as it is read, so callers measure arrival rather than when
the event loop got round to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

Framing = Literal["ndjson", "content-length"]
Message = dict[str, Any]
NotificationHandler = Callable[[Message, int], None]

# Bigger than any frame the benchmarks provoke; asyncio's 64 KiB default is not.
_READ_LIMIT = 16 * 1024 * 1024
_REQUEST_TIMEOUT = 60.0
_EXIT_GRACE = 5.0
_STDERR_TAIL = 2000
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class PeerError(Exception):
    """The server answered with an error, went away, or never answered."""


class RpcClient:
    """One child process and the requests in flight to it."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        stdout: asyncio.StreamReader,
        stdout_pipe: asyncio.ReadTransport,
        framing: Framing,
        stderr_path: Path,
    ) -> None:
        self.process = process
        self.on_notification: NotificationHandler | None = None
        self._stdout = stdout
        self._stdout_pipe = stdout_pipe
        self._framing = framing
        self._stderr_path = stderr_path
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[tuple[Any, int]]] = {}
        self._reader = asyncio.create_task(self._read_loop())

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        framing: Framing,
        stderr_path: Path,
    ) -> RpcClient:
        # stdout is a pipe of our own rather than asyncio's, so its transport is
        # ours to pause: a client that stops reading must stop at the pipe, not
        # go on filling a StreamReader buffer of many megabytes.
        read_end, write_end = os.pipe()
        try:
            # stderr goes to a file so a crashed server's traceback can be shown,
            # without a pipe that would have to be drained while it runs.
            with stderr_path.open("wb") as stderr:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=write_end,
                    stderr=stderr,
                    env=dict(env),
                    cwd=cwd,
                )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        stdout = asyncio.StreamReader(limit=_READ_LIMIT)
        stdout_pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stdout), os.fdopen(read_end, "rb", 0)
        )
        return cls(process, stdout, stdout_pipe, framing, stderr_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, message: Message) -> None:
        """Queue one frame; the pipe transport writes it at once when the pipe has room."""
        body = _encode({"jsonrpc": "2.0", **message})
        if self._framing == "ndjson":
            frame = body + b"\n"
        else:
            frame = b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        assert self.process.stdin is not None
        self.process.stdin.write(frame)

    def notify(self, method: str, params: Message) -> None:
        self.send({"method": method, "params": params})

    async def request(self, method: str, params: Message) -> Any:
        result, _received_ns = await self.request_stamped(method, params)
        return result

    async def request_stamped(self, method: str, params: Message) -> tuple[Any, int]:
        """The result, and when its frame was read: the awaiting task may resume
        later, behind the frames that arrived with it."""
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT):
                return await self.request_unbounded(method, params)
        except TimeoutError:
            raise PeerError(f"no answer to {method} in {_REQUEST_TIMEOUT:.0f} s") from None

    async def request_unbounded(self, method: str, params: Message) -> tuple[Any, int]:
        """`request_stamped` waiting however long the answer takes: for a request
        that is answered only once it is told to stop."""
        request_id = next(self._ids)
        future: asyncio.Future[tuple[Any, int]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self.send({"id": request_id, "method": method, "params": params})
            return await future
        finally:
            self._pending.pop(request_id, None)

    def stop_reading(self) -> None:
        """Read nothing more until `resume_reading`: the server's writes back up in the pipe."""
        self._stdout_pipe.pause_reading()

    def resume_reading(self) -> None:
        self._stdout_pipe.resume_reading()

    async def close(self) -> None:
        """Close stdin, which every server under test takes as its cue to exit."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            async with asyncio.timeout(_EXIT_GRACE):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        self._stdout_pipe.close()

    async def _read_frame(self) -> bytes:
        """The next frame's body, or b"" at end of stream."""
        stdout = self._stdout
        if self._framing == "ndjson":
            return await stdout.readline()
        length = None
        while (line := await stdout.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if not line or length is None:
            return b""
        return await stdout.readexactly(length)

    async def _read_loop(self) -> None:
        reason = "closed its stdout"
        try:
            while frame := await self._read_frame():
                received_ns = time.monotonic_ns()
                if frame.strip():
                    self._dispatch(_decode(frame), received_ns)
        except asyncio.IncompleteReadError:
            reason = "closed its stdout mid-frame"
        except msgspec.DecodeError as exc:
            reason = f"wrote a frame that is not JSON ({exc})"
        except Exception as exc:
            # A notification handler failed; close() re-raises it from this task.
            reason = f"sent what a handler could not take ({exc!r})"
            raise
        finally:
            gone = PeerError(f"server pid {self.pid} {reason}\n{self._stderr_tail()}")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(gone)

    def _dispatch(self, message: Message, received_ns: int) -> None:
        # With a method it is a notification, or a request of the server's, which
        # no benchmark provokes (they offer no tools that would need permission).
        if "method" in message:
            if self.on_notification is not None:
                self.on_notification(message, received_ns)
            return
        future = self._pending.get(message.get("id", -1))
        if future is None or future.done():
            return
        if "error" in message:
            future.set_exception(PeerError(f"server pid {self.pid}: {message['error']}"))
        else:
            future.set_result((message.get("result"), received_ns))

    def _stderr_tail(self) -> str:
        try:
            text = self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return text[-_STDERR_TAIL:]


def rss_mb(pid: int, *, peak: bool = False) -> float:
    """Resident set size in MB (10^6 bytes) from /proc, where the kernel reports it in KiB:
    now, or the highest it has been since the process started (`peak`)."""
    field = "VmHWM" if peak else "VmRSS"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise PeerError(f"pid {pid} has no {field} (a kernel thread, or not Linux?)")


def reset_peak_rss(pid: int) -> None:
    """Start the kernel's peak RSS (`rss_mb(pid, peak=True)`) over from the RSS of now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used, all its threads, from /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields 14 and 15 (utime, stime), counted after the command name, which may
    # hold spaces and parentheses of its own.
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def clean_environ() -> dict[str, str]:
    """This environment minus the settings that would point a server at a real provider."""
    leaky = ("PARLEY_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_API_KEY", "OLLAMA_")
    return {key: value for key, value in os.environ.items() if not key.startswith(leaky)}
