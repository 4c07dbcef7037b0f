"""Where a fork leaves its parent, and what its own log opens with.

A fork always leaves at a turn boundary of the session's own conversation, so
its history is whole for the next model call and its replay ends where a turn
ended:

- from the latest point: after the last turn that ended. A running turn stays
  out, as does one the daemon died in (its end is written when the parent is
  next loaded);
- from a user message: right before the turn that message started;
- from an agent message: right after the turn it is part of, once that turn
  has ended.

A sub-agent's messages are inside a turn of the session's own conversation:
a fork cannot leave there.
"""

from __future__ import annotations

from dataclasses import dataclass

from parleyd.session.errors import InvalidValue
from parleyd.session.replay import NotASession
from parleyd.session.titles import title_from
from parleyd.store.records import (
    ArchiveSet,
    AssistantResponse,
    CurrentRecord,
    Record,
    SessionStarted,
    TitleSet,
    TurnEnded,
    TurnStarted,
    UserTurn,
)

MARK = " (fork)"


@dataclass(frozen=True)
class ForkPoint:
    parent: SessionStarted
    up_to_seq: int
    """The seq of the parent's last record the fork takes."""
    title: str | None
    """The fork's: its parent's with the mark."""
    prompted: bool
    """Whether the history has a prompt: the fork is listed from the start."""
    opening: list[Record]
    """The fork's first records of its own: its title, and an unarchive if the
    history ends archived."""


def fork_point(records: list[CurrentRecord], message_id: str | None) -> ForkPoint:
    """Where a fork of the session whose log is `records` leaves it. InvalidValue
    for a message id the session's own conversation does not have, or one
    whose turn has not ended; NotASession for a log without a session record."""
    parent = next((r for r in records if isinstance(r, SessionStarted)), None)
    if parent is None:
        raise NotASession("the session log has no session record")
    if message_id is None:
        end = _latest(records, parent.conv)
    else:
        end = _at_message(records, parent, message_id)
    history = records[: end + 1]
    title = next((r.title for r in reversed(records) if isinstance(r, TitleSet)), None)
    archived = next((r.archived for r in reversed(history) if isinstance(r, ArchiveSet)), False)
    marked = None if title is None else marked_title(title)
    opening: list[Record] = [] if marked is None else [TitleSet(title=marked)]
    if archived:
        opening.append(ArchiveSet(archived=False))
    return ForkPoint(
        parent=parent,
        up_to_seq=records[end].seq,
        title=marked,
        prompted=any(isinstance(r, UserTurn) for r in history),
        opening=opening,
    )


def marked_title(title: str) -> str:
    """`title` with the mark, shortened as a title must be without losing the mark."""
    marked = f"{title}{MARK}"
    kept = title_from(marked) or marked  # a title is never blank
    if kept == marked:
        return marked
    # Cut to the length a title may have: the parent's title gives way.
    return f"{kept[: -len(MARK) - 1]}…{MARK}"


def _latest(records: list[CurrentRecord], root: str) -> int:
    """The index of the last record outside an unfinished turn of `root`."""
    end = 0
    running = False
    for index, record in enumerate(records):
        if record.conv == root and isinstance(record, TurnStarted):
            running = True
        elif record.conv == root and isinstance(record, TurnEnded):
            running = False
        if not running:
            end = index
    return end


def _at_message(records: list[CurrentRecord], parent: SessionStarted, message_id: str) -> int:
    """The index of the last record a fork from `message_id` takes."""
    root = parent.conv
    found = next(
        (
            (index, record)
            for index, record in enumerate(records)
            if isinstance(record, UserTurn | AssistantResponse) and record.message_id == message_id
        ),
        None,
    )
    if found is None:
        raise InvalidValue(f"session {parent.session_id} has no message {message_id!r}")
    index, message = found
    if message.conv != root:
        raise InvalidValue(
            f"message {message_id!r} is a sub-agent's: fork from a message of the session's"
            " own conversation"
        )
    if isinstance(message, UserTurn):
        start = _turn_record(records, root, message.turn, TurnStarted)
        # Format 1 logs have no turn records: there the prompt starts the turn.
        return (index if start is None else start) - 1
    end = _turn_record(records, root, message.turn, TurnEnded)
    if end is None:
        raise InvalidValue(
            f"message {message_id!r} is in a turn that has not ended: fork from the prompt"
            " that started it, or once it has ended"
        )
    return end


def _turn_record(
    records: list[CurrentRecord], root: str, turn: str | None, kind: type[TurnStarted | TurnEnded]
) -> int | None:
    """The index of `turn`'s `kind` record, None if it has none."""
    if turn is None:
        return None
    return next(
        (
            index
            for index, record in enumerate(records)
            if isinstance(record, kind) and record.conv == root and record.turn == turn
        ),
        None,
    )
