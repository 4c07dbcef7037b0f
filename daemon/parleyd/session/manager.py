"""Creating, loading, listing and closing sessions."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

from parley_protocol.acp import SessionInfo, SessionUpdate
from parleyd.config import ConfigError, Settings, with_session_overrides
from parleyd.providers.hub import ProviderHub
from parleyd.session.conversation import Conversation, new_id
from parleyd.session.errors import InvalidCursor, SessionBusy, UnknownSession
from parleyd.session.port import TurnFactory
from parleyd.session.replay import NotASession, closing_records, restore
from parleyd.session.session import ClientChannel, Session
from parleyd.session.usage import UsageLedger
from parleyd.store.index import SessionIndex
from parleyd.store.log import SessionLocked, SessionLog
from parleyd.store.records import ConversationStarted, SessionStarted
from parleyd.tools.permission import PermissionPolicy
from parleyd.tools.registry import builtin_registry

log = logging.getLogger(__name__)

_PAGE_SIZE = 50


class SessionManager:
    def __init__(
        self,
        home: Path,
        settings: Settings,
        channel: ClientChannel,
        providers: ProviderHub,
        new_turn: TurnFactory,
    ) -> None:
        self.home = home
        self.settings = settings
        self.channel = channel
        self.providers = providers
        self.new_turn = new_turn
        self.index = SessionIndex(home)
        self.sessions: dict[str, Session] = {}

    def _folder(self, session_id: str) -> Path:
        return self.index.sessions_dir / session_id

    async def _build(
        self,
        *,
        session_id: str,
        cwd: Path,
        settings: Settings,
        log_file: SessionLog,
        root: Conversation,
        ledger: UsageLedger | None = None,
        title: str | None = None,
        permissions: PermissionPolicy | None = None,
    ) -> Session:
        try:
            provider = await self.providers.provider_for(settings)
        except ConfigError:
            log_file.close()
            raise
        session = Session(
            session_id=session_id,
            cwd=cwd,
            settings=settings,
            log_file=log_file,
            index=self.index,
            root=root,
            channel=self.channel,
            provider=provider,
            tools=builtin_registry(),
            permissions=permissions or PermissionPolicy(),
            new_turn=self.new_turn,
            ledger=ledger,
            title=title,
        )
        self.sessions[session_id] = session
        return session

    async def create(self, cwd: Path, overrides: dict[str, Any] | None) -> Session:
        settings = with_session_overrides(self.settings, overrides)
        settings.require_credentials()
        session_id = new_id("sess")
        log_file, _ = SessionLog.open(self._folder(session_id))
        root = Conversation(id=new_id("conv"))
        started = SessionStarted(session_id=session_id, cwd=str(cwd), settings=settings.public())
        log_file.append(started, root.id)
        conversation = ConversationStarted()
        log_file.append(conversation, root.id)
        self.index.add_session(started)
        self.index.add_conversation(session_id, conversation)
        return await self._build(
            session_id=session_id, cwd=cwd, settings=settings, log_file=log_file, root=root
        )

    async def load(self, session_id: str, cwd: Path) -> tuple[Session, list[SessionUpdate]]:
        """Open a stored session and return it with the updates that replay it."""
        existing = self.sessions.pop(session_id, None)
        if existing is not None:
            if existing.running:
                self.sessions[session_id] = existing
                raise SessionBusy(f"session {session_id} is running a prompt right now")
            await existing.close()
        folder = self._folder(session_id)
        if not _is_session_id(session_id) or not (folder / "log.jsonl").exists():
            raise UnknownSession(f"no session {session_id!r} in {self.home}")
        try:
            log_file, contents = SessionLog.open(folder)
        except SessionLocked as exc:
            raise SessionBusy(str(exc)) from None
        # A turn the daemon died in is closed now, in the log and in the replay.
        closing = closing_records(contents.records)
        for record in closing:
            log_file.append(record, record.conv)
        try:
            restored = restore([*contents.records, *closing])
        except NotASession as exc:
            log_file.close()
            raise UnknownSession(f"{session_id}: {exc}") from None
        if contents.malformed_lines or contents.torn_bytes:
            log.warning(
                "session %s: skipped %d malformed line(s), cut a torn tail of %d byte(s)",
                session_id,
                contents.malformed_lines,
                contents.torn_bytes,
            )
        permissions = PermissionPolicy()
        for tool_name, allowed in restored.permissions.items():
            permissions.remember(tool_name, allowed=allowed)
        stored = restored.started.settings
        settings = with_session_overrides(
            self.settings, {k: v for k, v in stored.items() if v is not None}
        )
        session = await self._build(
            session_id=session_id,
            cwd=cwd,
            settings=settings,
            log_file=log_file,
            root=restored.root,
            ledger=restored.ledger,
            title=restored.title,
            permissions=permissions,
        )
        session.conversations.update(restored.conversations)
        return session, restored.updates

    def get(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            hint = (
                " (it is stored: send session/load first)"
                if _is_session_id(session_id) and self._folder(session_id).exists()
                else ""
            )
            raise UnknownSession(f"unknown session {session_id!r}{hint}")
        return session

    def list(self, cwd: str | None, cursor: str | None) -> tuple[list[SessionInfo], str | None]:
        after = _decode_cursor(cursor) if cursor else None
        rows = self.index.list(cwd, after, _PAGE_SIZE + 1)
        page, more = rows[:_PAGE_SIZE], len(rows) > _PAGE_SIZE
        infos = [
            SessionInfo(
                session_id=row.session_id,
                cwd=row.cwd,
                title=row.title,
                updated_at=_iso(row.updated_at),
            )
            for row in page
        ]
        next_cursor = _encode_cursor(page[-1].updated_at, page[-1].session_id) if more else None
        return infos, next_cursor

    async def close_all(self) -> None:
        for session in list(self.sessions.values()):
            await session.close()
        self.sessions.clear()
        self.index.close()
        await self.providers.aclose()


def _is_session_id(value: str) -> bool:
    # Session ids name folders: nothing that could walk out of the sessions folder.
    return value.startswith("sess_") and value[5:].isalnum()


def _iso(timestamp: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _encode_cursor(updated_at: float, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{updated_at!r}|{session_id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        updated_at, session_id = base64.urlsafe_b64decode(cursor).decode().split("|", 1)
        return float(updated_at), session_id
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursor(f"invalid cursor {cursor!r}") from None
