"""A session's folder: `log.jsonl` appended one whole line per record, and a
`lock` held with flock by the one daemon that has the session open.

Reading never refuses a log: a torn last line (the daemon died mid-write) is
cut off, malformed lines are skipped and counted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from parleyd.store.records import AnyRecord, Record

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyRecord)

LOG_NAME = "log.jsonl"
LOCK_NAME = "lock"


class SessionLocked(Exception):
    """Another daemon has this session open."""


@dataclass(frozen=True)
class LogContents:
    records: list[AnyRecord]
    malformed_lines: int
    torn_bytes: int


def read_log(folder: Path) -> LogContents:
    """Every decodable record of a session's log, in order."""
    try:
        data = (folder / LOG_NAME).read_bytes()
    except FileNotFoundError:
        return LogContents([], 0, 0)
    complete = data.rfind(b"\n") + 1
    records: list[AnyRecord] = []
    malformed = 0
    for line in data[:complete].splitlines():
        if not line.strip():
            continue
        try:
            records.append(_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            malformed += 1
    return LogContents(records, malformed, len(data) - complete)


class SessionLog:
    """The open, locked, appendable log of one session."""

    def __init__(self, folder: Path, next_seq: int, lock_fd: int, log_fd: int) -> None:
        self.folder = folder
        self._next_seq = next_seq
        self._lock_fd = lock_fd
        self._log_fd = log_fd
        self._closed = False

    @classmethod
    def open(cls, folder: Path) -> tuple[SessionLog, LogContents]:
        """Lock the folder (creating it), repair a torn tail, and read what is there."""
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(lock_fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(lock_fd)
            raise SessionLocked(
                f"session {folder.name} is open in another Parley daemon (pid {holder})"
            ) from None
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, str(os.getpid()).encode(), 0)
        contents = read_log(folder)
        log_fd = os.open(folder / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if contents.torn_bytes:
            size = os.fstat(log_fd).st_size
            os.ftruncate(log_fd, size - contents.torn_bytes)
        next_seq = max((r.seq for r in contents.records), default=0) + 1
        return cls(folder, next_seq, lock_fd, log_fd), contents

    def append(self, record: Record, conversation: str) -> Record:
        """Stamp and write one record as a single line in a single write()."""
        record.seq = self._next_seq
        record.conv = conversation
        record.ts = round(time.time(), 3)
        self._next_seq += 1
        os.write(self._log_fd, _encoder.encode(record) + b"\n")
        return record

    def sync(self) -> None:
        os.fsync(self._log_fd)

    @property
    def size(self) -> int:
        return os.fstat(self._log_fd).st_size

    def close(self) -> None:
        # Idempotent: a second close must not hit a descriptor number reused since.
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.fsync(self._log_fd)
        os.close(self._log_fd)
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
