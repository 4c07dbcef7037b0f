"""`index.sqlite`: listing order, pagination, and rebuilding from the logs."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from parleyd.store.index import SessionIndex, SessionRow
from parleyd.store.log import SessionLog, read_log
from parleyd.store.records import (
    ConversationStarted,
    SessionStarted,
    TitleSet,
    UserTurn,
)


def started(session_id: str, cwd: str = "/work", ts: float = 1.0) -> SessionStarted:
    return SessionStarted(session_id=session_id, cwd=cwd, settings={}, ts=ts, conv="conv_root")


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SessionIndex]:
    index = SessionIndex(tmp_path)
    yield index
    index.close()


def ids(rows: list[SessionRow]) -> list[str]:
    return [row.session_id for row in rows]


def all_pages(index: SessionIndex, cwd: str | None, page_size: int) -> Iterator[list[SessionRow]]:
    """Walk the listing the way session/list's cursor does."""
    after: tuple[float, str] | None = None
    while page := index.list(cwd, after, page_size):
        yield page
        after = (page[-1].updated_at, page[-1].session_id)


def test_add_get_and_touch(index: SessionIndex) -> None:
    index.add_session(started("sess_a", ts=10.0))
    assert index.get("sess_a") == SessionRow("sess_a", "/work", None, 10.0, 10.0)
    assert index.get("sess_missing") is None

    index.touch("sess_a", 20.0, title="First title")
    assert index.get("sess_a") == SessionRow("sess_a", "/work", "First title", 10.0, 20.0)
    # A touch without a title keeps the one already there.
    index.touch("sess_a", 30.0)
    assert index.get("sess_a") == SessionRow("sess_a", "/work", "First title", 10.0, 30.0)


def test_list_is_newest_first_and_filters_by_cwd(index: SessionIndex) -> None:
    index.add_session(started("sess_old", "/a", ts=1.0))
    index.add_session(started("sess_mid", "/b", ts=2.0))
    index.add_session(started("sess_new", "/a", ts=3.0))
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
        index.add_session(started(session_id, ts=5.0))
    index.add_session(started("sess_z", ts=9.0))
    index.add_session(started("sess_e", ts=1.0))
    expected = ["sess_z", "sess_a", "sess_b", "sess_c", "sess_d", "sess_e"]

    pages = list(all_pages(index, None, page_size))
    assert [session_id for page in pages for session_id in ids(page)] == expected
    assert all(len(page) <= page_size for page in pages)


def test_pagination_keeps_the_cwd_filter(index: SessionIndex) -> None:
    for number in range(5):
        cwd = "/a" if number % 2 == 0 else "/b"
        index.add_session(started(f"sess_{number}", cwd, ts=float(number)))
    pages = list(all_pages(index, "/a", 1))
    assert [ids(page) for page in pages] == [["sess_4"], ["sess_2"], ["sess_0"]]


def write_session_log(home: Path) -> None:
    """A session with a titled root and a subagent conversation, plus folders
    the rebuild must pass over."""
    log, _ = SessionLog.open(home / "sessions" / "sess_kept")
    log.append(SessionStarted(session_id="sess_kept", cwd="/proj", settings={}), "conv_root")
    log.append(ConversationStarted(), "conv_root")
    log.append(TitleSet(title="Old title"), "conv_root")
    log.append(
        ConversationStarted(parent="conv_root", parent_tool_call="call_1", depth=1, title="sub"),
        "conv_sub",
    )
    log.append(TitleSet(title="New title"), "conv_root")
    log.append(UserTurn(text="hi", content=[], message_id="m1"), "conv_sub")
    log.close()
    # A folder whose log never got its session record, and one with no log at all.
    orphan, _ = SessionLog.open(home / "sessions" / "sess_orphan")
    orphan.append(TitleSet(title="orphan"), "conv_x")
    orphan.close()
    (home / "sessions" / "sess_empty").mkdir()


def assert_rebuilt(home: Path) -> None:
    records = read_log(home / "sessions" / "sess_kept").records
    index = SessionIndex(home)
    try:
        assert ids(index.list(None, None, 10)) == ["sess_kept"]
        row = index.get("sess_kept")
        assert row is not None
        assert (row.cwd, row.title) == ("/proj", "New title")
        assert row.created_at == records[0].ts
        assert row.updated_at == max(r.ts for r in records)
    finally:
        index.close()
    with sqlite3.connect(home / "index.sqlite") as db:
        conversations = db.execute(
            "SELECT conversation_id, session_id, parent_id, parent_tool_call, depth, title"
            " FROM conversations ORDER BY depth"
        ).fetchall()
    assert conversations == [
        ("conv_root", "sess_kept", None, None, 0, None),
        ("conv_sub", "sess_kept", "conv_root", "call_1", 1, "sub"),
    ]


def test_rebuilt_from_the_logs_when_the_index_is_deleted(tmp_path: Path) -> None:
    SessionIndex(tmp_path).close()
    write_session_log(tmp_path)
    for path in tmp_path.glob("index.sqlite*"):
        path.unlink()
    assert_rebuilt(tmp_path)


@pytest.mark.parametrize(
    "garbage",
    [b"this is not a database" * 500, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "bad-pages"],
)
def test_rebuilt_from_the_logs_when_the_index_is_corrupt(tmp_path: Path, garbage: bytes) -> None:
    SessionIndex(tmp_path).close()
    write_session_log(tmp_path)
    (tmp_path / "index.sqlite").write_bytes(garbage)
    assert_rebuilt(tmp_path)


def test_rebuilt_from_the_logs_when_the_index_is_empty(tmp_path: Path) -> None:
    SessionIndex(tmp_path).close()
    write_session_log(tmp_path)
    (tmp_path / "index.sqlite").write_bytes(b"")
    assert_rebuilt(tmp_path)
