"""`index.sqlite`: the list of sessions and their conversations, so listing
never parses a log. It holds nothing the logs do not, so it can always be
rebuilt from them.

A rebuild is one transaction that sets the marker (`user_version`) last: a file
without the marker is one whose rebuild never finished, or from an older
Parley, and is rebuilt. An index with the marker is reconciled with `sessions/`
at every open, parsing only the logs of the folders it lacks. Only corruption
makes it rebuild over an existing file, which is kept aside; a lock held by
another daemon is waited for, never mistaken for damage.

A session is listed once it has had a prompt: clients that create sessions
they never use (CodeCompanion makes two per chat) would fill the picker with
bare ids otherwise. An archived one is listed only when asked for.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from parleyd.redaction import redact_text
from parleyd.store.log import StoreError, read_log
from parleyd.store.records import (
    ArchiveSet,
    ConversationStarted,
    SessionStarted,
    TitleSet,
    UserTurn,
)

log = logging.getLogger(__name__)

# The marker: a rebuild writes it last. Raise it when the tables change, so an
# index written by an older Parley is rebuilt.
_SCHEMA_VERSION = 3

_TABLES = (
    """CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        cwd TEXT NOT NULL,
        title TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        archived INTEGER NOT NULL,
        prompted INTEGER NOT NULL
    )""",
    "CREATE INDEX listed_by_update ON sessions (updated_at DESC, session_id) WHERE prompted",
    """CREATE TABLE conversations (
        conversation_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        parent_id TEXT,
        parent_tool_call TEXT,
        depth INTEGER NOT NULL,
        title TEXT
    )""",
    "CREATE INDEX conversations_by_session ON conversations (session_id)",
)

_ROW_COLUMNS = "session_id, cwd, title, created_at, updated_at, archived"

# "Or ignore": a row already there was written by a live daemon, and is at
# least as new as what a rebuild or a reconcile read from the log.
_PUT_SESSION = (
    f"INSERT OR IGNORE INTO sessions ({_ROW_COLUMNS}, prompted) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PUT_CONVERSATION = "INSERT OR IGNORE INTO conversations VALUES (?, ?, ?, ?, ?, ?)"

_CORRUPTION = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}

# How long an open or a write waits for another daemon's write to finish.
_BUSY_TIMEOUT = 5.0

# Records that change how a session is listed, not when it was last active.
_LISTING_ONLY = (TitleSet, ArchiveSet)

ArchiveFilter = Literal["exclude", "include", "only"]
_ARCHIVE_CLAUSES: dict[ArchiveFilter, str | None] = {
    "exclude": "NOT archived",
    "include": None,
    "only": "archived",
}


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    cwd: str
    title: str | None
    created_at: float
    updated_at: float
    archived: bool = False


@dataclass(frozen=True)
class _Indexed:
    """Everything the index holds about one session."""

    row: SessionRow
    prompted: bool
    conversations: list[ConversationStarted]


class SessionIndex:
    """Callers: `add_session` and `add_conversation` when a session is created,
    `touch` once its prompt is in the log and again when the turn ends,
    `set_title` and `set_archived` once the log has the change, `remove` once the
    folder is gone. Every method raises StoreError when the index cannot be read
    or written."""

    def __init__(self, home: Path, *, busy_timeout: float = _BUSY_TIMEOUT) -> None:
        self.home = home
        self.sessions_dir = home / "sessions"
        self.sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._path = home / "index.sqlite"
        self._busy_timeout = busy_timeout
        with self._failures("open"):
            self._db = self._open()

    # -- opening ----------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        db = self._connect()
        try:
            damage = _damage(db)
            if damage is not None:
                db.close()
                self._set_aside(damage)
                db = self._connect()
            if _marker(db) == _SCHEMA_VERSION:
                self._reconcile(db)
            else:
                self._rebuild(db)
        except BaseException:
            db.close()
            raise
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(
            self._path,
            timeout=self._busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        self._path.chmod(0o600)
        return db

    def _set_aside(self, damage: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        kept = f"{self._path}.corrupt-{stamp}"
        # The WAL may hold the newest pages: it goes with the file, under the
        # names sqlite pairs with the new one.
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self._path}{suffix}").rename(f"{kept}{suffix}")
        log.warning(
            "index %s is corrupt (%s): kept it as %s and rebuilding it from the session logs",
            self._path,
            damage,
            kept,
        )

    def _rebuild(self, db: sqlite3.Connection) -> None:
        # The logs are read before the write lock is taken, so another daemon's
        # writes wait only for the inserts, not for the parsing.
        sessions = [s for folder in self._folders() if (s := _summarize(folder))]
        with _transaction(db):
            if _marker(db) == _SCHEMA_VERSION:
                return  # another daemon finished a rebuild meanwhile
            for table in ("sessions", "conversations"):
                db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _TABLES:
                db.execute(statement)
            _put(db, sessions)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        log.info("rebuilt index %s: %d session(s)", self._path, len(sessions))

    def _reconcile(self, db: sqlite3.Connection) -> None:
        """Add the sessions the index lacks and drop those whose folder is gone:
        folder names against rows, so only the missing logs are read."""
        # Rows before folders: a daemon creates a session's folder before its row,
        # so a row seen here whose folder is not listed next is truly gone.
        indexed = {session_id for (session_id,) in db.execute("SELECT session_id FROM sessions")}
        on_disk = {folder.name for folder in self._folders()}
        missing = [
            s for name in sorted(on_disk - indexed) if (s := _summarize(self.sessions_dir / name))
        ]
        gone = [(session_id,) for session_id in sorted(indexed - on_disk)]
        if not missing and not gone:
            return
        with _transaction(db):
            _put(db, missing)
            db.executemany("DELETE FROM conversations WHERE session_id = ?", gone)
            db.executemany("DELETE FROM sessions WHERE session_id = ?", gone)
        log.info(
            "index %s: added %d session(s) from their logs, dropped %d without a folder",
            self._path,
            len(missing),
            len(gone),
        )

    def _folders(self) -> list[Path]:
        return sorted(entry for entry in self.sessions_dir.iterdir() if entry.is_dir())

    # -- use ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _failures(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"index {self._path}: could not {action}: {exc}") from exc

    def add_session(self, started: SessionStarted) -> None:
        """Index a new session, unlisted until `touch`."""
        row = SessionRow(started.session_id, started.cwd, None, started.ts, started.ts)
        with self._failures("add a session"):
            _put(self._db, [_Indexed(row, prompted=False, conversations=[])])

    def add_conversation(self, session_id: str, record: ConversationStarted) -> None:
        with self._failures("add a conversation"):
            self._db.execute(_PUT_CONVERSATION, _conversation_values(session_id, record))

    def touch(self, session_id: str, updated_at: float, title: str | None = None) -> None:
        """The session has had a prompt: list it, as updated at `updated_at`.
        A title of None keeps the one it has."""
        with self._failures("update a session"):
            self._db.execute(
                "UPDATE sessions SET updated_at = ?, title = coalesce(?, title), prompted = 1"
                " WHERE session_id = ?",
                (updated_at, None if title is None else redact_text(title), session_id),
            )

    def set_title(self, session_id: str, title: str) -> None:
        # A title is the user's words: redacted like the log that holds it.
        self._update("set a title", "title = ?", redact_text(title), session_id)

    def set_archived(self, session_id: str, archived: bool) -> None:
        self._update("archive a session", "archived = ?", archived, session_id)

    def _update(self, action: str, assignment: str, value: object, session_id: str) -> None:
        with self._failures(action):
            self._db.execute(
                f"UPDATE sessions SET {assignment} WHERE session_id = ?", (value, session_id)
            )

    def remove(self, session_id: str) -> None:
        """Forget a session whose folder is gone."""
        with self._failures("remove a session"), _transaction(self._db):
            self._db.execute("DELETE FROM conversations WHERE session_id = ?", (session_id,))
            self._db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))

    def get(self, session_id: str) -> SessionRow | None:
        """The session as `list` shows it, archived or not, or None if it is not listed."""
        with self._failures("read a session"):
            row = self._db.execute(
                f"SELECT {_ROW_COLUMNS} FROM sessions WHERE prompted AND session_id = ?",
                (session_id,),
            ).fetchone()
        return _row(row) if row else None

    def list(
        self,
        cwd: str | None,
        after: tuple[float, str] | None,
        limit: int,
        archived: ArchiveFilter = "exclude",
    ) -> list[SessionRow]:
        """Listed sessions, newest first; `after` is the (updated_at, session_id)
        of the last row seen."""
        clauses = ["prompted"]
        archive_clause = _ARCHIVE_CLAUSES[archived]
        if archive_clause is not None:
            clauses.append(archive_clause)
        args: list[object] = []
        if cwd is not None:
            clauses.append("cwd = ?")
            args.append(cwd)
        if after is not None:
            clauses.append("(updated_at < ? OR (updated_at = ? AND session_id > ?))")
            args.extend([after[0], after[0], after[1]])
        with self._failures("list sessions"):
            rows = self._db.execute(
                f"SELECT {_ROW_COLUMNS} FROM sessions WHERE {' AND '.join(clauses)}"
                " ORDER BY updated_at DESC, session_id LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_row(row) for row in rows]

    def close(self) -> None:
        self._db.close()


def _damage(db: sqlite3.Connection) -> str | None:
    """Why the file cannot serve as the index, or None if it can. Only
    corruption counts: a lock held past the busy timeout raises."""
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # A few milliseconds for an index of thousands of sessions, and it finds
        # damaged pages that no start-up query would read.
        (verdict,) = db.execute("PRAGMA quick_check(1)").fetchone()
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", 0) & 0xFF in _CORRUPTION:
            return str(exc)
        raise
    return None if verdict == "ok" else str(verdict)


def _row(values: tuple[Any, ...]) -> SessionRow:
    session_id, cwd, title, created_at, updated_at, archived = values
    # sqlite keeps the flag as 0 or 1.
    return SessionRow(session_id, cwd, title, created_at, updated_at, bool(archived))


def _marker(db: sqlite3.Connection) -> int:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(version)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    # IMMEDIATE takes the write lock up front, under the busy timeout; a
    # deferred transaction that later needs it fails at once instead.
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()


def _summarize(folder: Path) -> _Indexed | None:
    """What the index holds about the session in `folder`, from its log, or
    None if the folder holds no session. A session is known by its folder's
    name, as `session/load` finds it."""
    try:
        records = read_log(folder).records
    except OSError as exc:
        log.warning("session folder %s skipped: its log cannot be read: %s", folder, exc)
        return None
    started = next((r for r in records if isinstance(r, SessionStarted)), None)
    if started is None:
        return None
    title = next((r.title for r in reversed(records) if isinstance(r, TitleSet)), None)
    archived = next((r.archived for r in reversed(records) if isinstance(r, ArchiveSet)), False)
    updated = max(r.ts for r in records if not isinstance(r, _LISTING_ONLY))
    return _Indexed(
        SessionRow(folder.name, started.cwd, title, started.ts, updated, archived),
        prompted=any(isinstance(r, UserTurn) for r in records),
        conversations=[r for r in records if isinstance(r, ConversationStarted)],
    )


def _put(db: sqlite3.Connection, sessions: list[_Indexed]) -> None:
    db.executemany(
        _PUT_SESSION,
        [
            (
                s.row.session_id,
                s.row.cwd,
                s.row.title,
                s.row.created_at,
                s.row.updated_at,
                s.row.archived,
                s.prompted,
            )
            for s in sessions
        ],
    )
    db.executemany(
        _PUT_CONVERSATION,
        [
            _conversation_values(s.row.session_id, record)
            for s in sessions
            for record in s.conversations
        ],
    )


def _conversation_values(session_id: str, record: ConversationStarted) -> tuple[object, ...]:
    return (
        record.conv,
        session_id,
        record.parent,
        record.parent_tool_call,
        record.depth,
        None if record.title is None else redact_text(record.title),
    )
