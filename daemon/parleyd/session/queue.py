"""A session's queue: the messages waiting to be its next prompts, in order.

A message joins at the end (`_parley/session/inject` mode `queue`, or a
`session/prompt` sent while a turn runs, when the configuration queues those)
and leaves from the front when a turn takes it, or from anywhere when it is
withdrawn; until then its words can be replaced, and it keeps its id and its
place. The session decides when the queue goes on; this module keeps its
order and says precisely why a message cannot be changed: never queued, or
already taken, or withdrawn.

The log holds the queue as records (`queue`, `queue_replace`,
`queue_withdraw`, and the `user` record of the turn that takes a message);
`follow` reads them back into the same state the live methods leave, so a
queue still waiting outlives the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal

from parley_protocol.acp import StopReason
from parleyd.session.errors import SessionError, UnknownMessage, WrongTurnState
from parleyd.store.records import (
    MessageQueued,
    QueuedReplaced,
    QueuedWithdrawn,
    QueueOrigin,
    Record,
    UserTurn,
)

_Gone = Literal["taken", "withdrawn"]


@dataclass(eq=False)
class WaitingMessage:
    """`text` for the model, `content` as the client sent it. A message queued
    by a `session/prompt` of this connection has the request's `answer` to
    give and the `request` (the task serving it) that writes it."""

    message_id: str
    text: str
    content: list[dict[str, Any]]
    origin: QueueOrigin = "inject"
    answer: asyncio.Future[StopReason] | None = field(default=None, repr=False)
    request: asyncio.Future[Any] | None = field(default=None, repr=False)

    @property
    def awaited(self) -> bool:
        """A `session/prompt` still waits for this message's turn to end."""
        return self.answer is not None and not self.answer.done()

    def answer_with(self, stop: StopReason) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(stop)

    def fail_with(self, failure: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(failure)

    def queued_record(self) -> MessageQueued:
        return MessageQueued(
            text=self.text, content=self.content, message_id=self.message_id, origin=self.origin
        )


class MessageQueue:
    def __init__(self, session_id: str) -> None:
        self._session_id = session_id
        self._waiting: list[WaitingMessage] = []
        # The ids of messages that left the queue, and how, to say so when
        # one is asked for again.
        self._gone: dict[str, _Gone] = {}

    @property
    def waiting(self) -> list[WaitingMessage]:
        """The messages waiting, the next to be taken first."""
        return list(self._waiting)

    def __bool__(self) -> bool:
        return bool(self._waiting)

    def add(self, message: WaitingMessage) -> None:
        self._waiting.append(message)

    def find(self, message_id: str) -> WaitingMessage:
        """The waiting message of that id; why there is none, if there is none."""
        for message in self._waiting:
            if message.message_id == message_id:
                return message
        where = f"session {self._session_id}"
        match self._gone.get(message_id):
            case "taken":
                raise WrongTurnState(
                    f"message {message_id!r} of {where} has been taken: it opened a turn"
                )
            case "withdrawn":
                raise WrongTurnState(f"message {message_id!r} of {where} has been withdrawn")
        raise UnknownMessage(f"{where} has no queued message {message_id!r}")

    def replace(self, message_id: str, text: str, content: list[dict[str, Any]]) -> None:
        message = self.find(message_id)
        message.text, message.content = text, content

    def withdraw(self, message_id: str) -> WaitingMessage:
        message = self.find(message_id)
        self._waiting.remove(message)
        self._gone[message_id] = "withdrawn"
        return message

    def take(self, message_id: str | None = None) -> WaitingMessage | None:
        """The next message (or the one named), out of the queue for its turn."""
        if message_id is None:
            if not self._waiting:
                return None
            message = self._waiting[0]
        else:
            message = self.find(message_id)
        self._waiting.remove(message)
        self._gone[message.message_id] = "taken"
        return message

    def put_back(self, message: WaitingMessage) -> None:
        """A message taken for a turn that was cancelled before it began waits
        again, first."""
        self._gone.pop(message.message_id, None)
        self._waiting.insert(0, message)

    def follow(self, record: Record) -> None:
        """The queue as the record, read from the log, leaves it; a record that
        does not fit (a log damaged in between) changes nothing."""
        with contextlib.suppress(SessionError):
            match record:
                case MessageQueued():
                    self.add(
                        WaitingMessage(
                            record.message_id, record.text, record.content, record.origin
                        )
                    )
                case QueuedReplaced():
                    self.replace(record.message_id, record.text, record.content)
                case QueuedWithdrawn():
                    self.withdraw(record.message_id)
                case UserTurn() if any(m.message_id == record.message_id for m in self._waiting):
                    self.take(record.message_id)

    def forget(self) -> None:
        """Empty, as a fork begins: it takes its parent's history, not what
        waited to be said next."""
        self._waiting.clear()
        self._gone.clear()
