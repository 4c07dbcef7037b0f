"""Forks in the store: a fork's log reads its parent's records up to its seq,
then its own; the parent's folder is never written; deleting a parent first
gives each fork a copy of its history; a parent or a fork held by another
process is read, and detached, under it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parleyd.providers.messages import AssistantMessage, TextPart
from parleyd.store.blobs import BLOB_THRESHOLD_CHARS, BLOBS_DIR
from parleyd.store.fork import ORIGIN_DIR, detach_forks, fork_lock, write_fork
from parleyd.store.log import LOG_NAME, SessionLog, read_log
from parleyd.store.records import (
    AssistantResponse,
    ConversationStarted,
    CurrentRecord,
    ForkedFrom,
    Record,
    SessionStarted,
    TitleSet,
    ToolOutcome,
    UserTurn,
)
from tests.store.holder import held_by_another_process

ROOT = "conv_root"


def user(text: str) -> UserTurn:
    return UserTurn(text=text, content=[{"type": "text", "text": text}], message_id=f"msg_{text}")


def answer(text: str) -> AssistantResponse:
    return AssistantResponse(
        message=AssistantMessage(parts=(TextPart(text),)), message_id=f"msg_re_{text}", model="m"
    )


def new_session(sessions: Path, session_id: str, records: list[Record]) -> Path:
    """A session as `session/new` starts it, with `records` after."""
    folder = sessions / session_id
    log, _ = SessionLog.open(folder)
    log.append(SessionStarted(session_id=session_id, cwd="/work", settings={"model": "m"}), ROOT)
    log.append(ConversationStarted(), ROOT)
    for record in records:
        log.append(record, ROOT)
    log.close()
    return folder


def fork(sessions: Path, parent: str, up_to_seq: int, fork_id: str) -> Path:
    folder = sessions / fork_id
    started = SessionStarted(session_id=fork_id, cwd="/fork", settings={}, conv=ROOT)
    mark = ForkedFrom(session_id=parent, up_to_seq=up_to_seq)
    write_fork(folder, started, mark, [TitleSet(title="a fork")])
    return folder


def append(folder: Path, records: list[Record]) -> None:
    log, _ = SessionLog.open(folder)
    for record in records:
        log.append(record, ROOT)
    log.close()


def texts(records: list[CurrentRecord]) -> list[str]:
    return [r.text for r in records if isinstance(r, UserTurn)]


def delete(sessions: Path, session_id: str) -> None:
    """What session/delete does to the store."""
    with fork_lock(sessions):
        detach_forks(sessions, session_id)
        shutil.rmtree(sessions / session_id)


@pytest.fixture
def sessions(tmp_path: Path) -> Path:
    folder = tmp_path / "sessions"
    folder.mkdir()
    return folder


def test_a_fork_reads_its_parents_records_up_to_its_seq_then_its_own(sessions: Path) -> None:
    parent = new_session(sessions, "sess_p", [user("one"), answer("one"), user("two")])
    before = (parent / LOG_NAME).read_bytes()
    # seq 3 and 4: the first prompt and its answer.
    child = fork(sessions, "sess_p", 4, "sess_f")
    append(child, [user("three")])
    append(parent, [user("later")])

    records = read_log(child).records
    assert texts(records) == ["one", "three"]
    # The fork's session record stands in for the parent's; the rest of the
    # history is the parent's own, under its seqs.
    started, *rest = records
    assert isinstance(started, SessionStarted) and started.session_id == "sess_f"
    assert not any(isinstance(r, SessionStarted) for r in rest)
    assert rest[:3] == read_log(parent).records[1:4]
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6, 7]
    assert [type(r) for r in records[4:]] == [ForkedFrom, TitleSet, UserTurn]
    # The parent's folder holds what it held, plus its own append only.
    assert (parent / LOG_NAME).read_bytes().startswith(before)
    assert texts(read_log(parent).records) == ["one", "two", "later"]
    assert sorted(p.name for p in sessions.iterdir()) == ["sess_f", "sess_p"]


def test_a_fork_of_a_fork_reads_through_both(sessions: Path) -> None:
    new_session(sessions, "sess_p", [user("one"), user("two")])
    middle = fork(sessions, "sess_p", 3, "sess_f")
    append(middle, [user("three"), user("four")])
    # Its history, its mark and title (seqs 4 and 5), and its first prompt.
    last = fork(sessions, "sess_f", 6, "sess_g")
    append(last, [user("five")])

    records = read_log(last).records
    assert texts(records) == ["one", "three", "five"]
    assert [r.seq for r in records] == sorted({r.seq for r in records})
    assert texts(read_log(middle).records) == ["one", "three", "four"]


def test_deleting_a_parent_leaves_its_forks_whole(sessions: Path) -> None:
    long_output = "x" * (BLOB_THRESHOLD_CHARS + 1)
    result = ToolOutcome(call_id="call_1", name="read_file", status="completed", output=long_output)
    new_session(sessions, "sess_p", [user("one"), result, user("two")])
    middle = fork(sessions, "sess_p", 4, "sess_f")
    append(middle, [user("three")])
    last = fork(sessions, "sess_f", 7, "sess_g")
    other = fork(sessions, "sess_p", 3, "sess_h")
    before = {folder: read_log(folder).records for folder in (middle, last, other)}

    delete(sessions, "sess_p")
    assert {folder: read_log(folder).records for folder in (middle, last, other)} == before
    # The long text was copied as a blob beside the copied history.
    assert len(list((middle / ORIGIN_DIR / BLOBS_DIR).iterdir())) == 1
    assert not (last / ORIGIN_DIR).exists()  # it reads from sess_f, which stays

    delete(sessions, "sess_f")
    assert read_log(last).records == before[last]
    outcome = next(r for r in read_log(last).records if isinstance(r, ToolOutcome))
    assert outcome.output == long_output
    # A fork with its copy opens and goes on like any session.
    append(last, [user("six")])
    assert texts(read_log(last).records) == ["one", "three", "six"]


def test_detaching_touches_only_the_forks_of_that_session(sessions: Path) -> None:
    new_session(sessions, "sess_p", [user("one")])
    new_session(sessions, "sess_q", [user("two")])
    of_p = fork(sessions, "sess_p", 3, "sess_f")
    of_q = fork(sessions, "sess_q", 3, "sess_g")
    # Left by a crash midway through an earlier detach.
    (of_p / f"{ORIGIN_DIR}.tmp").mkdir()
    (of_p / f"{ORIGIN_DIR}.tmp" / LOG_NAME).write_bytes(b"half a line")

    with fork_lock(sessions):
        detach_forks(sessions, "sess_p")
    assert sorted(p.name for p in of_p.iterdir()) == [LOG_NAME, ORIGIN_DIR]
    assert not (of_q / ORIGIN_DIR).exists()
    assert texts(read_log(of_p).records) == ["one"]


def test_a_fork_whose_history_is_gone_reads_as_its_own_records(
    sessions: Path, caplog: pytest.LogCaptureFixture
) -> None:
    new_session(sessions, "sess_p", [user("one")])
    child = fork(sessions, "sess_p", 3, "sess_f")
    append(child, [user("two")])
    # Removed behind the store's back: nothing left to read the history from.
    shutil.rmtree(sessions / "sess_p")

    contents = read_log(child)
    assert texts(contents.records) == ["two"]
    assert isinstance(contents.records[0], SessionStarted)
    assert "its parent sess_p is gone" in caplog.text


@pytest.mark.parametrize("parent", ["sess_f", "../sess_p", ".."])
def test_a_mark_that_names_no_parent_is_not_followed(
    sessions: Path, parent: str, caplog: pytest.LogCaptureFixture
) -> None:
    new_session(sessions, "sess_p", [user("one")])
    child = fork(sessions, parent, 3, "sess_f")
    append(child, [user("two")])
    assert texts(read_log(child).records) == ["two"]
    assert "cannot be its parent" in caplog.text


def test_forks_that_name_each_other_are_read_without_looping(sessions: Path) -> None:
    first = fork(sessions, "sess_g", 3, "sess_f")
    second = fork(sessions, "sess_f", 3, "sess_g")
    append(first, [user("one")])
    append(second, [user("two")])
    assert texts(read_log(first).records) == ["one"]
    assert texts(read_log(second).records) == ["two"]


# Opens the session's log as a daemon does, holds it until stdin closes, then
# appends one more prompt.
_HOLD_SESSION = """
import sys
from pathlib import Path
from parleyd.store.log import SessionLog
from parleyd.store.records import UserTurn

log, _ = SessionLog.open(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
log.append(UserTurn(text="held", content=[], message_id="msg_held"), "conv_root")
log.close()
"""


def test_a_parent_held_by_another_process_is_forked_and_goes_on(sessions: Path) -> None:
    parent = new_session(sessions, "sess_p", [user("one"), user("two")])
    with held_by_another_process(_HOLD_SESSION, parent):
        # A line the holder is still writing is not whole: never read.
        with (parent / LOG_NAME).open("ab") as log:
            log.write(b'{"type":"user","seq":5,"conv":"conv_root","text":"ha')
        assert texts(read_log(parent).records) == ["one", "two"]
        child = fork(sessions, "sess_p", 4, "sess_f")
        append(child, [user("three")])
        assert texts(read_log(child).records) == ["one", "two", "three"]
    assert texts(read_log(parent).records) == ["one", "two", "held"]
    assert texts(read_log(child).records) == ["one", "two", "three"]


def test_a_fork_held_by_another_process_is_detached_under_it(sessions: Path) -> None:
    new_session(sessions, "sess_p", [user("one")])
    child = fork(sessions, "sess_p", 3, "sess_f")
    with held_by_another_process(_HOLD_SESSION, child):
        delete(sessions, "sess_p")
    # The holder's append after the detach went to the fork's own log.
    assert texts(read_log(child).records) == ["one", "held"]
