"""The channel of a session no editor has: its editor went away while its
turn ran on. Its updates go only to its journal (`journal.py`), for the next
editor to attach to (`attachment.py`); a permission question waits for that
editor (`Session.request_permission`); the editor's files and terminals are
not there to use."""

from __future__ import annotations

from collections.abc import Sequence

from parley_protocol.acp import (
    ClientCapabilities,
    RequestPermissionRequest,
    SessionNotification,
)
from parleyd.session.editor import SessionScoped
from parleyd.session.errors import ClientRequestFailed, EditorGone


class Unattended:
    label = "no editor"

    @property
    def capabilities(self) -> ClientCapabilities | None:
        return None

    async def send_updates_in_lane(
        self, notifications: Sequence[SessionNotification], lane: str
    ) -> None:
        return  # kept in the session's journal, for the next editor

    async def request_permission(self, request: RequestPermissionRequest) -> str | None:
        raise EditorGone

    async def client_request(self, method: str, params: SessionScoped) -> bytes:
        raise ClientRequestFailed("no editor is attached to the session: it went away")


UNATTENDED = Unattended()
