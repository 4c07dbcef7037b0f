"""The daemon's stdio on real descriptors: pipes, /dev/null and regular files,
and closing that waits until every byte has left the daemon."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest

from parleyd.rpc.framing import Framing
from parleyd.rpc.transport import WRITE_HIGH_WATER, FrameWriter, open_stdio
from tests.rpc.fakes import CollectingSink
from tests.support.raw_daemon import split_frames

# Many times what a pipe and the output's high-water mark hold.
_MANY_FRAMES = 16 * WRITE_HIGH_WATER // 1000


@contextmanager
def pipe() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    read_fd, write_fd = os.pipe()
    with (
        os.fdopen(read_fd, "rb", buffering=0) as read_end,
        os.fdopen(write_fd, "wb", buffering=0) as write_end,
    ):
        yield read_end, write_end


def dev_null(mode: str) -> BinaryIO:
    flags = os.O_RDONLY if mode == "rb" else os.O_WRONLY
    return os.fdopen(os.open(os.devnull, flags), mode, buffering=0)


class Drainer(threading.Thread):
    """Reads a pipe to its end on a thread, as a client process would."""

    def __init__(self, source: BinaryIO) -> None:
        super().__init__(daemon=True)
        self._source = source
        self.data = bytearray()

    def run(self) -> None:
        while chunk := self._source.read(1 << 16):
            self.data += chunk


async def test_close_returns_only_once_every_queued_byte_is_written() -> None:
    # More than the pipe and the high-water mark together hold: the transport
    # must still have bytes queued when close() is called.
    bodies = [b'{"n":%d,"pad":"%b"}' % (n, b"x" * 1000) for n in range(_MANY_FRAMES)]
    with pipe() as (stdin_read, _), pipe() as (stdout_read, stdout_write):
        _, sink = await open_stdio(stdin_read, stdout_write)
        drainer = Drainer(stdout_read)
        drainer.start()
        writer = FrameWriter(sink)
        for body in bodies:
            writer.write_nowait(body)
        await writer.close()
        # Block the event loop: whatever the transport still held now stays there.
        drainer.join(timeout=10)
        assert not drainer.is_alive(), "the pipe was not closed when close() returned"
    assert bytes(drainer.data) == b"".join(body + b"\n" for body in bodies)


async def test_dev_null_stdin_is_an_immediate_end_of_input(tmp_path: Path) -> None:
    with dev_null("rb") as stdin, (tmp_path / "out").open("wb") as stdout:
        reader, _ = await open_stdio(stdin, stdout)
        assert await asyncio.wait_for(reader.read(), 5) == b""


async def test_regular_files_on_both_ends(tmp_path: Path) -> None:
    (tmp_path / "in").write_bytes(b'{"a":1}\n')
    with (tmp_path / "in").open("rb") as stdin, (tmp_path / "out").open("wb") as stdout:
        reader, sink = await open_stdio(stdin, stdout)
        assert await asyncio.wait_for(reader.read(), 5) == b'{"a":1}\n'
        writer = FrameWriter(sink)
        writer.write_nowait(b"{}")
        await writer.close()
    assert (tmp_path / "out").read_bytes() == b"{}\n"


async def test_dev_null_stdout_takes_every_frame(tmp_path: Path) -> None:
    with pipe() as (stdin_read, _), dev_null("wb") as stdout:
        _, sink = await open_stdio(stdin_read, stdout)
        writer = FrameWriter(sink)
        for _ in range(100):
            writer.write_nowait(b"{}")
        await writer.send(b"{}")
        await writer.close()
        assert writer.closed


@pytest.mark.parametrize("framing", [Framing.NDJSON, Framing.CONTENT_LENGTH])
async def test_a_batch_is_redacted_frame_by_frame_and_stays_well_framed(framing: Framing) -> None:
    sink = CollectingSink()
    writer = FrameWriter(sink, framing)
    secret = b'{"error":"Authorization: Bearer abcdefghijklmnop1234"}'
    plain = [b'{"n":%d}' % n for n in range(3)]
    for body in (plain[0], secret, *plain[1:]):
        writer.write_nowait(body)
    writer.flush()

    frames = split_frames(bytes(sink.data), framing.value)
    assert [frames[0], *frames[2:]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert frames[1] == {"error": "Authorization: Bearer [REDACTED]"}


@pytest.mark.parametrize("framing", [Framing.NDJSON, Framing.CONTENT_LENGTH])
async def test_send_all_writes_every_frame_in_order_after_what_was_queued(
    framing: Framing,
) -> None:
    # Several times what the pipe and the high-water mark hold, so sending has
    # to wait for the reader; one frame carries a credential.
    bodies = [b'{"n":%d,"pad":"%b"}' % (n, b"x" * 1000) for n in range(_MANY_FRAMES)]
    bodies[7] = b'{"error":"Authorization: Bearer abcdefghijklmnop1234"}'
    with pipe() as (stdin_read, _), pipe() as (stdout_read, stdout_write):
        _, sink = await open_stdio(stdin_read, stdout_write)
        drainer = Drainer(stdout_read)
        drainer.start()
        writer = FrameWriter(sink, framing)
        writer.write_nowait(b'{"first":true}')
        await writer.send_all(iter(bodies))
        await writer.close()
        drainer.join(timeout=10)
    frames = split_frames(bytes(drainer.data), framing.value)
    assert frames[0] == {"first": True}
    assert frames[8] == {"error": "Authorization: Bearer [REDACTED]"}
    assert [frame["n"] for frame in frames[1:8] + frames[9:]] == [
        n for n in range(len(bodies)) if n != 7
    ]
