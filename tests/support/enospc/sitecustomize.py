"""Test-only: a full disk under the session store of the daemon this starts in.

Python imports `sitecustomize` at start-up from the first folder on its path
that has one, so putting this folder on PYTHONPATH installs it in a process
without any hook in Parley's code. With FULL_DISK_FLAG set to a path, writes to
files under $PARLEY_HOME/sessions go through as usual until a file exists at
that path; from then on the disk has as many bytes left as the file says (0 if
it is empty): a write takes what still fits and the next one fails with ENOSPC,
as on a disk that fills mid-write. Removing the file frees the disk.

Only `os.write` to descriptors `os.open` gave for those files is affected:
that is how the session store writes its log and its blobs. Frames on stdout,
the lock's pid and the SQLite index go on as usual.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

_FLAG = os.environ.get("FULL_DISK_FLAG")


def _install(flag: Path, sessions: Path) -> None:
    real_open, real_write, real_close = os.open, os.write, os.close
    watched: set[int] = set()
    left: int | None = None  # bytes the disk still takes, once it is full

    def open_(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        fd = real_open(path, flags, mode, **kwargs)
        if Path(os.fsdecode(path)).resolve().is_relative_to(sessions):
            watched.add(fd)
        else:
            watched.discard(fd)
        return fd

    def write(fd: int, data: Any) -> int:
        nonlocal left
        if fd not in watched:
            return real_write(fd, data)
        try:
            room = flag.read_text()
        except FileNotFoundError:
            left = None
            return real_write(fd, data)
        left = int(room or 0) if left is None else left
        if left == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, memoryview(data)[:left])
        left -= written
        return written

    def close(fd: int) -> None:
        watched.discard(fd)
        real_close(fd)

    os.open, os.write, os.close = open_, write, close


if _FLAG:
    _install(Path(_FLAG), Path(os.environ["PARLEY_HOME"]).resolve() / "sessions")
