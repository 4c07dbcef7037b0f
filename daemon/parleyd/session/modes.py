"""Permission modes as ACP session modes: the `modes` a session's setup answers
carry (every mode, and the current one) and the `current_mode_update` that
tells the client of a change, live and in a replay."""

from __future__ import annotations

from parley_protocol.acp import CurrentModeUpdate, SessionMode, SessionModeState
from parleyd.session.conversation import Conversation
from parleyd.tools.permission import MODE_DESCRIPTIONS, PermissionMode

AVAILABLE_MODES = [
    SessionMode(id=mode.value, name=name, description=description)
    for mode, (name, description) in MODE_DESCRIPTIONS.items()
]


def mode_state(current: PermissionMode) -> SessionModeState:
    return SessionModeState(current_mode_id=current.value, available_modes=AVAILABLE_MODES)


def mode_update(mode_id: str, root: Conversation) -> CurrentModeUpdate:
    """It describes the session, so it carries the root conversation, as every
    update carries one."""
    return CurrentModeUpdate(current_mode_id=mode_id, meta=root.meta)
