"""`log.jsonl` and its lock: what survives a crash, a bad line, a second daemon, a
write that fails."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from parleyd.providers.messages import AssistantMessage, TextPart, ThinkingPart, ToolCall
from parleyd.store.log import (
    LOCK_NAME,
    LOG_NAME,
    SessionLocked,
    SessionLog,
    StoreError,
    read_log,
)
from parleyd.store.records import (
    ArchiveSet,
    AssistantResponse,
    ConversationStarted,
    PermissionRemembered,
    Record,
    SessionStarted,
    TitleSet,
    ToolCallView,
    ToolOutcome,
    TurnEnded,
    TurnStarted,
    UsageRecorded,
    UserTurn,
)
from tests.store.holder import held_by_another_process

ROOT = "conv_root"
CHILD = "conv_child"


def every_record_type() -> list[tuple[Record, str]]:
    """One record of each type with every optional field set, and its conversation."""
    call = ToolCall(id="call_1", name="read_file", arguments='{"path": "a.txt"}')
    return [
        (SessionStarted(session_id="sess_1", cwd="/work", settings={"model": "m"}), ROOT),
        (ConversationStarted(title="root"), ROOT),
        (
            ConversationStarted(parent=ROOT, parent_tool_call="call_9", depth=1, title="sub"),
            CHILD,
        ),
        (TitleSet(title="Fix the bug"), ROOT),
        (ArchiveSet(archived=True), ROOT),
        (TurnStarted(turn="turn_1"), ROOT),
        (
            UserTurn(
                text="read a.txt",
                content=[{"type": "text", "text": "read a.txt"}],
                message_id="msg_1",
                turn="turn_1",
            ),
            ROOT,
        ),
        (
            AssistantResponse(
                message=AssistantMessage(
                    parts=(
                        ThinkingPart(text="the user wants a.txt", signature="sig"),
                        TextPart("Reading."),
                        call,
                    )
                ),
                message_id="msg_2",
                model="gpt-4o",
                tool_views=[ToolCallView(call_id="call_1", title="Read a.txt", kind="read")],
                abandoned_calls=[ToolCallView(call_id="call_2", title="write", kind="edit")],
                interrupted=True,
            ),
            ROOT,
        ),
        (
            ToolOutcome(
                call_id="call_1",
                name="read_file",
                status="failed",
                output="no such file",
                content=[{"type": "content", "content": {"type": "text", "text": "x"}}],
                locations=["/work/a.txt"],
                duration_ms=1.5,
                ran=True,
                progress=["partial"],
            ),
            ROOT,
        ),
        (
            UsageRecorded(
                model="gpt-4o",
                input_tokens=100,
                output_tokens=20,
                cached_input_tokens=50,
                cache_write_tokens=5,
                reasoning_tokens=7,
                cost=0.0012,
                context_used=120,
                context_size=128_000,
            ),
            CHILD,
        ),
        (PermissionRemembered(tool="run_shell", allowed=True), ROOT),
        (TurnEnded(stop_reason="cancelled", error="provider went away"), ROOT),
    ]


def user_turn(text: str) -> UserTurn:
    return UserTurn(text=text, content=[{"type": "text", "text": text}], message_id=text)


def write_records(folder: Path, texts: list[str]) -> None:
    log, _ = SessionLog.open(folder)
    for text in texts:
        log.append(user_turn(text), ROOT)
    log.close()


def texts_of(folder: Path) -> list[str]:
    return [r.text for r in read_log(folder).records if isinstance(r, UserTurn)]


def test_every_record_type_round_trips(folder: Path) -> None:
    log, contents = SessionLog.open(folder)
    assert contents.records == []
    written = [log.append(record, conv) for record, conv in every_record_type()]
    log.close()

    contents = read_log(folder)
    assert contents.records == written
    assert (contents.malformed_lines, contents.torn_bytes) == (0, 0)
    assert [r.seq for r in contents.records] == list(range(1, len(written) + 1))
    assert {r.conv for r in contents.records} == {ROOT, CHILD}
    assert all(r.ts > 0 for r in contents.records)


def test_read_log_of_a_folder_without_a_log_is_empty(tmp_path: Path) -> None:
    contents = read_log(tmp_path / "nowhere")
    assert (contents.records, contents.malformed_lines, contents.torn_bytes) == ([], 0, 0)


def test_seq_continues_after_reopen(folder: Path) -> None:
    write_records(folder, ["one", "two", "three"])
    log, contents = SessionLog.open(folder)
    assert [r.seq for r in contents.records] == [1, 2, 3]
    assert log.append(user_turn("four"), ROOT).seq == 4
    log.close()
    assert [r.seq for r in read_log(folder).records] == [1, 2, 3, 4]


def test_torn_last_line_is_reported_and_cut_off(folder: Path) -> None:
    write_records(folder, ["one", "two"])
    whole = (folder / LOG_NAME).read_bytes()
    torn = b'{"type":"user","seq":3,"conv":"conv_root","text":"thr'
    (folder / LOG_NAME).write_bytes(whole + torn)

    log, contents = SessionLog.open(folder)
    assert contents.torn_bytes == len(torn)
    assert contents.malformed_lines == 0
    assert [r.text for r in contents.records if isinstance(r, UserTurn)] == ["one", "two"]
    assert (folder / LOG_NAME).read_bytes() == whole
    # The next record starts a line of its own instead of extending the torn one,
    # and takes the seq the torn record never got.
    assert log.append(user_turn("three"), ROOT).seq == 3
    log.close()
    assert texts_of(folder) == ["one", "two", "three"]
    assert read_log(folder).torn_bytes == 0


def test_malformed_lines_in_the_middle_are_skipped_and_counted(folder: Path) -> None:
    write_records(folder, ["one"])
    with (folder / LOG_NAME).open("ab") as raw:
        raw.write(b"not json at all\n")
        raw.write(b'{"type":"no_such_record","seq":2}\n')
        raw.write(b'{"type":"title","seq":3}\n')  # a title record without its title
        raw.write(b"\xff\xfe\n")
        raw.write(b"\n   \n")  # blank lines are not malformed, just empty
    write_records(folder, ["two"])

    contents = read_log(folder)
    assert contents.malformed_lines == 4
    assert contents.torn_bytes == 0
    assert texts_of(folder) == ["one", "two"]


def test_second_open_in_the_same_process_is_locked_out(folder: Path) -> None:
    first, _ = SessionLog.open(folder)
    with pytest.raises(SessionLocked, match=rf"pid {os.getpid()}\b"):
        SessionLog.open(folder)
    # The failed attempt closed its own descriptor only: the first still holds the lock.
    with pytest.raises(SessionLocked):
        SessionLog.open(folder)
    first.close()
    again, _ = SessionLog.open(folder)
    again.close()


def test_folder_and_file_modes(folder: Path, opened: SessionLog) -> None:
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / LOG_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / LOCK_NAME).stat().st_mode) == 0o600


# Takes the lock the way a daemon does (pid in the file), says so, and holds it
# until its stdin closes.
_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.pwrite(fd, str(os.getpid()).encode(), 0)
print("locked", flush=True)
sys.stdin.read()
"""


def test_lock_held_by_another_process_blocks(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True)
    with (
        held_by_another_process(_HOLD_LOCK, folder / LOCK_NAME) as holder,
        pytest.raises(SessionLocked, match=rf"pid {holder.pid}\b"),
    ):
        SessionLog.open(folder)
    log, _ = SessionLog.open(folder)
    log.close()


# -- writes that fail --------------------------------------------------------------


def test_a_short_write_is_completed(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log, _ = SessionLog.open(folder)
    write = os.write
    calls = 0

    def at_most_seven_bytes(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        return write(fd, data[:7])

    monkeypatch.setattr(os, "write", at_most_seven_bytes)
    written = [log.append(record, conv) for record, conv in every_record_type()]
    monkeypatch.undo()
    log.close()

    contents = read_log(folder)
    assert contents.records == written
    assert (contents.malformed_lines, contents.torn_bytes) == (0, 0)
    assert calls > len(written)


# Appends, then lowers the file size limit so the next line fits only in part
# (write() takes what fits, then fails with EFBIG), then lifts it and appends
# again. Python ignores SIGXFSZ, so the limit fails the write instead of
# killing the process.
_APPEND_PAST_THE_SIZE_LIMIT = """
import os, resource, sys
from pathlib import Path
from parleyd.store.log import LOG_NAME, SessionLog, StoreError
from parleyd.store.records import UserTurn

folder = Path(sys.argv[1])
log, _ = SessionLog.open(folder)
log.append(UserTurn(text="before", content=[], message_id="m1"), "conv_root")
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
room = os.path.getsize(folder / LOG_NAME) + 100
resource.setrlimit(resource.RLIMIT_FSIZE, (room, hard))
try:
    log.append(UserTurn(text="x" * 10_000, content=[], message_id="m2"), "conv_root")
except StoreError as exc:
    print(exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
print(log.append(UserTurn(text="after", content=[], message_id="m3"), "conv_root").seq)
log.close()
"""


def test_a_write_that_fails_midway_leaves_no_broken_line(folder: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _APPEND_PAST_THE_SIZE_LIMIT, str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    error, seq = child.stdout.splitlines()
    log_path = folder / LOG_NAME
    assert error == f"session sess_1: could not append a record: {log_path}: File too large"
    # The failed record's seq went to the next one.
    assert seq == "2"
    contents = read_log(folder)
    assert (contents.malformed_lines, contents.torn_bytes) == (0, 0)
    assert texts_of(folder) == ["before", "after"]
    assert [r.seq for r in contents.records] == [1, 2]


def test_a_broken_line_whose_undo_failed_is_cut_by_the_next_append(
    folder: Path, opened: SessionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened.append(user_turn("one"), ROOT)
    write = os.write

    def half_then_io_error(fd: int, data: bytes) -> int:
        write(fd, data[: len(data) // 2])
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    def io_error(fd: int, length: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "write", half_then_io_error)
    monkeypatch.setattr(os, "ftruncate", io_error)
    with pytest.raises(StoreError, match=r"could not append a record: .*/log\.jsonl: Input/output"):
        opened.append(user_turn("lost"), ROOT)
    monkeypatch.undo()
    assert read_log(folder).torn_bytes > 0

    opened.append(user_turn("two"), ROOT)
    contents = read_log(folder)
    assert (contents.malformed_lines, contents.torn_bytes) == (0, 0)
    assert texts_of(folder) == ["one", "two"]
