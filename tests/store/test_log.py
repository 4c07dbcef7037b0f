"""`log.jsonl` and its lock: what survives a crash, a bad line, a second daemon."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parleyd.providers.messages import AssistantMessage, ToolCall
from parleyd.store.log import LOCK_NAME, LOG_NAME, SessionLocked, SessionLog, read_log
from parleyd.store.records import (
    AssistantTurn,
    ConversationStarted,
    Record,
    SessionStarted,
    TitleSet,
    ToolCallView,
    ToolOutcome,
    TurnEnded,
    UsageRecorded,
    UserTurn,
)

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
        (
            UserTurn(
                text="read a.txt",
                content=[{"type": "text", "text": "read a.txt"}],
                message_id="msg_1",
            ),
            ROOT,
        ),
        (
            AssistantTurn(
                message=AssistantMessage(
                    text="Reading.",
                    thinking="the user wants a.txt",
                    thinking_signature="sig",
                    tool_calls=(call,),
                ),
                chunks=[("thought", "the user wants a.txt"), ("text", "Reading.")],
                message_id="msg_2",
                model="gpt-4o",
                tool_views=[ToolCallView(call_id="call_1", title="Read a.txt", kind="read")],
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
        (TurnEnded(stop_reason="cancelled", error="provider went away"), ROOT),
    ]


def user_turn(text: str) -> UserTurn:
    return UserTurn(text=text, content=[{"type": "text", "text": text}], message_id=text)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    # Not created yet: opening the log creates it.
    return tmp_path / "sessions" / "sess_1"


@pytest.fixture
def opened(folder: Path) -> Iterator[SessionLog]:
    log, _ = SessionLog.open(folder)
    yield log
    log.close()


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
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(folder / LOCK_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SessionLocked, match=rf"pid {holder.pid}\b"):
            SessionLog.open(folder)
    finally:
        holder.communicate(timeout=10)
    log, _ = SessionLog.open(folder)
    log.close()
