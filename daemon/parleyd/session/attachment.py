"""Which editor a session talks to, and moving it to another mid-turn.

A session is attached to one connection at a time, or to none
(`unattended.py`) once its editor went away while its turn ran on.

`attach` moves a session to a connection: it stops sending to the old one,
sends the new one what it lacks (the log's history, the journal's updates, or
only those after the last number the client saw), and switches over with no
await between the last catch-up and the switch, so the live stream follows
the replay with nothing between them lost or sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from parley_protocol.acp import SessionInfoUpdate, SessionNotification
from parley_protocol.parley import AttachedElsewhere, ReplayAfter, ReplayFrom
from parleyd.session.journal import numbered
from parleyd.session.replay import restore
from parleyd.session.unattended import UNATTENDED
from parleyd.session.wire import SessionWire
from parleyd.store.log import read_log

if TYPE_CHECKING:
    from parleyd.session.session import ClientChannel, Session

Replayed = Literal["none", "start", "after"]


@dataclass(frozen=True)
class Attached:
    """What the client was sent before the live stream: see `SessionAttachResult`."""

    replayed: Replayed
    last_sequence: int | None


async def attach(session: Session, channel: ClientChannel, replay: ReplayFrom | None) -> Attached:
    previous, previous_wire = session.channel, session.wire
    session.rehome(UNATTENDED)
    if previous is not UNATTENDED and previous is not channel:
        # Its last word on the session: who has it now.
        told = SessionInfoUpdate(
            meta=session.root.meta_with(attachedElsewhere=AttachedElsewhere(editor=channel.label))
        )
        if (notification := previous_wire.notification(told, session.root)) is not None:
            await previous.send_updates_in_lane([notification], session.id)
    wire = SessionWire(session.id, session.conversations, channel.capabilities)
    journal = session.journal
    if replay is None:
        session.rehome(channel, wire)
        return Attached("none", journal.last)
    replayed: Replayed = "after"
    last: int | None = None
    if isinstance(replay, ReplayAfter):
        last, batch = replay.sequence, journal.after(replay.sequence)
    if not isinstance(replay, ReplayAfter) or batch is None:
        # From the start, or from a number the journal no longer holds.
        replayed, last, batch = "start", None, journal.entries()
        await channel.send_updates_in_lane(_history(session, wire), session.id)
    while batch:
        await channel.send_updates_in_lane(numbered(wire, batch), session.id)
        last = batch[-1].sequence
        batch = journal.after(last)  # what the turn sent meanwhile
    session.rehome(channel, wire)
    return Attached(replayed, last)


def _history(session: Session, wire: SessionWire) -> list[SessionNotification]:
    """The log's replay of everything before the journal's turn."""
    mark = session.journal.log_mark
    records = [r for r in read_log(session.log.folder).records if r.seq < mark]
    return [
        notification
        for update, conversation in restore(records).updates
        if (notification := wire.notification(update, conversation)) is not None
    ]
