"""The numbered updates of a session's latest turn, for a client that attaches
mid-stream.

Every update a session sends is numbered (`_meta.parley.sequence`) and kept
here from the start of the running root turn on (between turns, since the
last one ended). A client that re-attaches
(`_parley/session/attach`) gets the log's history up to that turn, then these
updates as they were streamed, then the live stream: nothing twice, nothing
missing, since the turn's records are not replayed from the log but streamed
again from here. A client that saw some of the turn asks for what came after
its last number.

Numbers grow through the session's whole life, across reopenings and daemon
restarts: a session opened at time T numbers from T in microseconds, which no
earlier opening can have reached (it would have had to send more than one
update per microsecond). So a number from an earlier opening is always older
than what the journal holds, and answered with the whole replay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from parley_protocol.acp import SessionNotification
from parley_protocol.parley import PARLEY_META_KEY
from parleyd.session.conversation import Conversation
from parleyd.session.wire import Outgoing, SessionWire


@dataclass(frozen=True, slots=True)
class Entry:
    sequence: int
    update: Outgoing
    conversation: Conversation


class UpdateJournal:
    def __init__(self, log_mark: int) -> None:
        self._next = time.time_ns() // 1000
        self._entries: list[Entry] = []
        # The log's seq at which the journal's turn began: the history a
        # replay takes from the log is every record before it.
        self.log_mark = log_mark

    def forget_logged(self, log_mark: int) -> None:
        """What was sent so far is in the log, before `log_mark`: a root turn
        begins or has ended. An attach from a number before now replays the
        log, and a finished turn's updates are not kept in memory."""
        self._entries.clear()
        self.log_mark = log_mark

    def add(self, update: Outgoing, conversation: Conversation) -> Entry:
        entry = Entry(self._next, update, conversation)
        self._next += 1
        self._entries.append(entry)
        return entry

    @property
    def last(self) -> int | None:
        """The number of the newest update sent, None before the first."""
        return self._entries[-1].sequence if self._entries else None

    def after(self, sequence: int) -> list[Entry] | None:
        """The entries numbered after `sequence`; None if the journal no longer
        holds all of them (the number is from before its turn)."""
        if not self._entries:
            return [] if sequence == self._next - 1 else None
        first = self._entries[0].sequence
        if sequence < first - 1 or sequence >= self._next:
            return None
        return self._entries[sequence - first + 1 :]

    def entries(self) -> list[Entry]:
        return list(self._entries)


def numbered(wire: SessionWire, entries: list[Entry]) -> list[SessionNotification]:
    """The notifications that say `entries` to the client `wire` speaks to,
    each with its number at `_meta.parley.sequence`."""
    notifications = []
    for entry in entries:
        notification = wire.notification(entry.update, entry.conversation)
        if notification is not None:
            notification.meta = {PARLEY_META_KEY: {"sequence": entry.sequence}}
            notifications.append(notification)
    return notifications
