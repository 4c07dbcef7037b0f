"""Creating, loading, listing and closing sessions, and what else a client
does with stored ones: resuming, retitling, archiving, deleting, forking.

A session is open in one daemon at most: the one holding its log's lock. A
change to a stored session goes to its log first, so a rebuilt index keeps it,
then to the index. A session open here takes the change through its own log;
one open nowhere is locked for the change; one another daemon has open is
refused (SessionBusy), never changed under it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from parley_protocol.acp import SessionInfo
from parley_protocol.mcp_servers import McpServerConfig
from parley_protocol.parley import PARLEY_META_KEY
from parleyd.config import ConfigError, Settings, with_session_overrides
from parleyd.mcp_servers import ServerListError, session_servers
from parleyd.providers.hub import ProviderHub
from parleyd.session.conversation import Conversation, new_id
from parleyd.session.errors import InvalidCursor, InvalidValue, SessionBusy, UnknownSession
from parleyd.session.fork import fork_point
from parleyd.session.modes import mode_update
from parleyd.session.port import TurnFactory
from parleyd.session.replay import NotASession, closing_records, restore
from parleyd.session.session import ClientChannel, Session, TurnState
from parleyd.session.titles import title_from, title_update
from parleyd.session.usage import UsageLedger
from parleyd.session.wire import Outgoing
from parleyd.store.fork import detach_forks, fork_lock, write_fork
from parleyd.store.index import ArchiveFilter, SessionIndex
from parleyd.store.log import (
    LOG_NAME,
    LogContents,
    SessionLocked,
    SessionLog,
    StoreError,
    read_log,
)
from parleyd.store.records import (
    ArchiveSet,
    ConversationStarted,
    ForkedFrom,
    ModeSet,
    Record,
    SessionStarted,
    TitleSet,
)
from parleyd.tools.permission import PermissionMode, PermissionPolicy, mode_named
from parleyd.tools.registry import builtin_registry

log = logging.getLogger(__name__)

_PAGE_SIZE = 50


class SessionManager:
    def __init__(
        self,
        home: Path,
        settings: Settings,
        providers: ProviderHub,
        new_turn: TurnFactory,
    ) -> None:
        self.home = home
        self.settings = settings
        self.providers = providers
        self.new_turn = new_turn
        self.index = SessionIndex(home)
        self.sessions: dict[str, Session] = {}
        # Sessions being closed: out of `sessions`, their logs still locked.
        self._closing: dict[str, asyncio.Future[None]] = {}

    def _folder(self, session_id: str) -> Path:
        return self.index.sessions_dir / session_id

    def _stored_folder(self, session_id: str) -> Path:
        """The folder of a stored session; UnknownSession if there is none."""
        folder = self._folder(session_id)
        if not _is_session_id(session_id) or not (folder / LOG_NAME).exists():
            raise UnknownSession(session_id, f"no session {session_id!r} in {self.home}")
        return folder

    def _open_log(self, folder: Path) -> tuple[SessionLog, LogContents]:
        try:
            return SessionLog.open(folder)
        except SessionLocked as exc:
            raise SessionBusy(str(exc)) from None

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[tuple[SessionLog, LogContents]]:
        """The log of a session open nowhere, locked for the block."""
        log_file, contents = self._open_log(folder)
        try:
            yield log_file, contents
        finally:
            log_file.close()

    async def _close_if_idle(self, session_id: str, action: str) -> None:
        """Close the session if it is open here; SessionBusy if its turn is running."""
        session = self.sessions.get(session_id)
        if session is None:
            return
        if session.running:
            raise SessionBusy(
                f"session {session_id} is running a prompt: cancel it or wait for its answer"
                f" before {action}"
            )
        await self._close(session)

    async def _close(self, session: Session) -> None:
        """Forget the session and close it; whoever opens it meanwhile waits (`_closed`)."""
        self.sessions.pop(session.id, None)
        closing = self._closing[session.id] = asyncio.ensure_future(session.close())
        try:
            await asyncio.shield(closing)
        finally:
            if closing.done():
                self._closing.pop(session.id, None)

    async def _closed(self, session_id: str) -> None:
        """Until a close of the session in progress here has released its log."""
        if (closing := self._closing.get(session_id)) is not None:
            await asyncio.gather(asyncio.shield(closing), return_exceptions=True)

    def _record(self, session_id: str, record: Record) -> None:
        """Write a record about the whole session, not a turn, and sync it: the
        answer says it is stored. Through the session if it is open here."""
        session = self.sessions.get(session_id)
        if session is not None:
            session.record(record, session.root, None)
            session.log.sync()
            return
        # Closing the log syncs it.
        with self._locked(self._stored_folder(session_id)) as (log_file, contents):
            started = next((r for r in contents.records if isinstance(r, SessionStarted)), None)
            if started is None:
                raise UnknownSession(session_id, f"{session_id}: its log has no session record")
            log_file.append(record, started.conv)

    async def _build(
        self,
        *,
        channel: ClientChannel,
        session_id: str,
        cwd: Path,
        additional: tuple[Path, ...],
        settings: Settings,
        log_file: SessionLog,
        root: Conversation,
        ledger: UsageLedger | None = None,
        title: str | None = None,
        permissions: PermissionPolicy | None = None,
        servers: Sequence[McpServerConfig] = (),
    ) -> Session:
        try:
            provider = self.providers.provider_for(settings)
            mcp = session_servers(settings.mcp_servers, servers)
        except ConfigError:
            log_file.close()
            raise
        except ServerListError as exc:
            log_file.close()
            raise InvalidValue(str(exc)) from None
        session = Session(
            session_id=session_id,
            cwd=cwd,
            additional_roots=additional,
            settings=settings,
            log_file=log_file,
            index=self.index,
            root=root,
            channel=channel,
            provider=provider,
            tools=builtin_registry(),
            permissions=permissions or PermissionPolicy(defaults=settings.tool_permissions),
            new_turn=self.new_turn,
            ledger=ledger,
            title=title,
            mcp_servers=mcp,
        )
        self.sessions[session_id] = session
        return session

    async def create(
        self,
        channel: ClientChannel,
        cwd: Path,
        overrides: dict[str, Any] | None,
        additional: tuple[Path, ...] = (),
        *,
        servers: Sequence[McpServerConfig] = (),
    ) -> Session:
        """A new session in `cwd` (and the `additional` roots, and the MCP
        `servers` beside the configured ones, which, as `cwd`, each request
        that opens a session names anew: they are not stored)."""
        settings = with_session_overrides(self.settings, overrides)
        settings.require_credentials()
        session_id = new_id("sess")
        log_file, _ = SessionLog.open(self._folder(session_id))
        root = Conversation(id=new_id("conv"))
        started = SessionStarted(session_id=session_id, cwd=str(cwd), settings=settings.public())
        conversation = ConversationStarted()
        with _closed_on_failure(log_file):
            log_file.append(started, root.id)
            log_file.append(conversation, root.id)
        self.index.add_session(started)
        self.index.add_conversation(session_id, conversation)
        return await self._build(
            channel=channel,
            session_id=session_id,
            cwd=cwd,
            additional=additional,
            settings=settings,
            log_file=log_file,
            root=root,
            servers=servers,
        )

    async def load(
        self,
        channel: ClientChannel,
        session_id: str,
        cwd: Path,
        additional: tuple[Path, ...] = (),
        *,
        servers: Sequence[McpServerConfig] = (),
    ) -> tuple[Session, list[tuple[Outgoing, Conversation]]]:
        """Open a stored session and return it with the updates that replay it."""
        folder = self._stored_folder(session_id)
        await self._close_if_idle(session_id, "loading it again")
        await self._closed(session_id)
        log_file, contents = self._open_log(folder)
        # A turn the daemon died in is closed now, in the log and in the replay.
        closing = closing_records(contents.records)
        with _closed_on_failure(log_file):
            for record in closing:
                log_file.append(record, record.conv)
        try:
            restored = restore([*contents.records, *closing])
        except NotASession as exc:
            log_file.close()
            raise UnknownSession(session_id, f"{session_id}: {exc}") from None
        if contents.malformed_lines or contents.torn_bytes:
            log.warning(
                "session %s: skipped %d malformed line(s), cut a torn tail of %d byte(s)",
                session_id,
                contents.malformed_lines,
                contents.torn_bytes,
            )
        stored = restored.started.settings
        settings = with_session_overrides(
            self.settings, {k: v for k, v in stored.items() if v is not None}
        )
        permissions = PermissionPolicy(
            _stored_mode(session_id, restored.mode),
            settings.tool_permissions,
            restored.permissions,
        )
        session = await self._build(
            channel=channel,
            session_id=session_id,
            cwd=cwd,
            additional=additional,
            settings=settings,
            log_file=log_file,
            root=restored.root,
            ledger=restored.ledger,
            title=restored.title,
            permissions=permissions,
            servers=servers,
        )
        session.conversations.update(restored.conversations)
        session.queue = restored.queue
        if restored.paused is not None:
            session.paused_on_load(restored.open_turns)
        return session, restored.updates

    async def close(self, session_id: str) -> None:
        """Stop the session's turn (its prompt answers `cancelled`), release its
        log and forget it here. A stored session not open here is closed already."""
        session = self.sessions.get(session_id)
        if session is None:
            self._stored_folder(session_id)
            return
        await self._close(session)

    def is_open(self, session_id: str) -> bool:
        """Whether the session is open here; UnknownSession if it is not stored either."""
        if session_id in self.sessions:
            return True
        self._stored_folder(session_id)
        return False

    async def set_title(self, session_id: str, text: str) -> str:
        """Retitle a stored session; returns the title as stored. A client that
        has the session open here hears of it as a `session_info_update`."""
        title = title_from(text)
        if title is None:
            raise InvalidValue("a title needs a character that is not whitespace")
        self._record(session_id, TitleSet(title=title))
        self.index.set_title(session_id, title)
        session = self.sessions.get(session_id)
        if session is not None:
            # Set by the user: no prompt replaces it with one of its own.
            session.title = title
            await session.send(title_update(title, session.root), session.root)
        return title

    async def set_mode(self, session_id: str, mode_id: str) -> None:
        """Switch an open session's permission mode: stored, then told to the
        client as a `current_mode_update`. A running turn decides its next tool
        call by it; a question already asked waits for its answer."""
        session = self.get(session_id)
        try:
            mode = mode_named(mode_id)
        except ValueError as exc:
            raise InvalidValue(str(exc)) from None
        if mode is session.permissions.mode:
            return
        self._record(session_id, ModeSet(mode=mode.value))
        session.permissions.mode = mode
        await session.send(mode_update(mode.value, session.root), session.root)

    async def set_archived(self, session_id: str, archived: bool) -> None:
        """Archive or unarchive a stored session. One open here is closed before
        it is archived, as ACP asks."""
        if archived:
            await self.close(session_id)
        self._record(session_id, ArchiveSet(archived=archived))
        self.index.set_archived(session_id, archived)

    async def delete(self, session_id: str) -> None:
        """Remove a stored session: its folder, then its index row (a row left by
        a crash in between is dropped at the next start). One open here is
        closed first, unless its turn is running. Forks that read their history
        from it get a copy of that history first. An unknown id is deleted
        already, as ACP has it."""
        if not _is_session_id(session_id):
            return
        await self._close_if_idle(session_id, "deleting it")
        await self._closed(session_id)
        folder = self._folder(session_id)
        if folder.exists():
            with self._locked(folder), fork_lock(self.index.sessions_dir):
                detach_forks(self.index.sessions_dir, session_id)
                try:
                    shutil.rmtree(folder)
                except OSError as exc:
                    raise StoreError(f"could not delete session {session_id}: {exc}") from exc
        self.index.remove(session_id)

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            hint = (
                " (it is stored: send session/load first)"
                if _is_session_id(session_id) and self._folder(session_id).exists()
                else ""
            )
            raise UnknownSession(session_id, f"unknown session {session_id!r}{hint}")
        return session

    def list(
        self, cwd: str | None, cursor: str | None, archived: str | None
    ) -> tuple[list[SessionInfo], str | None]:
        after = _decode_cursor(cursor) if cursor else None
        rows = self.index.list(cwd, after, _PAGE_SIZE + 1, _archive_filter(archived))
        page, more = rows[:_PAGE_SIZE], len(rows) > _PAGE_SIZE
        infos = [
            SessionInfo(
                session_id=row.session_id,
                cwd=row.cwd,
                title=row.title,
                updated_at=_iso(row.updated_at),
                archived=row.archived,
                meta={PARLEY_META_KEY: {"status": self._activity(row.session_id)}},
            )
            for row in page
        ]
        next_cursor = _encode_cursor(page[-1].updated_at, page[-1].session_id) if more else None
        return infos, next_cursor

    def _activity(self, session_id: str) -> str:
        """What a listed session is doing: `running` a prompt, `paused` in one,
        or `idle` in this daemon, else `saved` (stored; another daemon may have
        it open)."""
        session = self.sessions.get(session_id)
        if session is None:
            return "saved"
        if session.state is TurnState.PAUSED:
            return "paused"
        return "running" if session.running else "idle"

    async def close_all(self) -> None:
        """Close every open session (a paused one stays paused in its log), and the store."""
        for session in list(self.sessions.values()):
            await self._close(session)
        await asyncio.gather(*map(self._closed, list(self._closing)))
        self.index.close()
        await self.providers.aclose()

    async def fork(
        self,
        channel: ClientChannel,
        session_id: str,
        cwd: Path | None,
        message_id: str | None = None,
        *,
        additional: tuple[Path, ...] = (),
        servers: Sequence[McpServerConfig] = (),
    ) -> Session:
        """Open a new session whose history is `session_id`'s up to `message_id`
        (the latest point without one; see `session/fork.py`), in `cwd` (the
        parent's without one). The parent's log is only read: it may be open
        here or in another daemon, and it goes on unchanged."""
        folder = self._stored_folder(session_id)
        with fork_lock(self.index.sessions_dir):
            try:
                point = fork_point(read_log(folder).records, message_id)
            except NotASession as exc:
                raise UnknownSession(session_id, f"{session_id}: {exc}") from None
            started = SessionStarted(
                session_id=new_id("sess"),
                cwd=str(cwd or point.parent.cwd),
                settings=point.parent.settings,
                conv=point.parent.conv,
            )
            mark = ForkedFrom(session_id=session_id, up_to_seq=point.up_to_seq)
            write_fork(self._folder(started.session_id), started, mark, point.opening)
        self.index.add_session(started)
        if point.prompted:
            self.index.touch(started.session_id, started.ts, point.title)
        session, _ = await self.load(
            channel, started.session_id, cwd or Path(started.cwd), additional, servers=servers
        )
        return session


@contextlib.contextmanager
def _closed_on_failure(log_file: SessionLog) -> Iterator[None]:
    """A log this daemon could not write to is released, not left locked by it."""
    try:
        yield
    except StoreError:
        log_file.close()
        raise


def _stored_mode(session_id: str, mode_id: str | None) -> PermissionMode:
    """The mode a session was left in: `ask` if none was set, or if a newer
    Parley set one this daemon does not know (`ask` changes nothing unasked)."""
    if mode_id is None:
        return PermissionMode.ASK
    try:
        return mode_named(mode_id)
    except ValueError:
        log.warning("session %s: unknown mode %r in its log, loaded as ask", session_id, mode_id)
        return PermissionMode.ASK


def _is_session_id(value: str) -> bool:
    # Session ids name folders: nothing that could walk out of the sessions folder.
    return value.startswith("sess_") and value[5:].isalnum()


def _iso(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _archive_filter(value: str | None) -> ArchiveFilter:
    match value:
        case None:
            return "exclude"
        case "exclude" | "include" | "only":
            return value
    raise InvalidValue(f"unknown archive filter {value!r}: want exclude, include or only")


def _encode_cursor(updated_at: float, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{updated_at!r}|{session_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        updated_at, session_id = base64.urlsafe_b64decode(cursor).decode().split("|", 1)
        return float(updated_at), session_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor(f"invalid cursor {cursor!r}") from None
