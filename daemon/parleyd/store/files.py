"""Writing the store's files so that a crash leaves each one whole or absent."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# What a durable write is built in before its rename; one left behind by a crash
# is never a file the store reads.
TEMPORARY_SUFFIX = ".tmp"


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of `data`, or raise OSError. write() may take only part of
    it (a signal, a file size limit); the rest goes in further writes until it is
    all written or one fails."""
    pending = memoryview(data)
    while pending:
        pending = pending[os.write(fd, pending) :]


def sync_directory(directory: Path) -> None:
    """Make the names just created or renamed in `directory` survive a crash."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Create `path` holding `data`, on disk before this returns: written beside it
    under a temporary name, fsynced, renamed into place, its directory fsynced.
    A failure removes the temporary file; a crash leaves `path` whole or absent."""
    temporary = path.with_name(path.name + TEMPORARY_SUFFIX)
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)
