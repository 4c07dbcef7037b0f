"""The journal's numbers: what an attach from a number gets, at each edge."""

from __future__ import annotations

from parley_protocol.acp import AgentMessageChunk, TextContent
from parleyd.session.conversation import Conversation
from parleyd.session.journal import UpdateJournal

ROOT = Conversation(id="conv_root")


def _said(journal: UpdateJournal, text: str) -> int:
    entry = journal.add(AgentMessageChunk(content=TextContent(text=text)), ROOT)
    return entry.sequence


def test_numbers_grow_and_an_attach_gets_what_came_after() -> None:
    journal = UpdateJournal(log_mark=1)
    first, second, third = (_said(journal, text) for text in "abc")
    assert first < second < third
    assert journal.last == third
    assert [e.sequence for e in journal.after(first) or []] == [second, third]
    assert journal.after(third) == []
    # The number just before the first one held: everything held.
    assert [e.sequence for e in journal.after(first - 1) or []] == [first, second, third]


def test_a_number_the_journal_no_longer_holds_asks_for_the_whole_replay() -> None:
    journal = UpdateJournal(log_mark=1)
    old = _said(journal, "a")
    journal.forget_logged(5)
    assert journal.log_mark == 5
    assert journal.last is None
    # Nothing was sent since `old`: nothing is missing.
    assert journal.after(old) == []
    newer = _said(journal, "b")
    assert journal.after(old) is not None  # old is the number just before newer
    _said(journal, "c")
    journal.forget_logged(9)
    assert journal.after(old) is None
    assert journal.after(newer) is None
    # A number from the future (another session's, a bogus one) is no cursor either.
    assert journal.after(10**17) is None


def test_a_reopened_session_numbers_after_every_earlier_opening() -> None:
    before = UpdateJournal(log_mark=1)
    last_before = max(_said(before, text) for text in "abcdef")
    after = UpdateJournal(log_mark=7)
    assert _said(after, "g") > last_before
