"""A session's queue: the errors that name why a message cannot be changed,
and the queue a load rebuilds from the log (`restore()` over hand-built logs)."""

from __future__ import annotations

import pytest

from parley_protocol.acp import UserMessageChunk
from parleyd.session.errors import UnknownMessage, WrongTurnState
from parleyd.session.queue import MessageQueue, WaitingMessage
from parleyd.session.replay import restore
from parleyd.store.records import (
    ConversationStarted,
    CurrentRecord,
    ForkedFrom,
    MessageQueued,
    QueuedReplaced,
    QueuedWithdrawn,
    SessionStarted,
    TurnEnded,
    TurnStarted,
    UserTurn,
)

ROOT = "conv_root"


def _message(message_id: str, words: str) -> WaitingMessage:
    return WaitingMessage(message_id, words, [{"type": "text", "text": words}])


def _queued(message_id: str, words: str) -> MessageQueued:
    return MessageQueued(
        text=words, content=[{"type": "text", "text": words}], message_id=message_id, conv=ROOT
    )


def _texts(queue: MessageQueue) -> list[tuple[str, str]]:
    return [(m.message_id, m.text) for m in queue.waiting]


def test_a_message_that_left_the_queue_is_named_with_how_it_left() -> None:
    queue = MessageQueue("sess_1")
    for message_id, words in (("msg_a", "one"), ("msg_b", "two"), ("msg_c", "three")):
        queue.add(_message(message_id, words))
    taken = queue.take()
    assert taken is not None and taken.message_id == "msg_a"
    queue.withdraw("msg_c")
    queue.replace("msg_b", "two, again", [])
    assert _texts(queue) == [("msg_b", "two, again")]
    with pytest.raises(WrongTurnState, match=r"'msg_a' of session sess_1 has been taken"):
        queue.withdraw("msg_a")
    with pytest.raises(WrongTurnState, match=r"'msg_c' of session sess_1 has been withdrawn"):
        queue.replace("msg_c", "no", [])
    with pytest.raises(UnknownMessage, match=r"session sess_1 has no queued message 'msg_x'"):
        queue.find("msg_x")


def test_a_message_taken_for_a_turn_cancelled_before_it_began_waits_first_again() -> None:
    queue = MessageQueue("sess_1")
    queue.add(_message("msg_a", "one"))
    queue.add(_message("msg_b", "two"))
    taken = queue.take()
    assert taken is not None
    queue.put_back(taken)
    assert _texts(queue) == [("msg_a", "one"), ("msg_b", "two")]
    queue.withdraw("msg_a")  # waiting again, so no longer "taken"


def _log(*records: CurrentRecord) -> list[CurrentRecord]:
    return [
        SessionStarted(session_id="sess_1", cwd="/w", settings={}, conv=ROOT),
        ConversationStarted(conv=ROOT),
        *records,
    ]


def _turn(message_id: str, words: str) -> list[CurrentRecord]:
    content = [{"type": "text", "text": words}]
    return [
        TurnStarted(conv=ROOT, turn="turn_1"),
        UserTurn(text=words, content=content, message_id=message_id, conv=ROOT, turn="turn_1"),
        TurnEnded(stop_reason="end_turn", conv=ROOT, turn="turn_1"),
    ]


def test_a_load_keeps_what_still_waits_and_shows_only_what_a_turn_took() -> None:
    restored = restore(
        _log(
            _queued("msg_a", "list the files"),
            _queued("msg_b", "search for TODO"),
            _queued("msg_c", "read it"),
            QueuedWithdrawn(message_id="msg_a", conv=ROOT),
            QueuedReplaced(
                text="Read README.md",
                content=[{"type": "text", "text": "Read README.md"}],
                message_id="msg_b",
                conv=ROOT,
            ),
            *_turn("msg_b", "Read README.md"),
            # A log damaged in between changes nothing it does not fit.
            QueuedWithdrawn(message_id="msg_gone", conv=ROOT),
        )
    )
    assert _texts(restored.queue) == [("msg_c", "read it")]
    with pytest.raises(WrongTurnState, match="taken"):
        restored.queue.find("msg_b")
    with pytest.raises(WrongTurnState, match="withdrawn"):
        restored.queue.find("msg_a")
    shown = [u for u, _ in restored.updates if isinstance(u, UserMessageChunk)]
    assert [(u.message_id, u.content.text) for u in shown] == [("msg_b", "Read README.md")]


def test_a_fork_takes_its_parents_history_but_not_its_queue() -> None:
    restored = restore(
        _log(_queued("msg_a", "list the files"), ForkedFrom(session_id="sess_0", up_to_seq=3))
    )
    assert restored.queue.waiting == []
