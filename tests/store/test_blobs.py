"""`blobs/`: a tool result's long texts beside the log, stored once, on disk
before the line that names them, read back whole, and never a failed load."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from parleyd.store.blobs import BLOB_THRESHOLD_CHARS, BLOBS_DIR, PREVIEW_CHARS
from parleyd.store.log import LOG_NAME, SessionLog, StoreError, read_log
from parleyd.store.records import ToolOutcome, UserTurn

ROOT = "conv_root"


def long_text(tag: str, chars: int = BLOB_THRESHOLD_CHARS + 1) -> str:
    line = f"{tag}: a line of a long tool output\n"
    return (line * (chars // len(line) + 1))[:chars]


def text_content(text: str) -> list[dict[str, Any]]:
    """How a result's text is shown to the client, as the log stores it."""
    return [{"type": "content", "content": {"type": "text", "text": text}}]


def outcome(output: str, **fields: Any) -> ToolOutcome:
    fields.setdefault("content", text_content(output))
    return ToolOutcome(
        call_id="call_1", name="read_file", status="completed", output=output, **fields
    )


def digest_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def blob_files(folder: Path) -> dict[str, bytes]:
    directory = folder / BLOBS_DIR
    if not directory.exists():
        return {}
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def stored_lines(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / LOG_NAME).read_bytes().splitlines()]


def test_a_long_output_is_one_blob_and_reads_back_whole(folder: Path, opened: SessionLog) -> None:
    text = long_text("out")
    written = opened.append(outcome(text, progress=["partial"]), ROOT)
    assert written.output == text  # the caller's record keeps its texts

    assert read_log(folder).records == [written]
    # The output and the content shown to the client are one text: one blob.
    assert blob_files(folder) == {digest_of(text): text.encode()}
    (line,) = stored_lines(folder)
    assert line["blobs"] == {
        "/output": digest_of(text),
        "/content/0/content/text": digest_of(text),
    }
    assert line["output"].startswith(text[:PREVIEW_CHARS])
    assert line["output"].endswith(f"{len(text)} characters, in {BLOBS_DIR}/{digest_of(text)}]")
    assert line["progress"] == ["partial"]
    assert (folder / LOG_NAME).stat().st_size < 2 * PREVIEW_CHARS + 1000
    blob = folder / BLOBS_DIR / digest_of(text)
    assert stat.S_IMODE(blob.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(blob.stat().st_mode) == 0o600


def test_texts_up_to_the_threshold_stay_in_the_line(folder: Path, opened: SessionLog) -> None:
    text = long_text("short", BLOB_THRESHOLD_CHARS)
    written = opened.append(outcome(text), ROOT)
    assert read_log(folder).records == [written]
    assert stored_lines(folder)[0]["output"] == text
    assert "blobs" not in stored_lines(folder)[0]
    assert not (folder / BLOBS_DIR).exists()


def test_the_same_output_in_two_results_shares_one_blob(folder: Path, opened: SessionLog) -> None:
    text = long_text("same")
    written = [opened.append(outcome(text), ROOT) for _ in range(2)]
    assert read_log(folder).records == written
    assert list(blob_files(folder)) == [digest_of(text)]


def test_every_long_text_of_a_result_moves_out_and_comes_back(
    folder: Path, opened: SessionLog
) -> None:
    old, new, progress = long_text("old"), long_text("new"), long_text("progress")
    # Without escaping, the key "a/b" and the nested "a" -> "b" would share a pointer.
    odd_keys = {"type": "other", "a/b": long_text("slash"), "a": {"b": long_text("nested")}}
    diff = {"type": "diff", "path": "/work/big.txt", "oldText": old, "newText": new}
    record = outcome("Wrote big.txt", content=[diff, odd_keys], progress=["start", progress])
    written = opened.append(record, ROOT)

    assert read_log(folder).records == [written]
    assert set(stored_lines(folder)[0]["blobs"]) == {
        "/content/0/oldText",
        "/content/0/newText",
        "/content/1/a~1b",
        "/content/1/a/b",
        "/progress/1",
    }
    assert len(blob_files(folder)) == 5


def test_a_credential_in_a_long_output_never_reaches_the_blob(
    folder: Path, opened: SessionLog
) -> None:
    secret = "sk-live-0123456789abcdefXYZ"
    text = f"Authorization: Bearer {secret}\n" + long_text("env")
    opened.append(outcome(text), ROOT)
    ((name, stored),) = blob_files(folder).items()
    assert secret.encode() not in stored
    assert stored.startswith(b"Authorization: Bearer [REDACTED]\n")
    assert name == hashlib.sha256(stored).hexdigest()
    assert secret not in (folder / LOG_NAME).read_text()


def _remove(blob: Path, line: dict[str, Any]) -> None:
    blob.unlink()


def _corrupt(blob: Path, line: dict[str, Any]) -> None:
    blob.write_bytes(b"not what was written")


def _misname(blob: Path, line: dict[str, Any]) -> None:
    line["blobs"]["/output"] = "../log.jsonl"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_remove, "is missing"),
        (_corrupt, "does not match its digest"),
        (_misname, "is not a blob's name"),
    ],
)
def test_a_lost_blob_reads_as_its_preview_with_a_warning(
    folder: Path,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[Path, dict[str, Any]], None],
    reason: str,
) -> None:
    text = long_text("lost")
    log, _ = SessionLog.open(folder)
    log.append(outcome(text), ROOT)
    log.append(UserTurn(text="next", content=[], message_id="m2"), ROOT)
    log.close()
    lines = stored_lines(folder)
    damage(folder / BLOBS_DIR / digest_of(text), lines[0])
    (folder / LOG_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines))

    with caplog.at_level(logging.WARNING, logger="parleyd.store.blobs"):
        log, contents = SessionLog.open(folder)
    log.close()
    lost, after = contents.records
    assert isinstance(lost, ToolOutcome) and isinstance(after, UserTurn)
    assert lost.output.startswith(text[:PREVIEW_CHARS])
    assert lost.output.endswith(": the rest of this text is lost]")
    assert reason in lost.output
    assert contents.malformed_lines == 0
    assert reason in caplog.text and "/output reads as its preview" in caplog.text


# -- the order of writes, and writes that fail ------------------------------------------


@dataclass
class FileCalls:
    """The writes, fsyncs and renames this process makes, each with its path, and a
    full disk: writes to the paths `full` accepts fail with ENOSPC."""

    events: list[tuple[str, Path]] = field(default_factory=list)
    full: Callable[[Path], bool] = lambda path: False
    _paths: dict[int, Path] = field(default_factory=dict)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_open, real_write, real_fsync, real_replace = os.open, os.write, os.fsync, os.replace

        def open_(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
            fd = real_open(path, flags, mode, **kwargs)
            self._paths[fd] = Path(path)
            return fd

        def write(fd: int, data: Any) -> int:
            path = self._paths[fd]
            if self.full(path):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.events.append(("write", path))
            return real_write(fd, data)

        def fsync(fd: int) -> None:
            self.events.append(("fsync", self._paths[fd]))
            real_fsync(fd)

        def replace(source: Any, target: Any, **kwargs: Any) -> None:
            self.events.append(("replace", Path(target)))
            real_replace(source, target, **kwargs)

        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "replace", replace)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> FileCalls:
    calls = FileCalls()
    calls.install(monkeypatch)
    return calls


@pytest.fixture
def spied(folder: Path, calls: FileCalls) -> Iterator[SessionLog]:
    """A log opened once `calls` watches: it learns each descriptor's path as it opens."""
    log, _ = SessionLog.open(folder)
    yield log
    log.close()


def test_the_blob_is_on_disk_before_the_line_that_names_it(folder: Path, calls: FileCalls) -> None:
    log, _ = SessionLog.open(folder)
    text = long_text("ordered")
    log.append(outcome(text), ROOT)
    log.close()
    blob = folder / BLOBS_DIR / digest_of(text)
    temporary = blob.with_name(blob.name + ".tmp")
    order = [
        ("write", temporary),
        ("fsync", temporary),
        ("replace", blob),
        ("fsync", blob.parent),  # the rename itself is durable
        ("write", folder / LOG_NAME),
    ]
    positions = [calls.events.index(event) for event in order]
    assert positions == sorted(positions)
    # The folder's new `blobs` entry is made durable before any blob goes in it.
    assert calls.events.index(("fsync", folder)) < positions[0]


def test_a_full_disk_on_the_line_undoes_the_append_and_its_new_blob(
    folder: Path, calls: FileCalls, spied: SessionLog
) -> None:
    shared, fresh = long_text("shared"), long_text("fresh")
    kept = spied.append(outcome(shared), ROOT)
    calls.full = lambda path: path.name == LOG_NAME
    with pytest.raises(StoreError) as failure:
        spied.append(outcome(fresh, content=text_content(shared)), ROOT)
    log_path = folder / LOG_NAME
    assert str(failure.value) == (
        f"session sess_1: could not append a record: {log_path}: "
        "the disk is full (No space left on device)"
    )
    # The blob the failed append wrote is gone; the one an earlier line names stays.
    assert list(blob_files(folder)) == [digest_of(shared)]
    calls.full = lambda path: False
    after = spied.append(UserTurn(text="after", content=[], message_id="m2"), ROOT)
    assert read_log(folder).records == [kept, after]
    assert after.seq == 2


def test_a_full_disk_on_a_blob_fails_the_append_and_names_the_blob(
    folder: Path, calls: FileCalls, spied: SessionLog
) -> None:
    first, second = long_text("first"), long_text("second")
    calls.full = lambda path: path.name.startswith(digest_of(second))
    with pytest.raises(StoreError) as failure:
        spied.append(outcome(first, content=text_content(second)), ROOT)
    blob = folder / BLOBS_DIR / digest_of(second)
    assert str(failure.value) == (
        f"session sess_1: could not append a record: {blob}: "
        "the disk is full (No space left on device)"
    )
    # Neither the blob written before the failure nor a temporary file is left.
    assert blob_files(folder) == {}
    assert (folder / LOG_NAME).read_bytes() == b""


def test_temporary_files_a_crash_left_are_removed_on_open(folder: Path) -> None:
    blobs = folder / BLOBS_DIR
    blobs.mkdir(parents=True)
    (blobs / f"{'0' * 64}.tmp").write_bytes(b"cut short")
    log, _ = SessionLog.open(folder)
    log.close()
    assert blob_files(folder) == {}
