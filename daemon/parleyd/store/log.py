"""A session's folder: `log.jsonl` appended one whole line per record, and a
`lock` held with flock by the one daemon that has the session open.

Reading never refuses a log: a torn last line (the daemon died mid-write) is
cut off, malformed lines are skipped and counted. Writing never leaves one: an
append that cannot be written whole is undone and raises StoreError.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from parleyd.redaction import redact_bytes
from parleyd.store.migrate import AnyRecord, current
from parleyd.store.records import CurrentRecord, Record

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyRecord)

LOG_NAME = "log.jsonl"
LOCK_NAME = "lock"


class SessionLocked(Exception):
    """Another daemon has this session open."""


class StoreError(Exception):
    """The store could not do what was asked (a full disk, an index another daemon
    keeps locked); nothing half-done is left behind."""


@dataclass(frozen=True)
class LogContents:
    records: list[CurrentRecord]
    malformed_lines: int
    torn_bytes: int


def read_log(folder: Path) -> LogContents:
    """Every decodable record of a session's log, in order."""
    try:
        data = (folder / LOG_NAME).read_bytes()
    except FileNotFoundError:
        return LogContents([], 0, 0)
    complete = data.rfind(b"\n") + 1
    records: list[CurrentRecord] = []
    malformed = 0
    for line in data[:complete].splitlines():
        if not line.strip():
            continue
        try:
            records.append(current(_decoder.decode(line)))
        except (msgspec.DecodeError, msgspec.ValidationError):
            malformed += 1
    return LogContents(records, malformed, len(data) - complete)


class SessionLog:
    """The open, locked, appendable log of one session."""

    def __init__(self, folder: Path, next_seq: int, lock_fd: int, log_fd: int, size: int) -> None:
        self.folder = folder
        self._next_seq = next_seq
        self._lock_fd = lock_fd
        self._log_fd = log_fd
        # The log's length up to its last whole line: what a failed append cuts back to.
        self._size = size
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
        size = os.fstat(log_fd).st_size - contents.torn_bytes
        if contents.torn_bytes:
            os.ftruncate(log_fd, size)
        next_seq = max((r.seq for r in contents.records), default=0) + 1
        return cls(folder, next_seq, lock_fd, log_fd, size), contents

    def append(self, record: Record, conversation: str) -> Record:
        """Stamp and write one record as one whole line, or raise StoreError and
        leave the log as it was (the record's seq is then reused by the next one)."""
        record.seq = self._next_seq
        record.conv = conversation
        record.ts = round(time.time(), 3)
        self._write_line(redact_bytes(_encoder.encode(record)) + b"\n")
        self._next_seq += 1
        return record

    def _write_line(self, line: bytes) -> None:
        # write() may take only part of the line (a signal, a file size limit);
        # the rest goes in further writes until the line is whole or one fails.
        pending = memoryview(line)
        try:
            # A previous failed append whose undo failed too left bytes to cut first.
            if os.fstat(self._log_fd).st_size != self._size:
                os.ftruncate(self._log_fd, self._size)
            while pending:
                written = os.write(self._log_fd, pending)
                pending = pending[written:]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._log_fd, self._size)
            raise self._failure("append to", exc) from exc
        self._size += len(line)

    def sync(self) -> None:
        try:
            os.fsync(self._log_fd)
        except OSError as exc:
            raise self._failure("sync", exc) from exc

    def _failure(self, action: str, exc: OSError) -> StoreError:
        reason = exc.strerror or str(exc)
        return StoreError(f"session {self.folder.name}: could not {action} {LOG_NAME}: {reason}")

    @property
    def size(self) -> int:
        return self._size

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
