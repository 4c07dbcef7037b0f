"""Session titles: what one may be, and the update that tells the client of a
new one. A title comes from the first prompt or from `session/set_title`;
either way it is one line, short enough for a session picker."""

from __future__ import annotations

from parley_protocol.acp import SessionInfoUpdate
from parleyd.session.conversation import Conversation

_MAX_LENGTH = 80


def title_from(text: str) -> str | None:
    """`text` as a title: its first line that is not blank, trimmed and cut to
    80 characters; None if every line is blank."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), None)
    if line is None or len(line) <= _MAX_LENGTH:
        return line
    return line[: _MAX_LENGTH - 1] + "…"


def title_update(title: str, root: Conversation) -> SessionInfoUpdate:
    """The `session_info_update` announcing `title`. It describes the session,
    so it carries the root conversation, as every update carries one."""
    return SessionInfoUpdate(title=title, meta=root.meta)
