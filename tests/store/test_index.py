"""`index.sqlite`: listing order and pagination, listing only prompted sessions,
and recovery: rebuilds that are killed midway, damage set aside, locks waited
for, folders reconciled at start."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from parleyd.store.index import SessionIndex, SessionRow
from parleyd.store.log import LOG_NAME, SessionLog, StoreError, read_log
from parleyd.store.records import (
    ConversationStarted,
    SessionStarted,
    TitleSet,
    UserTurn,
)
from tests.store.holder import held_by_another_process

INDEX = "index.sqlite"


def started(session_id: str, cwd: str = "/work", ts: float = 1.0) -> SessionStarted:
    return SessionStarted(session_id=session_id, cwd=cwd, settings={}, ts=ts, conv="conv_root")


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SessionIndex]:
    index = SessionIndex(tmp_path)
    yield index
    index.close()


def add_prompted(index: SessionIndex, session_id: str, cwd: str = "/work", ts: float = 1.0) -> None:
    """A session as the daemon indexes it: created, then touched by its first turn."""
    index.add_session(started(session_id, cwd, ts))
    index.touch(session_id, ts)


def ids(rows: list[SessionRow]) -> list[str]:
    return [row.session_id for row in rows]


def listed(home: Path) -> list[str]:
    index = SessionIndex(home)
    try:
        return ids(index.list(None, None, 100))
    finally:
        index.close()


def all_pages(index: SessionIndex, cwd: str | None, page_size: int) -> Iterator[list[SessionRow]]:
    """Walk the listing the way session/list's cursor does."""
    after: tuple[float, str] | None = None
    while page := index.list(cwd, after, page_size):
        yield page
        after = (page[-1].updated_at, page[-1].session_id)


def test_add_get_and_touch(index: SessionIndex) -> None:
    index.add_session(started("sess_a", ts=10.0))
    index.touch("sess_a", 20.0, title="First title")
    assert index.get("sess_a") == SessionRow("sess_a", "/work", "First title", 10.0, 20.0)
    assert index.get("sess_missing") is None
    # A touch without a title keeps the one already there.
    index.touch("sess_a", 30.0)
    assert index.get("sess_a") == SessionRow("sess_a", "/work", "First title", 10.0, 30.0)


def test_a_session_is_listed_once_it_is_touched(index: SessionIndex) -> None:
    # What CodeCompanion does: two sessions per chat, only one of them prompted.
    index.add_session(started("sess_used", ts=1.0))
    index.add_session(started("sess_spare", ts=2.0))
    assert index.list(None, None, 10) == []
    assert index.get("sess_used") is None

    index.touch("sess_used", 3.0, title="Hello")
    assert ids(index.list(None, None, 10)) == ["sess_used"]
    assert ids(index.list("/work", None, 10)) == ["sess_used"]
    assert index.get("sess_spare") is None
    assert [ids(page) for page in all_pages(index, None, 1)] == [["sess_used"]]


def test_list_is_newest_first_and_filters_by_cwd(index: SessionIndex) -> None:
    add_prompted(index, "sess_old", "/a", ts=1.0)
    add_prompted(index, "sess_mid", "/b", ts=2.0)
    add_prompted(index, "sess_new", "/a", ts=3.0)
    assert ids(index.list(None, None, 10)) == ["sess_new", "sess_mid", "sess_old"]
    assert ids(index.list("/a", None, 10)) == ["sess_new", "sess_old"]
    assert ids(index.list("/nowhere", None, 10)) == []
    assert ids(index.list(None, None, 2)) == ["sess_new", "sess_mid"]

    index.touch("sess_old", 4.0)
    assert ids(index.list(None, None, 10)) == ["sess_old", "sess_new", "sess_mid"]


@pytest.mark.parametrize("page_size", [1, 2, 3, 10])
def test_pagination_over_equal_timestamps_loses_and_repeats_nothing(
    index: SessionIndex, page_size: int
) -> None:
    for session_id in ("sess_d", "sess_b", "sess_a", "sess_c"):
        add_prompted(index, session_id, ts=5.0)
    add_prompted(index, "sess_z", ts=9.0)
    add_prompted(index, "sess_e", ts=1.0)
    index.add_session(started("sess_unprompted", ts=5.0))
    expected = ["sess_z", "sess_a", "sess_b", "sess_c", "sess_d", "sess_e"]

    pages = list(all_pages(index, None, page_size))
    assert [session_id for page in pages for session_id in ids(page)] == expected
    assert all(len(page) <= page_size for page in pages)


def test_pagination_keeps_the_cwd_filter(index: SessionIndex) -> None:
    for number in range(5):
        cwd = "/a" if number % 2 == 0 else "/b"
        add_prompted(index, f"sess_{number}", cwd, ts=float(number))
    pages = list(all_pages(index, "/a", 1))
    assert [ids(page) for page in pages] == [["sess_4"], ["sess_2"], ["sess_0"]]


# -- rebuilding from the logs ------------------------------------------------------


def write_session(home: Path, session_id: str, *, prompted: bool = True) -> None:
    """A session's log as the daemon writes it: a titled root, a subagent
    conversation, and (if prompted) a user turn."""
    root, sub = conversation_ids(session_id)
    log, _ = SessionLog.open(home / "sessions" / session_id)
    log.append(SessionStarted(session_id=session_id, cwd="/proj", settings={}), root)
    log.append(ConversationStarted(), root)
    if prompted:
        log.append(TitleSet(title="Old title"), root)
        log.append(UserTurn(text="hi", content=[], message_id="m1"), root)
        log.append(TitleSet(title=f"Title of {session_id}"), root)
        log.append(
            ConversationStarted(parent=root, parent_tool_call="call_1", depth=1, title="sub"),
            sub,
        )
    log.close()


def conversation_ids(session_id: str) -> tuple[str, str]:
    """The root and subagent conversations of a session written by write_session."""
    return f"conv_root_{session_id}", f"conv_sub_{session_id}"


def write_sessions(home: Path) -> None:
    """One prompted session, plus folders the rebuild must pass over: one whose
    log never got its session record, and one with no log at all."""
    write_session(home, "sess_kept")
    orphan, _ = SessionLog.open(home / "sessions" / "sess_orphan")
    orphan.append(TitleSet(title="orphan"), "conv_x")
    orphan.close()
    (home / "sessions" / "sess_empty").mkdir()


def conversations_in(home: Path) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(home / INDEX)) as db:
        return db.execute(
            "SELECT conversation_id, session_id, parent_id, parent_tool_call, depth, title"
            " FROM conversations ORDER BY session_id, depth"
        ).fetchall()


def conversations_of(session_id: str) -> list[tuple[object, ...]]:
    root, sub = conversation_ids(session_id)
    return [
        (root, session_id, None, None, 0, None),
        (sub, session_id, root, "call_1", 1, "sub"),
    ]


def assert_rebuilt(home: Path) -> None:
    records = read_log(home / "sessions" / "sess_kept").records
    index = SessionIndex(home)
    try:
        assert ids(index.list(None, None, 10)) == ["sess_kept"]
        row = index.get("sess_kept")
        assert row is not None
        assert (row.cwd, row.title) == ("/proj", "Title of sess_kept")
        assert row.created_at == records[0].ts
        assert row.updated_at == max(r.ts for r in records)
    finally:
        index.close()
    assert conversations_in(home) == conversations_of("sess_kept")


def set_aside(home: Path) -> list[Path]:
    return sorted(home.glob(f"{INDEX}.corrupt-*"))


def test_rebuilt_from_the_logs_when_the_index_is_deleted(tmp_path: Path) -> None:
    SessionIndex(tmp_path).close()
    write_sessions(tmp_path)
    for path in tmp_path.glob(f"{INDEX}*"):
        path.unlink()
    assert_rebuilt(tmp_path)


def test_rebuilt_from_the_logs_when_the_index_is_empty(tmp_path: Path) -> None:
    # What a crash right after sqlite created the file leaves.
    SessionIndex(tmp_path).close()
    write_sessions(tmp_path)
    (tmp_path / INDEX).write_bytes(b"")
    assert_rebuilt(tmp_path)
    assert set_aside(tmp_path) == []


def test_a_rebuild_lists_only_sessions_with_a_prompt(tmp_path: Path) -> None:
    write_session(tmp_path, "sess_used")
    write_session(tmp_path, "sess_spare", prompted=False)
    index = SessionIndex(tmp_path)
    try:
        assert ids(index.list(None, None, 10)) == ["sess_used"]
        # The spare session is indexed all the same: its first turn lists it.
        index.touch("sess_spare", 99.0, title="Later")
        assert sorted(ids(index.list(None, None, 10))) == ["sess_spare", "sess_used"]
    finally:
        index.close()


def test_an_index_without_the_marker_is_rebuilt(tmp_path: Path) -> None:
    """An index from before the marker (or from an older Parley): its rows are
    not trusted, whatever they say."""
    write_sessions(tmp_path)
    with contextlib.closing(sqlite3.connect(tmp_path / INDEX)) as db:
        db.execute(
            "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, cwd TEXT NOT NULL, title TEXT,"
            " created_at REAL NOT NULL, updated_at REAL NOT NULL)"
        )
        db.execute("INSERT INTO sessions VALUES ('sess_ghost', '/old', 'ghost', 1.0, 1.0)")
        db.commit()
    assert_rebuilt(tmp_path)


# Runs a SessionIndex open that rebuilds, and SIGKILLs itself when sqlite
# starts a statement matching argv[2]: a crash at that point of the rebuild.
_DIE_AT_STATEMENT = """
import os, re, signal, sqlite3, sys
from pathlib import Path
from parleyd.store.index import SessionIndex

connect = sqlite3.connect

def connect_and_die_at(*args, **kwargs):
    db = connect(*args, **kwargs)
    def trace(statement):
        if re.match(sys.argv[2], statement.lstrip(), re.IGNORECASE):
            os.kill(os.getpid(), signal.SIGKILL)
    db.set_trace_callback(trace)
    return db

sqlite3.connect = connect_and_die_at
SessionIndex(Path(sys.argv[1]))
"""


@pytest.mark.parametrize(
    "statement",
    [r"INSERT\b.*\bINTO conversations\b", "COMMIT"],
    ids=["after-the-sessions-before-their-conversations", "at-the-commit"],
)
def test_a_rebuild_killed_midway_is_redone_on_the_next_open(tmp_path: Path, statement: str) -> None:
    names = [f"sess_{number}" for number in range(4)]
    for name in names:
        write_session(tmp_path, name)
    crashed = subprocess.run(
        [sys.executable, "-c", _DIE_AT_STATEMENT, str(tmp_path), statement],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    assert sorted(listed(tmp_path)) == names
    assert conversations_in(tmp_path) == [c for name in names for c in conversations_of(name)]


def test_an_unreadable_log_is_skipped_and_indexed_once_readable(tmp_path: Path) -> None:
    write_session(tmp_path, "sess_fine")
    write_session(tmp_path, "sess_broken")
    log_path = tmp_path / "sessions" / "sess_broken" / LOG_NAME
    log_path.rename(log_path.with_suffix(".aside"))
    log_path.mkdir()  # reading it fails with EISDIR
    assert listed(tmp_path) == ["sess_fine"]

    log_path.rmdir()
    log_path.with_suffix(".aside").rename(log_path)
    assert sorted(listed(tmp_path)) == ["sess_broken", "sess_fine"]


# -- reconciling with sessions/ at start ------------------------------------------


def test_a_session_the_index_missed_is_added_from_its_log(tmp_path: Path) -> None:
    """The daemon died between writing a session's log and indexing it."""
    write_session(tmp_path, "sess_indexed")
    assert listed(tmp_path) == ["sess_indexed"]
    write_session(tmp_path, "sess_missed")
    write_session(tmp_path, "sess_missed_spare", prompted=False)

    assert sorted(listed(tmp_path)) == ["sess_indexed", "sess_missed"]
    assert conversations_in(tmp_path) == [
        *conversations_of("sess_indexed"),
        *conversations_of("sess_missed"),
        (conversation_ids("sess_missed_spare")[0], "sess_missed_spare", None, None, 0, None),
    ]


def test_a_session_whose_folder_is_gone_is_dropped(tmp_path: Path) -> None:
    write_session(tmp_path, "sess_stays")
    write_session(tmp_path, "sess_goes")
    assert sorted(listed(tmp_path)) == ["sess_goes", "sess_stays"]
    folder = tmp_path / "sessions" / "sess_goes"
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()

    assert listed(tmp_path) == ["sess_stays"]
    assert conversations_in(tmp_path) == conversations_of("sess_stays")


def test_the_logs_of_indexed_sessions_are_not_read_at_open(tmp_path: Path) -> None:
    write_session(tmp_path, "sess_a")
    assert listed(tmp_path) == ["sess_a"]
    # Were the log parsed again, the session would lose its row.
    (tmp_path / "sessions" / "sess_a" / LOG_NAME).write_bytes(b"no records here\n")
    index = SessionIndex(tmp_path)
    try:
        row = index.get("sess_a")
        assert row is not None and row.title == "Title of sess_a"
    finally:
        index.close()


# -- damage and locks --------------------------------------------------------------


def damaged_page(path: Path) -> bytes:
    """The index with one of its pages overwritten: the header is sound, so
    only a check of the pages shows the damage."""
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[3 * page : 4 * page] = b"\x55" * page
    return bytes(data)


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: b"this is not a database" * 500,
        lambda path: b"SQLite format 3\x00" + b"\xff" * 4000,
        damaged_page,
    ],
    ids=["text", "bad-header", "bad-page"],
)
def test_a_corrupt_index_is_kept_aside_and_rebuilt(
    tmp_path: Path, damage: Callable[[Path], bytes]
) -> None:
    index = SessionIndex(tmp_path)
    for number in range(200):  # enough rows for several pages
        add_prompted(index, f"sess_filler{number}", ts=float(number))
    index.close()  # the last connection: its WAL is checkpointed into the file
    write_sessions(tmp_path)
    corrupt = damage(tmp_path / INDEX)
    (tmp_path / INDEX).write_bytes(corrupt)

    assert_rebuilt(tmp_path)
    [kept] = set_aside(tmp_path)
    assert kept.read_bytes() == corrupt


# Holds an exclusive lock on the index, the way a daemon in the middle of a
# write in exclusive locking mode does, until its stdin closes.
_HOLD_INDEX_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA locking_mode=EXCLUSIVE")
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_locked_index_is_waited_for_and_never_rebuilt(tmp_path: Path) -> None:
    write_session(tmp_path, "sess_a")
    assert listed(tmp_path) == ["sess_a"]
    before = (tmp_path / INDEX).read_bytes()
    with held_by_another_process(_HOLD_INDEX_LOCK, tmp_path / INDEX):
        with pytest.raises(StoreError, match="database is locked"):
            SessionIndex(tmp_path, busy_timeout=0.2)
        assert (tmp_path / INDEX).read_bytes() == before
        assert set_aside(tmp_path) == []
    assert listed(tmp_path) == ["sess_a"]
