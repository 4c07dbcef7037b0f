"""A user's runtime folder of a test's own, where shims meet their shared
daemons (`PARLEY_RUNTIME_DIR`), and the daemons found listening there, for a
test that must leave none behind."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.daemon import daemon_env

# Generous, for a loaded machine: a deadline that fails a hang, not a measurement.
DEADLINE = 60.0


@dataclass(frozen=True)
class Machine:
    """One user's runtime folder, where the shims of every editor meet their daemons."""

    runtime: Path
    home: Path

    def env(self, **settings: str) -> dict[str, str]:
        """An editor's environment: the offline model, this machine's folders, and
        an idle time that ends a daemon a failed test left behind."""
        defaults = {
            "PARLEY_PROVIDER": "offline",
            "PARLEY_RUNTIME_DIR": str(self.runtime),
            "PARLEY_DAEMON_IDLE_EXIT": "60",
        }
        return daemon_env(self.home, **(defaults | settings))

    def sockets(self) -> list[Path]:
        return sorted(self.runtime.glob("*.sock"))

    def daemons(self) -> list[int]:
        """The daemons alive that listen in this runtime folder, from /proc."""
        listening_here = f"unix:{self.runtime}/".encode()
        found = []
        for process in Path("/proc").glob("[0-9]*"):
            try:
                arguments = (process / "cmdline").read_bytes().split(b"\0")
                state = (process / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue  # gone while we looked
            if state != "Z" and any(a.startswith(listening_here) for a in arguments):
                found.append(int(process.name))
        return found

    def logged(self) -> str:
        return "".join(log.read_text() for log in sorted(self.runtime.glob("*.log")))

    def wait_for_no_daemons(self) -> None:
        deadline = time.monotonic() + DEADLINE
        while self.daemons():
            assert time.monotonic() < deadline, f"daemons still running: {self.daemons()}"
            time.sleep(0.05)


@contextmanager
def private_machine(home: Path) -> Iterator[Machine]:
    """A runtime folder of its own (under /tmp: a socket's path must fit in 108
    bytes), its daemons killed and the folder removed at the end."""
    machine = Machine(Path(tempfile.mkdtemp(prefix="parley-run-")), home)
    try:
        yield machine
    finally:
        for pid in machine.daemons():
            os.kill(pid, signal.SIGKILL)
        machine.wait_for_no_daemons()
        shutil.rmtree(machine.runtime)
