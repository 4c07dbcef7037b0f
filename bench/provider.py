"""A local OpenAI-compatible model that streams what the benchmark asks, and a bare reader of it.

The server runs in the benchmark's own process, so a chunk's send time and a
delta's receive time come from the same monotonic clock whether the delta came
through parleyd or straight to the bare httpx reader. A load to measure beside
runs in a process of its own (`in_own_process`), so that streaming it never
holds up the benchmark's client.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import msgspec

from parleyd.offline.http import HttpRequest, HttpResponder, LoopbackService

DELTA_TEXT = "tok "
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


def _event(choices: list[dict[str, object]], **extra: object) -> bytes:
    # Shaped like OpenAI's own chunks, nulls included, so the daemon parses as much
    # per delta as it would from the real service.
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "bench",
        "system_fingerprint": "fp_bench",
        "choices": choices,
        **extra,
    }
    return b"data: " + msgspec.json.encode(chunk) + b"\n\n"


def _choice(delta: dict[str, object], finish_reason: str | None = None) -> dict[str, object]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


_ROLE = _event([_choice({"role": "assistant", "content": "", "refusal": None})])
_CONTENT = _event([_choice({"content": DELTA_TEXT})])
_FINISH = _event([_choice({}, "stop")])
_DONE = b"data: [DONE]\n\n"


def _usage(deltas: int) -> bytes:
    usage = {"prompt_tokens": 20, "completion_tokens": deltas, "total_tokens": 20 + deltas}
    return _event([], usage=usage)


@dataclass(frozen=True)
class Plan:
    """How the next stream goes: `deltas` content chunks, `interval` seconds apart (0: flat out)."""

    deltas: int
    interval: float = 0.0


@dataclass
class DeltaClock:
    """When each of a stream's `expected` deltas arrived, by index; filled in by its reader."""

    expected: int
    received_ns: list[int] = field(default_factory=list)
    _characters: int = 0

    @property
    def complete(self) -> bool:
        return len(self.received_ns) == self.expected

    def on_text(self, text: str, received_ns: int) -> None:
        """A text chunk arrived. Counted by characters, so that deltas a daemon
        merged while the client was behind are still timed."""
        self._characters += len(text)
        self.reached(self._characters // len(DELTA_TEXT), received_ns)

    def reached(self, count: int, now_ns: int) -> None:
        """`count` deltas have now arrived, the newest of them at `now_ns`. Counting
        rather than one call per delta lets a reader that gets several at once say so."""
        missing = min(count, self.expected) - len(self.received_ns)
        if missing > 0:
            self.received_ns.extend([now_ns] * missing)


class BenchProvider(LoopbackService):
    """`async with BenchProvider() as provider:` set `provider.plan`, then POST
    `{provider.base_url}/chat/completions`; when `stamping`, `provider.sent_ns`
    holds the send time of each content chunk of the last stream."""

    def __init__(self, *, stamping: bool = True) -> None:
        super().__init__()
        self.plan = Plan(deltas=1)
        self.sent_ns: list[int] = []
        self._stamping = stamping

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def _handle(self, request: HttpRequest, responder: HttpResponder) -> None:
        if not request.path.endswith("/chat/completions"):
            await responder.start(404, {"Content-Type": "text/plain"})
            await responder.write(b"the bench provider serves chat completions only\n")
            return
        plan = self.plan
        sent = self.sent_ns = []
        await responder.start(200, _SSE_HEADERS)
        await responder.write(_ROLE)
        for index in range(plan.deltas):
            if index and plan.interval:
                await asyncio.sleep(plan.interval)
            if self._stamping:
                sent.append(time.monotonic_ns())
            await responder.write(_CONTENT)
        await responder.write(_FINISH)
        await responder.write(_usage(plan.deltas))
        await responder.write(_DONE)


async def read_bare(client: httpx.AsyncClient, base_url: str, clock: DeltaClock) -> None:
    """The baseline: read the stream with httpx and nothing else, one data line per chunk.

    No JSON is decoded: this is the floor any client of the same server pays.
    """
    body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "bench"}]}
    async with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        response.raise_for_status()
        data_lines = 0
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                data_lines += 1
                # The first data line is the role chunk, which carries no text.
                clock.reached(data_lines - 1, time.monotonic_ns())


@asynccontextmanager
async def in_own_process(plan: Plan) -> AsyncIterator[str]:
    """A provider streaming `plan` to every request from a child process: its base URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        str(plan.deltas),
        str(plan.interval),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        base_url = (await process.stdout.readline()).decode().strip()
        if not base_url:
            raise RuntimeError(f"the provider process exited ({await process.wait()})")
        yield base_url
    finally:
        process.stdin.close()
        await process.wait()


async def _serve_until_stdin_closes(plan: Plan) -> None:
    # A real provider's work is done on another machine. This one shares the
    # daemon's: at the lowest priority it takes only the CPU the daemon and
    # the measuring client leave, so it loads the daemon without starving it.
    os.nice(19)
    # Its streams are too long to keep a time for every chunk of.
    async with BenchProvider(stamping=False) as provider:
        provider.plan = plan
        print(provider.base_url, flush=True)
        await asyncio.to_thread(sys.stdin.buffer.read)


if __name__ == "__main__":
    asyncio.run(_serve_until_stdin_closes(Plan(int(sys.argv[1]), float(sys.argv[2]))))
