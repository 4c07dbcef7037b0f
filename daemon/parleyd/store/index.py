"""`index.sqlite`: the list of sessions and their conversations, so listing
never parses a log. It holds nothing the logs do not, and is rebuilt from them
when it is missing or unreadable.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from parleyd.store.log import LOG_NAME, read_log
from parleyd.store.records import ConversationStarted, SessionStarted, TitleSet

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    cwd TEXT NOT NULL,
    title TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions (updated_at DESC, session_id);
CREATE TABLE IF NOT EXISTS conversations (
    conversation_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    parent_id TEXT,
    parent_tool_call TEXT,
    depth INTEGER NOT NULL,
    title TEXT
);
CREATE INDEX IF NOT EXISTS conversations_by_session ON conversations (session_id);
"""


@dataclass(frozen=True)
class SessionRow:
    session_id: str
    cwd: str
    title: str | None
    created_at: float
    updated_at: float


class SessionIndex:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.sessions_dir = home / "sessions"
        self.sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._path = home / "index.sqlite"
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        # An empty file is what a crash right after sqlite created it leaves.
        fresh = not self._path.exists() or self._path.stat().st_size == 0
        try:
            db = self._open_db()
            db.execute("SELECT count(*) FROM sessions").fetchone()
        except sqlite3.DatabaseError:
            log.warning("index %s is unreadable; rebuilding it from the session logs", self._path)
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(f"{self._path}{suffix}").unlink()
            db = self._open_db()
            fresh = True
        if fresh:
            self._rebuild(db)
        return db

    def _open_db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._path.chmod(0o600)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def _rebuild(self, db: sqlite3.Connection) -> None:
        for folder in sorted(self.sessions_dir.iterdir()):
            if not (folder / LOG_NAME).exists():
                continue
            records = read_log(folder).records
            started = next((r for r in records if isinstance(r, SessionStarted)), None)
            if started is None:
                continue
            title = next((r.title for r in reversed(records) if isinstance(r, TitleSet)), None)
            updated = max((r.ts for r in records), default=started.ts)
            row = SessionRow(started.session_id, started.cwd, title, started.ts, updated)
            self._put_session(db, row)
            for record in records:
                if isinstance(record, ConversationStarted):
                    self._put_conversation(db, started.session_id, record)

    @staticmethod
    def _put_session(db: sqlite3.Connection, row: SessionRow) -> None:
        db.execute(
            "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)",
            (row.session_id, row.cwd, row.title, row.created_at, row.updated_at),
        )

    @staticmethod
    def _put_conversation(
        db: sqlite3.Connection, session_id: str, record: ConversationStarted
    ) -> None:
        db.execute(
            "INSERT OR REPLACE INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
            (
                record.conv,
                session_id,
                record.parent,
                record.parent_tool_call,
                record.depth,
                record.title,
            ),
        )

    def add_session(self, started: SessionStarted) -> None:
        row = SessionRow(started.session_id, started.cwd, None, started.ts, started.ts)
        self._put_session(self._db, row)

    def add_conversation(self, session_id: str, record: ConversationStarted) -> None:
        self._put_conversation(self._db, session_id, record)

    def touch(self, session_id: str, updated_at: float, title: str | None = None) -> None:
        self._db.execute(
            "UPDATE sessions SET updated_at = ?, title = coalesce(?, title) WHERE session_id = ?",
            (updated_at, title, session_id),
        )

    def get(self, session_id: str) -> SessionRow | None:
        row = self._db.execute(
            "SELECT * FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return SessionRow(*row) if row else None

    def list(
        self, cwd: str | None, after: tuple[float, str] | None, limit: int
    ) -> list[SessionRow]:
        """Newest first; `after` is the (updated_at, session_id) of the last row seen."""
        clauses: list[str] = []
        args: list[object] = []
        if cwd is not None:
            clauses.append("cwd = ?")
            args.append(cwd)
        if after is not None:
            clauses.append("(updated_at < ? OR (updated_at = ? AND session_id > ?))")
            args.extend([after[0], after[0], after[1]])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT * FROM sessions {where} ORDER BY updated_at DESC, session_id LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [SessionRow(*row) for row in rows]

    def close(self) -> None:
        self._db.close()
