"""Folding a session tree's interleaved updates, conversation by conversation."""

from __future__ import annotations

from parley_client.transcript import Entry, Message, Transcript, compare_replay
from parley_protocol.acp import AgentMessageChunk, SessionNotification, TextContent
from parley_protocol.parley import ConversationRef
from tests.client.stream import (
    GRANDCHILD,
    LISTER,
    READER,
    ROOT,
    SESSION_ID,
    announced,
    child,
    text,
    tool_call,
    tool_ended,
    usage,
)


def delegating_turn(reading_in: ConversationRef = READER) -> list[SessionNotification]:
    """Two sub-agents streaming at once, one with a sub-agent of its own, and the
    same tool call ids in each conversation, as the daemon numbers them.
    `reading_in`: who says the reader's words."""
    return [
        text(ROOT, "agent", "I'll ", "msg_r1"),
        tool_call(ROOT, "call_1", "subagent"),
        tool_call(ROOT, "call_2", "subagent"),
        announced(ROOT, READER, "Read README.md"),
        announced(ROOT, LISTER, "List the files"),
        text(reading_in, "agent", "Reading ", "msg_a1"),
        text(LISTER, "agent", "Listing ", "msg_b1"),
        text(reading_in, "agent", "it.", "msg_a1"),
        tool_call(LISTER, "call_1", "subagent"),
        announced(LISTER, GRANDCHILD, "ls"),
        tool_call(READER, "call_1", "Read README.md"),
        text(GRANDCHILD, "agent", "Here ", "msg_c1"),
        text(LISTER, "agent", "(delegated)", "msg_b2"),
        usage(READER, 100),
        text(GRANDCHILD, "agent", "they are.", "msg_c1"),
        usage(ROOT, 300),
        tool_ended(READER, "call_1", output="# Harbour"),
        tool_ended(LISTER, "call_1"),
        tool_ended(ROOT, "call_1"),
        tool_ended(ROOT, "call_2"),
        text(ROOT, "agent", "Done.", "msg_r2"),
    ]


def folded(notifications: list[SessionNotification]) -> Transcript:
    transcript = Transcript()
    for notification in notifications:
        transcript.apply(notification)
    return transcript


def agent_texts(entries: list[Entry]) -> list[str]:
    return [entry.text for entry in entries if isinstance(entry, Message)]


def test_interleaved_conversations_fold_apart() -> None:
    transcript = folded(delegating_turn())

    reader = transcript.children["call_1"]
    lister = transcript.children["call_2"]
    grandchild = lister.children["call_1"]
    assert [(c.id, c.depth, c.title) for c in transcript.walk()] == [
        (None, 0, None),
        ("conv_reader", 1, "Read README.md"),
        ("conv_lister", 1, "List the files"),
        ("conv_grandchild", 2, "ls"),
    ]
    # Each message is whole, however the others' chunks came between its own.
    assert agent_texts(transcript.entries) == ["I'll ", "Done."]
    assert agent_texts(reader.entries) == ["Reading it."]
    assert agent_texts(lister.entries) == ["Listing ", "(delegated)"]
    assert agent_texts(grandchild.entries) == ["Here they are."]


def test_tool_call_ids_are_per_conversation() -> None:
    transcript = folded(delegating_turn())
    reader = transcript.children["call_1"]
    lister = transcript.children["call_2"]

    assert [(c.tool_call_id, c.title, c.status) for c in transcript.tool_calls()] == [
        ("call_1", "subagent", "completed"),
        ("call_2", "subagent", "completed"),
    ]
    [read] = reader.tool_calls()
    assert (read.title, read.output) == ("Read README.md", "# Harbour")
    assert [c.title for c in lister.tool_calls()] == ["subagent"]
    assert not any(c.unfinished_tools() for c in transcript.walk())


def test_usage_stays_with_its_conversation() -> None:
    transcript = folded(delegating_turn())
    assert [u.used for u in transcript.usages] == [300]
    assert [u.used for u in transcript.children["call_1"].usages] == [100]
    assert transcript.counts["usage_update"] == 2
    assert sum(transcript.counts.values()) == len(delegating_turn())


def test_updates_without_a_conversation_are_the_roots() -> None:
    transcript = Transcript()
    for meta in (None, {"parley": {"conversation": "not an object"}}):
        chunk = AgentMessageChunk(content=TextContent(text="hi "), message_id="m", meta=meta)
        transcript.apply(SessionNotification(session_id=SESSION_ID, update=chunk))
    assert agent_texts(transcript.entries) == ["hi hi "]
    assert not transcript.children


def test_a_sub_agent_heard_of_before_its_parent_goes_under_the_root() -> None:
    orphan = child("conv_orphan", READER, "call_9")
    transcript = folded([text(orphan, "agent", "lost", "msg_o")])
    assert transcript.children["call_9"].depth == 2
    assert agent_texts(transcript.children["call_9"].entries) == ["lost"]


def test_compare_replay_compares_each_conversation() -> None:
    live = folded(delegating_turn())
    # A replay sends each conversation's messages whole and in its own order.
    same = folded(
        [
            text(ROOT, "agent", "I'll ", "msg_r1"),
            tool_call(ROOT, "call_1", "subagent"),
            tool_call(ROOT, "call_2", "subagent"),
            announced(ROOT, LISTER, "List the files"),
            text(LISTER, "agent", "Listing ", "msg_b1"),
            tool_call(LISTER, "call_1", "subagent"),
            text(GRANDCHILD, "agent", "Here they are.", "msg_c1"),
            tool_ended(LISTER, "call_1"),
            text(LISTER, "agent", "(delegated)", "msg_b2"),
            announced(ROOT, READER, "Read README.md"),
            text(READER, "agent", "Reading it.", "msg_a1"),
            tool_call(READER, "call_1", "Read README.md"),
            tool_ended(READER, "call_1", output="# Harbour"),
            usage(READER, 100),
            tool_ended(ROOT, "call_1"),
            tool_ended(ROOT, "call_2"),
            usage(ROOT, 300),
            text(ROOT, "agent", "Done.", "msg_r2"),
        ]
    )
    rows = {row.kind: row for row in compare_replay(live, same)}
    assert all(row.same for row in rows.values()), rows

    # The same words said by another conversation are not the same replay.
    moved = folded(delegating_turn(reading_in=LISTER))
    rows = {row.kind: row for row in compare_replay(live, moved)}
    assert not rows["agent_message_chunk"].same
    assert rows["agent_message_chunk"].live == rows["agent_message_chunk"].replayed
