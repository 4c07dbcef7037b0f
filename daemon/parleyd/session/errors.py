"""How sessions and turns fail. Only the ACP layer maps these to JSON-RPC
codes; nothing below it knows the wire. Kept apart from the loop so handlers
can catch them without importing the loop (and everything it needs) at
start-up."""

from __future__ import annotations

from parleyd.providers.events import StreamError


class ClientRequestFailed(Exception):
    """The client answered a request of the agent's (a file read, a terminal)
    with an error; its message says why, in the client's words."""


class EditorGone(Exception):
    """The editor a request went to went away before it answered."""


class SessionError(Exception):
    """A request about a session that cannot be served as asked."""


class UnknownSession(SessionError):
    """No such session, in memory or on disk."""

    def __init__(self, session_id: str, message: str) -> None:
        super().__init__(message)
        self.session_id = session_id


class UnknownConversation(SessionError):
    """The session has no conversation of that id."""


class UnknownToolCall(SessionError):
    """No tool call of that id is running in the session."""


class UnknownMessage(SessionError):
    """The session's queue never had a message of that id."""


class SessionBusy(SessionError):
    """A turn is running, or another daemon holds the session."""


class WrongTurnState(SessionError):
    """The session's turn is not where the request needs it: no turn to pause
    or steer, none paused to resume."""


class InvalidCursor(SessionError):
    """A `session/list` cursor this daemon did not hand out."""


class InvalidValue(SessionError):
    """A well-formed value the session layer cannot take: a title that is all
    whitespace, an archive filter it does not know."""


class TurnFailed(Exception):
    """The turn ended with an error; its end and what it said are recorded."""


class ProviderFailed(TurnFailed):
    """The provider could not produce a response."""

    def __init__(self, provider: str, error: StreamError) -> None:
        super().__init__(f"{provider} provider error ({error.kind}): {error.message}")
        self.error = error


class TurnCrashed(TurnFailed):
    """A bug inside the turn (the traceback is in the log, not the message)."""


class StorageFailed(TurnFailed):
    """The session log could not be written (a full disk): the turn stopped
    with what had been recorded."""
