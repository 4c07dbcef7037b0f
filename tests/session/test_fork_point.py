"""Where a fork leaves its parent: at a turn boundary of the session's own
conversation, from the latest point or from a message; and what the fork's
own log opens with."""

from __future__ import annotations

import pytest

from parleyd.providers.messages import AssistantMessage, TextPart
from parleyd.session.errors import InvalidValue
from parleyd.session.fork import MARK, fork_point, marked_title
from parleyd.session.replay import NotASession
from parleyd.session.titles import title_from
from parleyd.store.records import (
    ArchiveSet,
    AssistantResponse,
    ConversationStarted,
    CurrentRecord,
    SessionStarted,
    TitleSet,
    TurnEnded,
    TurnStarted,
    UserTurn,
)

ROOT = "conv_root"
CHILD = "conv_child"


def turn(turn_id: str, conv: str = ROOT, *, ended: bool = True) -> list[CurrentRecord]:
    """One turn: its start, a prompt (`msg_<turn>`), an answer (`msg_re_<turn>`)
    and, if `ended`, its end."""
    records: list[CurrentRecord] = [
        TurnStarted(),
        UserTurn(text=turn_id, content=[], message_id=f"msg_{turn_id}"),
        AssistantResponse(
            message=AssistantMessage(parts=(TextPart("ok"),)),
            message_id=f"msg_re_{turn_id}",
            model="m",
        ),
    ]
    if ended:
        records.append(TurnEnded(stop_reason="end_turn"))
    for record in records:
        record.conv, record.turn = conv, turn_id
    return records


def log(*parts: list[CurrentRecord] | CurrentRecord) -> list[CurrentRecord]:
    """A session's records, numbered from 1."""
    records: list[CurrentRecord] = [
        SessionStarted(session_id="sess_p", cwd="/work", settings={}, conv=ROOT),
        ConversationStarted(conv=ROOT),
    ]
    for part in parts:
        records += part if isinstance(part, list) else [part]
    for seq, record in enumerate(records, 1):
        record.seq = seq
        record.conv = record.conv or ROOT
    return records


def prompts_up_to(records: list[CurrentRecord], seq: int) -> list[str]:
    return [r.text for r in records if isinstance(r, UserTurn) and r.seq <= seq]


def test_the_latest_point_is_the_end_of_the_last_turn_that_ended() -> None:
    records = log(turn("t1"), turn("t2"), TitleSet(title="Named"))
    assert fork_point(records, None).up_to_seq == records[-1].seq

    # A running turn (or one the daemon died in) stays out, whatever it wrote.
    running = log(turn("t1"), turn("t2", ended=False))
    point = fork_point(running, None)
    assert prompts_up_to(running, point.up_to_seq) == ["t1"]
    assert isinstance(running[point.up_to_seq - 1], TurnEnded)


def test_a_fork_from_a_user_message_ends_before_its_turn() -> None:
    records = log(turn("t1"), turn("t2"), turn("t3"))
    point = fork_point(records, "msg_t2")
    assert prompts_up_to(records, point.up_to_seq) == ["t1"]
    assert isinstance(records[point.up_to_seq - 1], TurnEnded)
    # The first message: only the session's setup.
    assert fork_point(records, "msg_t1").up_to_seq == 2
    assert not fork_point(records, "msg_t1").prompted


def test_a_fork_from_an_agent_message_ends_after_its_turn() -> None:
    records = log(turn("t1"), turn("t2"), turn("t3"))
    point = fork_point(records, "msg_re_t2")
    assert prompts_up_to(records, point.up_to_seq) == ["t1", "t2"]
    assert point.up_to_seq == fork_point(records, "msg_t3").up_to_seq


def test_a_format_1_prompt_starts_its_turn() -> None:
    # Format 1 wrote no turn records.
    first = UserTurn(text="one", content=[], message_id="msg_1")
    second = UserTurn(text="two", content=[], message_id="msg_2")
    records = log(first, second)
    assert fork_point(records, "msg_2").up_to_seq == first.seq


@pytest.mark.parametrize(
    ("message_id", "error"),
    [
        ("msg_nothere", r"session sess_p has no message 'msg_nothere'"),
        ("msg_re_child", r"message 'msg_re_child' is a sub-agent's"),
        ("msg_re_t2", r"message 'msg_re_t2' is in a turn that has not ended"),
    ],
)
def test_messages_a_fork_cannot_leave_at(message_id: str, error: str) -> None:
    child = ConversationStarted(parent=ROOT, depth=1, conv=CHILD)
    records = log(child, turn("t1"), turn("child", CHILD), turn("t2", ended=False))
    with pytest.raises(InvalidValue, match=error):
        fork_point(records, message_id)


def test_a_log_without_a_session_record_cannot_be_forked() -> None:
    with pytest.raises(NotASession):
        fork_point(log(turn("t1"))[1:], None)


def test_the_fork_opens_with_the_parents_title_marked_and_unarchived() -> None:
    archived = log(turn("t1"), ArchiveSet(archived=True), turn("t2"), TitleSet(title="Later"))
    point = fork_point(archived, "msg_t2")
    # The title the parent has now; the archive state of the history taken.
    assert point.title == "Later (fork)"
    assert point.prompted
    assert [type(r) for r in point.opening] == [TitleSet, ArchiveSet]
    assert point.opening[1] == ArchiveSet(archived=False)

    untitled = fork_point(log(), None)
    assert (untitled.title, untitled.opening, untitled.prompted) == (None, [], False)


def test_a_long_title_keeps_its_mark() -> None:
    longest = title_from("x" * 200)
    assert longest is not None
    marked = marked_title(longest)
    assert marked.endswith(f"…{MARK}")
    assert len(marked) == len(longest)
    assert title_from(marked) == marked
    assert marked_title("Short") == "Short (fork)"
