"""Which processes of a process group are still alive, read from /proc: how the
tests see that a stopped command took everything it started with it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

needs_proc = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="checks process groups through /proc"
)


def live_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies. A zombie is dead already; whether
    it gets reaped depends on this machine's init, not on the tool."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat_file.parent.name))
    return members


async def members_after_kill(pgid: int) -> list[int]:
    """The group's live members once SIGKILL has had a moment to land: the signal is
    sent when the tool returns, the processes die an instant later."""
    for _ in range(50):
        if not (members := live_members(pgid)):
            break
        await asyncio.sleep(0.02)
    return members
