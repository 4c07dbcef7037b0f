"""`parleyd --listen`: a TCP port admits only clients that present the token
from the file the daemon names, a Unix socket only its owner; both clean up
after themselves."""

from __future__ import annotations

import asyncio
import re
import socket
import stat
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from parley_client import ParleyClient
from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import PARLEYD, offline_env
from tests.support.listeners import listening, token_in
from tests.support.raw_daemon import RawDaemon

TCP_LINE = re.compile(r"parleyd listening on tcp://([\d.]+):(\d+) token-file (.+)")


@asynccontextmanager
async def announced(home: Path, address: str) -> AsyncIterator[str]:
    """parleyd listening on `address`; the line it announced itself with."""
    async with listening(offline_env(home), address) as (_, line):
        yield line


@asynccontextmanager
async def connected(
    reader_writer: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> AsyncIterator[RawDaemon]:
    reader, writer = reader_writer
    try:
        yield RawDaemon(reader, writer)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_tcp_admits_only_a_client_with_the_token(tmp_path: Path) -> None:
    async with announced(tmp_path / "home", "tcp://127.0.0.1:0") as line:
        found = TCP_LINE.fullmatch(line)
        assert found, line
        host, port, token_file = found.group(1), int(found.group(2)), Path(found.group(3))
        token = token_in(token_file)

        async with connected(await asyncio.open_connection(host, port)) as intruder:
            refused = await intruder.initialize()
            assert refused["error"]["code"] == -32000
            assert str(token_file) in refused["error"]["message"]
            wrong = await intruder.request(
                "initialize", {"protocolVersion": 1, "_meta": {"parley": {"token": "guess"}}}
            )
            assert wrong["error"]["code"] == -32000
            listed = await intruder.request("session/list", {})
            assert listed["error"]["code"] == -32000
            assert "'session/list'" in listed["error"]["message"]

            admitted = await intruder.request(
                "initialize", {"protocolVersion": 1, "_meta": {"parley": {"token": token}}}
            )
            assert admitted["result"]["protocolVersion"] == 1
            assert "result" in await intruder.request("session/list", {})

        client = ParleyClient.connect_tcp(
            host, port, token_file=token_file, frame_observer=FrameChecker().observe
        )
        async with client:
            await client.initialize()
            await client.all_sessions()
    assert not await asyncio.to_thread(token_file.exists)


async def test_unix_socket_is_private_and_needs_no_token(tmp_path: Path) -> None:
    path = tmp_path / "parley.sock"
    async with announced(tmp_path / "home", f"unix:{path}") as line:
        assert line == f"parleyd listening on unix:{path}"
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        async with ParleyClient.connect_unix(path, frame_observer=FrameChecker().observe) as client:
            await client.initialize()
            await client.all_sessions()
    assert not path.exists()


async def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "parley.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: what a killed daemon leaves
    async with announced(tmp_path / "home", f"unix:{path}") as line:
        assert line.endswith(str(path))
        async with connected(await asyncio.open_unix_connection(str(path))) as daemon:
            assert "result" in await daemon.initialize()


def _listen_and_exit(tmp_path: Path, address: str) -> subprocess.CompletedProcess[str]:
    """parleyd asked to listen where it must refuse to: it exits at once."""
    return subprocess.run(
        [*PARLEYD, "--listen", address],
        env=offline_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("tcp://127.0.0.1", "tcp://HOST:PORT"),
        ("http://127.0.0.1:80", "tcp://HOST:PORT"),
        ("unix:", "socket path"),
        ("ws://127.0.0.1", "ws://HOST:PORT"),
        ("ws://127.0.0.1:0/chat", "/acp only"),
        ("wss://127.0.0.1:0", "TLS proxy"),
    ],
)
def test_a_bad_address_is_a_usage_error(tmp_path: Path, address: str, expected: str) -> None:
    run = _listen_and_exit(tmp_path, address)
    assert run.returncode == 2
    assert expected in run.stderr


def test_a_path_that_is_no_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    run = _listen_and_exit(tmp_path, f"unix:{path}")
    assert run.returncode == 2
    assert "not a socket" in run.stderr
    assert path.read_text() == "keep me"
