"""Long texts of tool results, kept beside the session's log in `blobs/<sha256>`.

A tool result can be large: a file read whole, the diff of a rewritten file.
Each of its texts longer than `BLOB_THRESHOLD_CHARS` is written to a file of its
own, named by the SHA-256 of its bytes, so a text stored twice (a result's
output and the content shown to the client, the same file read again) is one
file. The record's line keeps a preview in the text's place and, in `blobs`,
where each such text stood (a JSON Pointer, RFC 6901) and its digest.

The blob is on disk (written, fsynced, renamed, its directory fsynced) before
the line that names it is written, so no crash can leave a line whose blob is
missing. Reading puts every text back; a blob that is missing or does not match
its digest reads as the preview and a notice, with a warning, never as a failed
load.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec

from parleyd.redaction import redact_text
from parleyd.store.files import TEMPORARY_SUFFIX, sync_directory, write_durably
from parleyd.store.records import ToolOutcome

log = logging.getLogger(__name__)

BLOBS_DIR = "blobs"
# A blob costs a file and two fsyncs while the turn waits, so it is for the rare
# text that is large: run_shell keeps at most 32 KiB of a command's output, so
# shell output always stays in the line, while read_file's results (up to
# 256 KiB) and whole-file diffs move out and are stored once however often they
# repeat.
BLOB_THRESHOLD_CHARS = 64 * 1024
# Enough of the text to tell what it was from the log alone (or from a Parley too
# old to read blobs); a lost blob reads as this.
PREVIEW_CHARS = 1024

_DIGEST = re.compile(r"[0-9a-f]{64}")


class BlobLost(Exception):
    """A blob a record names cannot be read back as it was written."""


class BlobStore:
    """The `blobs/` folder of one session's folder."""

    def __init__(self, folder: Path) -> None:
        self.directory = folder / BLOBS_DIR

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store `data` under its digest, durably; return the digest and whether
        this call wrote the file (False: the same bytes were stored already).
        Raises OSError naming the file it could not write."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.directory / digest
        if path.exists():
            return digest, False
        try:
            if not self.directory.is_dir():
                self.directory.mkdir(mode=0o700)
                sync_directory(self.directory.parent)
            write_durably(path, data)
        except OSError as exc:
            # os.write names no file, and the message must say where the disk is full.
            exc.filename = exc.filename or str(path)
            raise
        return digest, True

    def get(self, digest: str) -> bytes:
        """The bytes stored under `digest`, or BlobLost saying why not."""
        # The digest comes from the log: never a path to anything but a blob.
        if not _DIGEST.fullmatch(digest):
            raise BlobLost(f"{BLOBS_DIR}/{digest!r} is not a blob's name")
        try:
            data = (self.directory / digest).read_bytes()
        except FileNotFoundError:
            raise BlobLost(f"{BLOBS_DIR}/{digest} is missing") from None
        except OSError as exc:
            raise BlobLost(f"{BLOBS_DIR}/{digest} cannot be read: {exc.strerror}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise BlobLost(f"{BLOBS_DIR}/{digest} does not match its digest")
        return data

    def remove(self, digests: Iterable[str]) -> None:
        """Remove blobs no line names (those of an append that failed)."""
        for digest in digests:
            with contextlib.suppress(OSError):
                (self.directory / digest).unlink(missing_ok=True)

    def remove_leftovers(self) -> None:
        """Remove the temporary files of writes a crash cut short."""
        for leftover in self.directory.glob(f"*{TEMPORARY_SUFFIX}"):
            with contextlib.suppress(OSError):
                leftover.unlink()


def stow(outcome: ToolOutcome, store: BlobStore, written: list[str]) -> ToolOutcome:
    """The outcome as its line holds it: each long text stored as a blob (redacted,
    as the line is) and a preview in its place. The digests of the blobs this call
    wrote are added to `written`, also when it fails midway, for an append that
    fails to remove."""
    digests: dict[str, str] = {}

    def stow_text(pointer: str, text: str) -> str:
        if len(text) <= BLOB_THRESHOLD_CHARS:
            return text
        kept = redact_text(text)
        digest, created = store.put(kept.encode())
        if created:
            written.append(digest)
        digests[pointer] = digest
        return f"{kept[:PREVIEW_CHARS]}\n[... {len(kept)} characters, in {BLOBS_DIR}/{digest}]"

    stowed = _with_texts(outcome, stow_text)
    return msgspec.structs.replace(stowed, blobs=digests) if digests else outcome


def resolve(outcome: ToolOutcome, store: BlobStore) -> ToolOutcome:
    """The outcome with the texts its line stowed in blobs put back."""
    if not outcome.blobs:
        return outcome

    def text_of(pointer: str, stored: str) -> str:
        digest = outcome.blobs.get(pointer)
        if digest is None:
            return stored
        try:
            return store.get(digest).decode(errors="replace")
        except BlobLost as lost:
            log.warning(
                "session %s, record %d: %s; %s reads as its preview",
                store.directory.parent.name,
                outcome.seq,
                lost,
                pointer,
            )
            return f"{stored}\n[{lost}: the rest of this text is lost]"

    return msgspec.structs.replace(_with_texts(outcome, text_of), blobs={})


TextChange = Callable[[str, str], str]


def _with_texts(outcome: ToolOutcome, change: TextChange) -> ToolOutcome:
    """The outcome with every text that can be long passed through `change`,
    which gets the text's JSON Pointer and the text."""
    return msgspec.structs.replace(
        outcome,
        output=change("/output", outcome.output),
        content=_map_texts(outcome.content, "/content", change),
        progress=_map_texts(outcome.progress, "/progress", change),
    )


def _map_texts(value: Any, pointer: str, change: TextChange) -> Any:
    if isinstance(value, str):
        return change(pointer, value)
    if isinstance(value, list):
        return [_map_texts(item, f"{pointer}/{i}", change) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            key: _map_texts(item, f"{pointer}/{_pointer_token(key)}", change)
            for key, item in value.items()
        }
    return value


def _pointer_token(key: str) -> str:
    # RFC 6901: "~" and "/" are escaped so that every key has a pointer of its own.
    return key.replace("~", "~0").replace("/", "~1")
