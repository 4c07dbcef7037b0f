"""What changes how a session is listed without being activity: a title set
later, archiving, deleting. The index takes each change, and a rebuild from the
logs gives back what it was told."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from parleyd.store.index import ArchiveFilter, SessionIndex, SessionRow
from parleyd.store.log import SessionLog
from parleyd.store.records import (
    ArchiveSet,
    ConversationStarted,
    SessionStarted,
    TitleSet,
    UserTurn,
)

INDEX = "index.sqlite"
ROOT = "conv_root"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SessionIndex]:
    index = SessionIndex(tmp_path)
    yield index
    index.close()


def add_prompted(index: SessionIndex, session_id: str, ts: float) -> None:
    started = SessionStarted(session_id=session_id, cwd="/work", settings={}, ts=ts, conv=ROOT)
    index.add_session(started)
    index.touch(session_id, ts, title=f"Title of {session_id}")


def listed(index: SessionIndex, archived: ArchiveFilter = "exclude") -> list[str]:
    return [row.session_id for row in index.list(None, None, 10, archived)]


def test_a_title_set_later_changes_the_title_not_the_time(index: SessionIndex) -> None:
    add_prompted(index, "sess_a", ts=10.0)
    index.set_title("sess_a", "Renamed")
    assert index.get("sess_a") == SessionRow("sess_a", "/work", "Renamed", 10.0, 10.0)
    # The next turn keeps it: a touch without a title changes none.
    index.touch("sess_a", 20.0)
    assert index.get("sess_a") == SessionRow("sess_a", "/work", "Renamed", 10.0, 20.0)


def test_archived_sessions_are_listed_only_when_asked_for(index: SessionIndex) -> None:
    for number, session_id in enumerate(["sess_a", "sess_b", "sess_c"]):
        add_prompted(index, session_id, ts=float(number))
    index.set_archived("sess_b", True)
    assert listed(index) == ["sess_c", "sess_a"]
    assert listed(index, "include") == ["sess_c", "sess_b", "sess_a"]
    assert listed(index, "only") == ["sess_b"]
    assert [row.archived for row in index.list(None, None, 10, "include")] == [False, True, False]

    index.set_archived("sess_b", False)
    assert listed(index) == ["sess_c", "sess_b", "sess_a"]
    assert listed(index, "only") == []


def test_pages_of_archived_sessions_lose_nothing(index: SessionIndex) -> None:
    for number in range(6):
        add_prompted(index, f"sess_{number}", ts=float(number))
        index.set_archived(f"sess_{number}", number % 2 == 0)
    seen: list[str] = []
    after: tuple[float, str] | None = None
    while page := index.list(None, after, 2, "only"):
        seen += [row.session_id for row in page]
        after = (page[-1].updated_at, page[-1].session_id)
    assert seen == ["sess_4", "sess_2", "sess_0"]


def test_a_removed_session_is_forgotten_with_its_conversations(
    index: SessionIndex, tmp_path: Path
) -> None:
    add_prompted(index, "sess_gone", ts=1.0)
    add_prompted(index, "sess_kept", ts=2.0)
    for session_id in ("sess_gone", "sess_kept"):
        index.add_conversation(session_id, ConversationStarted(conv=f"{ROOT}_{session_id}"))
    index.remove("sess_gone")
    assert index.get("sess_gone") is None
    assert listed(index, "include") == ["sess_kept"]
    with contextlib.closing(sqlite3.connect(tmp_path / INDEX)) as db:
        rows = db.execute("SELECT session_id FROM conversations").fetchall()
    assert rows == [("sess_kept",)]


def write_log(home: Path, session_id: str, *records: ArchiveSet | TitleSet) -> None:
    """A prompted session (its last activity at ts 20), then `records`, at 30, 31, ..."""
    log, _ = SessionLog.open(home / "sessions" / session_id)
    log.append(SessionStarted(session_id=session_id, cwd="/proj", settings={}, ts=10.0), ROOT)
    log.append(ConversationStarted(ts=10.0), ROOT)
    log.append(UserTurn(text="hi", content=[], message_id="m1", ts=20.0), ROOT)
    for offset, record in enumerate(records):
        record.ts = 30.0 + offset
        log.append(record, ROOT)
    log.close()


def rebuilt(home: Path) -> SessionIndex:
    for path in home.glob(f"{INDEX}*"):
        path.unlink()
    return SessionIndex(home)


def test_a_rebuild_keeps_titles_and_archive_flags_but_not_their_times(tmp_path: Path) -> None:
    write_log(tmp_path, "sess_archived", TitleSet(title="Renamed"), ArchiveSet(archived=True))
    write_log(tmp_path, "sess_back", ArchiveSet(archived=True), ArchiveSet(archived=False))
    write_log(tmp_path, "sess_plain")
    index = rebuilt(tmp_path)
    try:
        assert index.get("sess_archived") == SessionRow(
            "sess_archived", "/proj", "Renamed", 10.0, 20.0, archived=True
        )
        assert index.get("sess_back") == SessionRow("sess_back", "/proj", None, 10.0, 20.0)
        assert sorted(listed(index)) == ["sess_back", "sess_plain"]
    finally:
        index.close()


def test_an_index_from_before_archiving_is_rebuilt(tmp_path: Path) -> None:
    """Version 2 of the index has no archive flag: its file is rebuilt, not read."""
    write_log(tmp_path, "sess_archived", ArchiveSet(archived=True))
    write_log(tmp_path, "sess_plain")
    with contextlib.closing(sqlite3.connect(tmp_path / INDEX)) as db:
        db.execute(
            "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, cwd TEXT NOT NULL, title TEXT,"
            " created_at REAL NOT NULL, updated_at REAL NOT NULL, prompted INTEGER NOT NULL)"
        )
        db.execute("INSERT INTO sessions VALUES ('sess_archived', '/proj', NULL, 10, 20, 1)")
        db.execute("PRAGMA user_version = 2")
        db.commit()
    index = SessionIndex(tmp_path)
    try:
        assert listed(index) == ["sess_plain"]
        assert listed(index, "only") == ["sess_archived"]
    finally:
        index.close()
