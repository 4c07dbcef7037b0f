"""A session's folder: `log.jsonl` appended one whole line per record, and a
`lock` held with flock by the one daemon that has the session open.

Reading never refuses a log: a torn last line (the daemon died mid-write) is
cut off, malformed lines are skipped and counted. Writing never leaves one: an
append that cannot be written whole is undone, with the blobs it wrote, and
raises StoreError. A tool result's long texts go to `blobs/` (see `blobs.py`)
and come back on reading: callers always see the whole record.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import msgspec

from parleyd.gc_pause import collector_paused
from parleyd.redaction import redact_bytes
from parleyd.store.blobs import BlobStore, resolve, stow
from parleyd.store.files import write_all
from parleyd.store.migrate import AnyRecord, current
from parleyd.store.records import CurrentRecord, ForkedFrom, Record, SessionStarted, ToolOutcome

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AnyRecord)

LOG_NAME = "log.jsonl"
LOCK_NAME = "lock"
# A fork's copy of the history it takes, once its parent is deleted (see fork.py).
ORIGIN_DIR = "origin"
# What a full disk fails with: out of space, or out of the user's quota.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


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


@collector_paused()
def read_log(folder: Path) -> LogContents:
    """Every decodable record of a session's log, in order."""
    try:
        data = (folder / LOG_NAME).read_bytes()
    except FileNotFoundError:
        return LogContents([], 0, 0)
    complete = data.rfind(b"\n") + 1
    blobs = BlobStore(folder)
    records: list[CurrentRecord] = []
    malformed = 0
    for line in data[:complete].splitlines():
        if not line or line.isspace():
            continue
        try:
            record = current(_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            malformed += 1
            continue
        records.append(resolve(record, blobs) if isinstance(record, ToolOutcome) else record)
    return LogContents(with_history(folder, records), malformed, len(data) - complete)


# -- a fork's history: read from its parent (see fork.py) --------------------------

# The forks whose parents are being read, innermost last: a log that (broken
# by hand) names a fork of its own as its parent is read without that history
# rather than forever.
_reading: ContextVar[tuple[Path, ...]] = ContextVar("reading", default=())


def with_history(folder: Path, records: list[CurrentRecord]) -> list[CurrentRecord]:
    """A log's own `records` with, if the log is a fork's, the history it takes
    from its parent before them."""
    mark = _mark_of(records)
    if mark is None:
        return records
    history = inherited_history(folder, mark)
    return [records[0], *(r for r in history if not isinstance(r, SessionStarted)), *records[1:]]


def _mark_of(records: Sequence[CurrentRecord]) -> ForkedFrom | None:
    if len(records) > 1 and isinstance(records[0], SessionStarted):
        mark = records[1]
        if isinstance(mark, ForkedFrom):
            return mark
    return None


def inherited_history(folder: Path, mark: ForkedFrom) -> list[CurrentRecord]:
    """The records the fork in `folder` takes from its parent: from `origin/`
    once it has one, else from the parent's log."""
    origin = folder / ORIGIN_DIR
    if (origin / LOG_NAME).exists():
        return read_log(origin).records
    parent = folder.parent / mark.session_id
    reading = _reading.get()
    if not _plain_name(mark.session_id) or parent in (*reading, folder):
        log.warning(
            "session %s: %r cannot be its parent; it loads without its history",
            folder.name,
            mark.session_id,
        )
        return []
    if not (parent / LOG_NAME).exists():
        log.warning(
            "session %s: its parent %s is gone and left no copy of its history; it loads"
            " without it",
            folder.name,
            mark.session_id,
        )
        return []
    token = _reading.set((*reading, folder))
    try:
        records = read_log(parent).records
    finally:
        _reading.reset(token)
    return [r for r in records if r.seq <= mark.up_to_seq]


def _plain_name(name: str) -> bool:
    # The name comes from a log: never a path out of the sessions folder.
    return Path(name).name == name and name not in {"", ".", ".."}


class SessionLog:
    """The open, locked, appendable log of one session."""

    def __init__(self, folder: Path, next_seq: int, lock_fd: int, log_fd: int, size: int) -> None:
        self.folder = folder
        self._next_seq = next_seq
        self._lock_fd = lock_fd
        self._log_fd = log_fd
        self._blobs = BlobStore(folder)
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
        BlobStore(folder).remove_leftovers()
        contents = read_log(folder)
        log_fd = os.open(folder / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        size = os.fstat(log_fd).st_size - contents.torn_bytes
        if contents.torn_bytes:
            os.ftruncate(log_fd, size)
        next_seq = max((r.seq for r in contents.records), default=0) + 1
        return cls(folder, next_seq, lock_fd, log_fd, size), contents

    def append(self, record: Record, conversation: str) -> Record:
        """Stamp and write one record as one whole line (its long texts first, as
        blobs), or raise StoreError and leave the folder as it was (the record's
        seq is then reused by the next one). Returns the record, texts whole."""
        record.seq = self._next_seq
        record.conv = conversation
        # A record may carry its own time: the closing of an interrupted turn
        # is dated when the turn stopped, not when the next load wrote it.
        record.ts = record.ts or round(time.time(), 3)
        written: list[str] = []
        try:
            stored = (
                stow(record, self._blobs, written) if isinstance(record, ToolOutcome) else record
            )
            self._write_line(redact_bytes(_encoder.encode(stored)) + b"\n")
        except OSError as exc:
            self._blobs.remove(written)
            raise self._failure("append a record", exc) from exc
        self._next_seq += 1
        return record

    def _write_line(self, line: bytes) -> None:
        try:
            # A previous failed append whose undo failed too left bytes to cut first.
            if os.fstat(self._log_fd).st_size != self._size:
                os.ftruncate(self._log_fd, self._size)
            write_all(self._log_fd, line)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._log_fd, self._size)
            raise
        self._size += len(line)

    def sync(self) -> None:
        try:
            os.fsync(self._log_fd)
        except OSError as exc:
            raise self._failure("sync the log", exc) from exc

    def _failure(self, action: str, exc: OSError) -> StoreError:
        """What failed, in which file (the full path: the user must know which
        disk is full), and why."""
        where = exc.filename or self.folder / LOG_NAME
        reason = exc.strerror or str(exc)
        if exc.errno in _DISK_FULL:
            reason = f"the disk is full ({reason})"
        return StoreError(f"session {self.folder.name}: could not {action}: {where}: {reason}")

    @property
    def size(self) -> int:
        return self._size

    @property
    def next_seq(self) -> int:
        """The seq the next record appended gets."""
        return self._next_seq

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
