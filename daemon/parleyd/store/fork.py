"""Forks: sessions whose history begins with another session's.

A fork's folder holds its own records only. Its log opens with its `session`
record and a `forked_from` naming its parent and the last seq of the parent's
it takes. Reading the log (`read_log` in `log.py`) yields that history first,
read from the parent's log, with the fork's `session` record in the place of the
parent's, then the fork's own records, whose seqs go on from the history's. A
fork of a fork reads through both. The parent's log is only read, so it may be
open in any daemon: its records up to that seq are whole lines already, never
changed by what it appends.

No fork ever writes to its parent's folder. Before a session that forks read
from is deleted, `detach_forks` copies the history each of them takes into the
fork's own `origin/` folder (its lines and their blobs, less the parent's
`session` record), built under a temporary name and renamed into place: a fork
with an `origin/` reads it instead of its parent, and reads as it did. The
fork's log is not touched, so a daemon may have the fork open meanwhile.

Making a fork and deleting a session that forks read from both hold the
store's fork lock: a fork made by one daemon while another deletes its parent
is either made before (and detached by the delete) or finds no parent.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from parleyd.redaction import redact_bytes
from parleyd.store.blobs import BlobStore, stow
from parleyd.store.files import TEMPORARY_SUFFIX, sync_directory, write_durably
from parleyd.store.log import LOG_NAME, ORIGIN_DIR, StoreError, inherited_history
from parleyd.store.records import ForkedFrom, Record, SessionStarted, ToolOutcome

log = logging.getLogger(__name__)

LOCK_NAME = "forks.lock"

_encoder = msgspec.json.Encoder()
_mark_decoder = msgspec.json.Decoder(ForkedFrom)


def write_fork(folder: Path, started: SessionStarted, mark: ForkedFrom, then: list[Record]) -> None:
    """Create the fork's folder with its log: `started` (in the parent's root
    conversation, as `started.conv` says), `mark`, then `then`. Each is stamped
    here, with seqs going on from `mark.up_to_seq`. The log is written whole or
    not at all."""
    now = round(time.time(), 3)
    seqs = [1, *range(mark.up_to_seq + 1, mark.up_to_seq + 2 + len(then))]
    for seq, record in zip(seqs, [started, mark, *then], strict=True):
        record.seq, record.conv, record.ts = seq, started.conv, now
    try:
        folder.mkdir(mode=0o700)
    except OSError as exc:
        raise _failure(folder, "create the fork", exc) from exc
    try:
        write_durably(folder / LOG_NAME, b"".join(map(_line, [started, mark, *then])))
        sync_directory(folder.parent)
    except OSError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise _failure(folder, "create the fork", exc) from exc


@contextlib.contextmanager
def fork_lock(sessions_dir: Path) -> Iterator[None]:
    """The store's fork lock, held for the block (waiting for another daemon
    to release it: it is held only while a fork is made or detached)."""
    fd = os.open(sessions_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)


def detach_forks(sessions_dir: Path, session_id: str) -> None:
    """Give each fork that reads its history from `session_id`'s log a copy of
    it, so that session can be deleted. Call under `fork_lock`, with that
    session's log locked. StoreError if a copy cannot be written; the copies
    written before it stay (each is what its fork read anyway)."""
    for folder in sorted(sessions_dir.iterdir()):
        mark = _reads_from(folder)
        if mark is not None and mark.session_id == session_id:
            _detach(folder, mark)


def _reads_from(folder: Path) -> ForkedFrom | None:
    """The mark of the fork in `folder` if it reads its history from its
    parent's log (it has no `origin/`), else None. Reads two lines only."""
    if (folder / ORIGIN_DIR).exists():
        return None
    try:
        with (folder / LOG_NAME).open("rb") as lines:
            lines.readline()
            second = lines.readline()
    except OSError:  # a folder that is no session's, or not a folder at all
        return None
    try:
        return _mark_decoder.decode(second)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def _detach(folder: Path, mark: ForkedFrom) -> None:
    # Without the parent's session record, which the fork's stands in for: a
    # log that opens with none is never read as a fork's, so the copy reads as
    # it is, marks of earlier forks and all.
    history = [r for r in inherited_history(folder, mark) if not isinstance(r, SessionStarted)]
    staging = folder / f"{ORIGIN_DIR}{TEMPORARY_SUFFIX}"
    try:
        shutil.rmtree(staging, ignore_errors=True)  # left by a crash
        staging.mkdir(mode=0o700)
        blobs = BlobStore(staging)
        stowed = (stow(r, blobs, []) if isinstance(r, ToolOutcome) else r for r in history)
        write_durably(staging / LOG_NAME, b"".join(map(_line, stowed)))
        staging.rename(folder / ORIGIN_DIR)
        sync_directory(folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise _failure(folder, f"keep the history it takes from {mark.session_id}", exc) from exc


def _line(record: Record) -> bytes:
    return redact_bytes(_encoder.encode(record)) + b"\n"


def _failure(folder: Path, action: str, exc: OSError) -> StoreError:
    where = exc.filename or folder
    return StoreError(f"session {folder.name}: could not {action}: {where}: {exc.strerror or exc}")
