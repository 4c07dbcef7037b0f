"""`parleyd --listen` as a test runs it, and what a client of a `tcp://` or
`ws://` listener reads before it connects."""

from __future__ import annotations

import asyncio
import signal
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.daemon import PARLEYD


@asynccontextmanager
async def listening(
    env: Mapping[str, str], address: str, *flags: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """parleyd listening on `address`, and the line it announced itself with.
    Unless it exited by itself, it is stopped with SIGTERM, as a service
    manager would; either way it must exit 0."""
    process = await asyncio.create_subprocess_exec(
        *PARLEYD, "--listen", address, *flags, env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode().strip()
        yield process, line
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


def token_in(file: Path) -> str:
    """The listener's token, from a file only its owner may read, in a folder
    only its owner may enter."""
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    return file.read_text().strip()
