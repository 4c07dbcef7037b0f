"""`restore()` over hand-built logs, and the usage ledger it feeds."""

from __future__ import annotations

import msgspec
import pytest

from parley_protocol.acp import (
    AgentMessageChunk,
    AgentThoughtChunk,
    CurrentModeUpdate,
    ToolCallProgress,
    ToolCallStart,
    UsageUpdate,
    UserMessageChunk,
)
from parley_protocol.parley import PARLEY_META_KEY
from parleyd.providers.messages import (
    AssistantMessage,
    Part,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from parleyd.session.replay import INTERRUPTED_CALL, NotASession, closing_records, restore
from parleyd.session.user_input import tool_result_message
from parleyd.session.wire import ChildState
from parleyd.store.records import (
    AssistantResponse,
    ConversationStarted,
    CurrentRecord,
    ModeSet,
    PermissionRemembered,
    ResponseStreamed,
    SessionStarted,
    TitleSet,
    ToolCallView,
    ToolOutcome,
    ToolStarted,
    TurnEnded,
    TurnStarted,
    UsageRecorded,
    UserTurn,
)
from parleyd.tools.permission import Scope

AnyRecord = CurrentRecord

ROOT = "conv_root"
SUB = "conv_sub"


def session() -> list[AnyRecord]:
    return [
        SessionStarted(session_id="sess_1", cwd="/w", settings={}, conv=ROOT),
        ConversationStarted(conv=ROOT),
    ]


def user(conv: str, text: str) -> UserTurn:
    return UserTurn(
        conv=conv, text=text, content=[{"type": "text", "text": text}], message_id=f"u-{text}"
    )


def message(text: str, *calls: ToolCall) -> AssistantMessage:
    parts: tuple[Part, ...] = (TextPart(text), *calls)
    return AssistantMessage(parts=parts)


def assistant(conv: str, text: str, *calls: ToolCall) -> AssistantResponse:
    return AssistantResponse(
        conv=conv, message=message(text, *calls), message_id=f"a-{text}", model="gpt-4o"
    )


def outcome(conv: str, call: ToolCall, output: str) -> ToolOutcome:
    return ToolOutcome(
        conv=conv, call_id=call.id, name=call.name, status="completed", output=output
    )


def usage(conv: str, tokens: int, cost: float | None = None) -> UsageRecorded:
    return UsageRecorded(conv=conv, model="gpt-4o", input_tokens=tokens, output_tokens=1, cost=cost)


SPAWN = ToolCall(id="call_spawn", name="subagent", arguments='{"task": "look"}')
READ = ToolCall(id="call_read", name="read_file", arguments='{"path": "a"}')


def test_histories_are_rebuilt_per_conversation() -> None:
    records = [
        *session(),
        user(ROOT, "go"),
        assistant(ROOT, "spawning", SPAWN),
        ConversationStarted(conv=SUB, parent=ROOT, parent_tool_call=SPAWN.id, depth=1),
        TurnStarted(conv=SUB, turn="t_sub"),
        user(SUB, "look"),
        assistant(SUB, "found it"),
        TurnEnded(conv=SUB, turn="t_sub", stop_reason="end_turn"),
        outcome(ROOT, SPAWN, "found it"),
        assistant(ROOT, "done"),
        TurnEnded(conv=ROOT, stop_reason="end_turn"),
        TitleSet(conv=ROOT, title="first"),
        TitleSet(conv=ROOT, title="second"),
    ]
    restored = restore(records)

    assert restored.started is records[0]
    assert restored.title == "second"
    assert restored.root is restored.conversations[ROOT]
    assert set(restored.conversations) == {ROOT, SUB}
    assert restored.root.history == [
        UserMessage(text="go"),
        message("spawning", SPAWN),
        ToolResultMessage(call_id=SPAWN.id, name="subagent", content="found it"),
        message("done"),
    ]
    sub = restored.conversations[SUB]
    assert (sub.parent, sub.parent_tool_call, sub.depth) == (ROOT, SPAWN.id, 1)
    assert sub.history == [UserMessage(text="look"), message("found it")]
    assert closing_records(records) == []


def test_replayed_updates_follow_the_stream_and_name_their_conversation() -> None:
    thinking = AssistantResponse(
        conv=ROOT,
        message=AssistantMessage(
            parts=(ThinkingPart("hmm", signature="sig"), TextPart("ok"), READ)
        ),
        message_id="a-1",
        model="gpt-4o",
        tool_views=[ToolCallView(call_id=READ.id, title="Read a", kind="read")],
    )
    ran = ToolOutcome(
        conv=ROOT,
        call_id=READ.id,
        name=READ.name,
        status="completed",
        output="text",
        ran=True,
        progress=["te"],
    )
    replayed = restore([*session(), user(ROOT, "go"), thinking, ran, usage(ROOT, 5)]).updates
    updates = [update for update, _ in replayed]

    # The call's announcement, final title and input, start, streamed output and
    # end replay as one update: where the client's fields ended up.
    assert [type(update) for update in updates] == [
        UserMessageChunk,
        AgentThoughtChunk,
        AgentMessageChunk,
        ToolCallStart,
        UsageUpdate,
    ]
    call = updates[3]
    assert isinstance(call, ToolCallStart)
    assert (call.title, call.kind, call.raw_input) == ("Read a", "read", {"path": "a"})
    assert (call.status, call.raw_output["output"]) == ("completed", "text")
    metas = [update.meta or {} for update in updates]
    assert [meta[PARLEY_META_KEY]["conversation"].id for meta in metas] == [ROOT] * len(updates)
    assert {conversation.id for _, conversation in replayed} == {ROOT}


def test_usage_rolls_up_from_a_child_to_the_root_and_the_turn_resets() -> None:
    first_turn: list[AnyRecord] = [
        user(ROOT, "one"),
        usage(ROOT, 10, cost=0.5),
        ConversationStarted(conv=SUB, parent=ROOT, depth=1),
        # A subagent's task is part of the root turn that spawned it.
        user(SUB, "sub"),
        usage(SUB, 20, cost=0.25),
        outcome(SUB, READ, "text"),
    ]
    ledger = restore([*session(), *first_turn]).ledger
    root, sub = ledger.of(ROOT), ledger.of(SUB)
    assert (root.own.input_tokens, root.total.input_tokens, root.turn.input_tokens) == (10, 30, 30)
    assert (sub.own.input_tokens, sub.total.input_tokens) == (20, 20)
    assert (root.total.cost, sub.total.cost) == (0.75, 0.25)
    assert (root.total.responses, root.own.responses) == (2, 1)
    assert root.total.tool_uses == {READ.name: 1} and root.own.tool_uses == {}

    restored = restore([*session(), *first_turn, user(ROOT, "two"), usage(ROOT, 40)])
    root = restored.ledger.of(ROOT)
    assert root.turn.input_tokens == 40
    # The second turn's model has no known cost: the turn reports none, and the
    # session keeps what it had, saying it is not the whole cost.
    assert (root.turn.cost, root.turn.priced) == (None, False)
    session_totals = restored.ledger.session
    assert (session_totals.input_tokens, session_totals.output_tokens) == (70, 3)
    assert (session_totals.cost, session_totals.priced) == (0.75, False)
    last, conversation = restored.updates[-1]
    assert isinstance(last, UsageUpdate) and conversation.id == ROOT
    # ACP's cost would be short of the unpriced response: it is not sent.
    assert last.cost is None
    detail = (last.meta or {})[PARLEY_META_KEY]["usage"]
    assert (detail.total.cost, detail.total.priced) == (0.75, False)


def test_each_conversation_replays_its_final_figures_when_its_turn_ends() -> None:
    grandchild = "conv_grandchild"
    records: list[AnyRecord] = [
        *session(),
        TurnStarted(conv=ROOT, turn="t1"),
        usage(ROOT, 5),
        ConversationStarted(conv=SUB, parent=ROOT, depth=1),
        TurnStarted(conv=SUB, turn="t2"),
        ConversationStarted(conv=grandchild, parent=SUB, depth=2),
        TurnStarted(conv=grandchild, turn="t3"),
        usage(grandchild, 7),
        usage(grandchild, 8),
        TurnEnded(conv=grandchild, turn="t3", stop_reason="end_turn"),
        TurnEnded(conv=SUB, turn="t2", stop_reason="end_turn"),
        usage(ROOT, 1),
        TurnEnded(conv=ROOT, turn="t1", stop_reason="end_turn"),
    ]
    reported = [u for u in restore(records).updates if isinstance(u[0], UsageUpdate)]
    # Not one per response: each conversation once, as its turn ended.
    assert [conversation.id for _, conversation in reported] == [grandchild, SUB, ROOT]
    details = [update.meta[PARLEY_META_KEY]["usage"] for update, _ in reported if update.meta]
    assert [(d.own.input_tokens, d.total.input_tokens, d.turn_ended) for d in details] == [
        (15, 15, True),
        (0, 15, True),
        (6, 21, True),
    ]


def test_a_turn_that_never_ended_replays_its_figures_at_the_end() -> None:
    records: list[AnyRecord] = [
        *session(),
        ConversationStarted(conv=SUB, parent=ROOT, depth=1),
        ConversationStarted(conv="conv_grandchild", parent=SUB, depth=2),
        usage("conv_grandchild", 7),
    ]
    reported = [u for u in restore(records).updates if isinstance(u[0], UsageUpdate)]
    details = [update.meta[PARLEY_META_KEY]["usage"] for update, _ in reported if update.meta]
    assert sorted((d.conversation, d.own.input_tokens, d.total.input_tokens) for d in details) == [
        ("conv_grandchild", 7, 7),
        (ROOT, 0, 7),
        (SUB, 0, 7),
    ]


def test_turns_count_their_time_in_their_lineage() -> None:
    records: list[AnyRecord] = [
        *session(),
        TurnStarted(conv=ROOT, turn="t1", ts=100.0),
        ConversationStarted(conv=SUB, parent=ROOT, depth=1),
        TurnStarted(conv=SUB, turn="t2", ts=101.0),
        TurnEnded(conv=SUB, turn="t2", stop_reason="end_turn", ts=103.5),
        TurnEnded(conv=ROOT, turn="t1", stop_reason="end_turn", ts=104.0),
    ]
    ledger = restore(records).ledger
    assert ledger.of(SUB).own.wall_ms == 2500.0
    assert (ledger.of(ROOT).own.wall_ms, ledger.of(ROOT).total.wall_ms) == (4000.0, 6500.0)


@pytest.mark.parametrize("turn", ["turn_1", None], ids=["format-2", "format-1"])
def test_a_turn_without_its_end_is_closed_with_its_unanswered_calls(turn: str | None) -> None:
    opening: list[AnyRecord] = [TurnStarted(conv=ROOT, turn=turn)] if turn else []
    records = [
        *session(),
        *opening,
        user(ROOT, "go"),
        assistant(ROOT, "two calls", SPAWN, READ),
        outcome(ROOT, SPAWN, "ok"),
    ]
    closing = closing_records(records)
    assert [type(record) for record in closing] == [ToolOutcome, TurnEnded]
    answered, ended = closing
    assert isinstance(answered, ToolOutcome) and isinstance(ended, TurnEnded)
    assert (answered.call_id, answered.status, answered.conv) == (READ.id, "cancelled", ROOT)
    assert (ended.stop_reason, ended.turn, answered.turn) == ("interrupted", turn, turn)
    # Closed, the history pairs every call with a result, and the replay ends the call.
    restored = restore([*records, *closing])
    assert restored.root.history[-1] == tool_result_message(answered)
    last = [u for u, _ in restored.updates if isinstance(u, ToolCallProgress)][-1]
    assert last.status == "failed"
    assert closing_records([*records, *closing]) == []


def test_a_turn_ended_before_the_next_one_is_not_closed_again() -> None:
    records = [
        *session(),
        TurnStarted(conv=ROOT, turn="t1"),
        user(ROOT, "one"),
        TurnEnded(conv=ROOT, turn="t1", stop_reason="cancelled"),
        TurnStarted(conv=ROOT, turn="t2"),
        user(ROOT, "two"),
        assistant(ROOT, "done"),
        TurnEnded(conv=ROOT, turn="t2", stop_reason="end_turn"),
    ]
    assert closing_records(records) == []


def test_a_call_whose_result_the_log_never_took_is_answered_in_the_history() -> None:
    # The disk filled after the response and before the result: the turn is
    # ended, the call never answered.
    records = [
        *session(),
        TurnStarted(conv=ROOT, turn="t1"),
        user(ROOT, "go"),
        assistant(ROOT, "two calls", READ, SPAWN),
        outcome(ROOT, SPAWN, "ok"),
        TurnEnded(conv=ROOT, turn="t1", stop_reason="error"),
        TurnStarted(conv=ROOT, turn="t2"),
        user(ROOT, "again"),
    ]
    history = restore(records).root.history
    assert [type(m).__name__ for m in history] == [
        "UserMessage",
        "AssistantMessage",
        "ToolResultMessage",
        "ToolResultMessage",
        "UserMessage",
    ]
    supplied = history[3]
    assert isinstance(supplied, ToolResultMessage)
    assert (supplied.call_id, supplied.is_error) == (READ.id, True)
    assert "No result was recorded" in supplied.content


def test_a_child_started_but_killed_before_its_turn_is_closed() -> None:
    records = [
        *session(),
        TurnStarted(conv=ROOT, turn="t1"),
        user(ROOT, "go"),
        assistant(ROOT, "delegating", SPAWN),
        ConversationStarted(conv=SUB, parent=ROOT, parent_tool_call=SPAWN.id, depth=1),
    ]
    closing = closing_records(records)
    assert [(type(r).__name__, r.conv) for r in closing] == [
        ("TurnEnded", SUB),
        ("ToolOutcome", ROOT),
        ("TurnEnded", ROOT),
    ]
    replayed = restore([*records, *closing]).updates
    ended = [u for u, _ in replayed if isinstance(u, ChildState) and u.state == "idle"]
    assert [u.ending for u in ended] == ["interrupted"]


def test_always_answers_and_the_mode_are_restored() -> None:
    records = [
        *session(),
        PermissionRemembered(conv=ROOT, tool="run_shell", allowed=True),
        PermissionRemembered(conv=ROOT, tool="write_file", allowed=False),
        PermissionRemembered(conv=ROOT, tool="run_shell", allowed=False),
        PermissionRemembered(conv=ROOT, tool="run_shell", allowed=True, command_prefix="git log"),
        ModeSet(conv=ROOT, mode="accept_edits"),
        ModeSet(conv=ROOT, mode="read_only"),
    ]
    restored = restore(records)
    assert restored.permissions == {
        Scope("run_shell"): False,
        Scope("write_file"): False,
        Scope("run_shell", "git log"): True,
    }
    assert restored.mode == "read_only"
    modes = [u.current_mode_id for u, _ in restored.updates if isinstance(u, CurrentModeUpdate)]
    assert modes == ["accept_edits", "read_only"]
    assert restore(session()).mode is None


@pytest.mark.parametrize(
    "records",
    [[], [ConversationStarted(conv=ROOT), user(ROOT, "hi")]],
    ids=["empty", "no-session-record"],
)
def test_a_log_without_a_session_record_is_not_a_session(records: list[AnyRecord]) -> None:
    with pytest.raises(NotASession):
        restore(records)


def test_records_of_an_unknown_conversation_do_not_crash() -> None:
    ghost = "conv_ghost"  # its conversation record was a malformed line
    records = [
        *session(),
        user(ghost, "boo"),
        assistant(ghost, "calling", READ),
        outcome(ghost, ToolCall(id="call_unknown", name="x", arguments=""), "?"),
        usage(ghost, 3),
    ]
    restored = restore(records)
    assert restored.conversations[ghost].history[0] == UserMessage(text="boo")
    assert restored.conversations[ghost].depth == 0


def test_a_root_without_its_conversation_record_is_created() -> None:
    restored = restore([SessionStarted(session_id="s", cwd="/", settings={}, conv=ROOT)])
    assert restored.root.id == ROOT
    assert restored.conversations == {ROOT: restored.root}
    assert restored.root.history == []


def test_a_nested_turn_left_open_is_closed_before_its_parent() -> None:
    records = [
        *session(),
        TurnStarted(conv=ROOT, turn="t1", ts=10.0),
        user(ROOT, "go"),
        assistant(ROOT, "delegating", SPAWN),
        ConversationStarted(conv=SUB, parent=ROOT, parent_tool_call=SPAWN.id, depth=1),
        TurnStarted(conv=SUB, turn="t2", ts=11.0),
        user(SUB, "look"),
        assistant(SUB, "reading", READ),
        ToolStarted(conv=SUB, turn="t2", call_id=READ.id, ts=12.0),
    ]
    closing = closing_records(records)
    assert [(type(r).__name__, r.conv) for r in closing] == [
        ("ToolOutcome", SUB),
        ("TurnEnded", SUB),
        ("ToolOutcome", ROOT),
        ("TurnEnded", ROOT),
    ]
    # Dated when each turn last wrote, so its time is what it ran.
    assert [r.ts for r in closing] == [12.0, 12.0, 12.0, 12.0]
    restored = restore([*records, *closing])
    kinds = [type(u).__name__ for u, c in restored.updates if c.id == ROOT]
    assert "ChildState" in kinds
    assert closing_records([*records, *closing]) == []


def test_stored_content_that_no_longer_validates_does_not_fail_the_load() -> None:
    call = ToolCall(id="c1", name="read_file", arguments="{}")
    broken_user = UserTurn(
        conv=ROOT,
        text="hi",
        content=[{"type": "hologram"}, {"type": "text", "text": "hi"}],
        message_id="u1",
    )
    broken_outcome = ToolOutcome(
        conv=ROOT,
        call_id="c1",
        name="read_file",
        status="completed",
        output="the file",
        content=[{"type": "smell"}],
    )
    restored = restore([*session(), broken_user, assistant(ROOT, "reading", call), broken_outcome])
    replayed = [update for update, _ in restored.updates]
    users = [u for u in replayed if isinstance(u, UserMessageChunk)]
    assert [u.content.text for u in users] == ["hi"]  # type: ignore[union-attr]
    (call,) = [u for u in replayed if isinstance(u, ToolCallStart)]
    assert call.status == "completed"
    assert call.content[0].content.text == "the file"  # type: ignore[index,union-attr]


def test_calls_are_announced_where_they_started_streaming() -> None:
    # Both calls started while the response had one part: both announcements
    # come after the text and before either call's final title and input.
    write = ToolCall(id="call_write", name="write_file", arguments='{"path": "b"}')
    response = AssistantResponse(
        conv=ROOT,
        message=message("reading and writing", READ, write),
        message_id="a-1",
        model="gpt-4o",
        call_starts={write.id: 1, READ.id: 1},
    )
    updates = [update for update, _ in restore([*session(), response]).updates]
    shown = [(type(update).__name__, getattr(update, "tool_call_id", None)) for update in updates]
    # Each call's updates fold only into its own: the read's title joins its
    # announcement, the write's, coming after the read's, stays apart.
    assert shown == [
        ("AgentMessageChunk", None),
        ("ToolCallStart", write.id),
        ("ToolCallStart", READ.id),
        ("ToolCallProgress", write.id),
    ]


@pytest.mark.parametrize(
    ("arguments", "raw_input"),
    [
        ('{"path": "a", "lines": [1, 2]}', {"path": "a", "lines": [1, 2]}),
        ('{"limit": Infinity}', {"limit": float("inf")}),  # JSON to Python, not to msgspec
        ("", {}),
        ('{"path": "a"', '{"path": "a"'),  # not JSON: the text itself
    ],
)
def test_a_calls_arguments_replay_as_its_raw_input(arguments: str, raw_input: object) -> None:
    call = ToolCall(id="call_1", name="read_file", arguments=arguments)
    updates = [update for update, _ in restore([*session(), assistant(ROOT, "x", call)]).updates]
    ready = updates[-1]
    assert isinstance(ready, ToolCallStart)
    assert ready.raw_input == raw_input


def _streamed(*checkpoints: ResponseStreamed) -> list[AnyRecord]:
    return [
        *session(),
        TurnStarted(conv=ROOT, turn="t1"),
        user(ROOT, "go"),
        *(msgspec.structs.replace(c, conv=ROOT, turn="t1") for c in checkpoints),
    ]


def test_a_response_streaming_when_the_daemon_died_is_kept_as_far_as_its_checkpoints() -> None:
    read_view = ToolCallView(call_id=READ.id, title="Read a", kind="read")
    records = _streamed(
        ResponseStreamed(message_id="m1", model="gpt-4o", parts=(ThinkingPart("hm"),)),
        # The thinking's signature came after its text, then the answer began.
        ResponseStreamed(
            message_id="m1",
            model="gpt-4o",
            parts=(ThinkingPart(signature="sig"), TextPart("Hel")),
            extends_last=True,
            tool_views=[ToolCallView(call_id=READ.id, title=READ.name, kind="read")],
            call_starts={READ.id: 2},
        ),
        ResponseStreamed(
            message_id="m1",
            model="gpt-4o",
            parts=(TextPart("lo"), READ),
            extends_last=True,
            tool_views=[read_view],
            call_starts={READ.id: 2},
        ),
    )
    closing = closing_records(records)
    assert [type(r).__name__ for r in closing] == ["AssistantResponse", "ToolOutcome", "TurnEnded"]
    cut_short = closing[0]
    assert isinstance(cut_short, AssistantResponse)
    assert cut_short.message.parts == (ThinkingPart("hm", signature="sig"), TextPart("Hello"), READ)
    assert (cut_short.message_id, cut_short.interrupted) == ("m1", True)
    assert (cut_short.tool_views, cut_short.abandoned_calls) == ([read_view], [])
    assert closing[1].call_id == READ.id  # type: ignore[union-attr]

    restored = restore([*records, *closing])
    assert restored.root.history[-2:] == [
        cut_short.message,
        ToolResultMessage(READ.id, READ.name, INTERRUPTED_CALL, is_error=True),
    ]
    texts = [u.content.text for u, _ in restored.updates if isinstance(u, AgentMessageChunk)]
    assert texts == ["Hello"]  # type: ignore[union-attr]


def test_a_call_still_streaming_its_arguments_is_kept_as_abandoned() -> None:
    view = ToolCallView(call_id=READ.id, title=READ.name, kind="read")
    records = _streamed(
        ResponseStreamed(
            message_id="m1",
            model="gpt-4o",
            parts=(TextPart("Reading"),),
            tool_views=[view],
            call_starts={READ.id: 1},
        )
    )
    cut_short, ended = closing_records(records)
    assert isinstance(cut_short, AssistantResponse) and isinstance(ended, TurnEnded)
    assert (cut_short.message.parts, cut_short.abandoned_calls) == ((TextPart("Reading"),), [view])


def test_a_response_record_supersedes_its_checkpoints() -> None:
    records = [
        *_streamed(ResponseStreamed(message_id="a-done", model="gpt-4o", parts=(TextPart("do"),))),
        assistant(ROOT, "done"),
    ]
    assert [type(r).__name__ for r in closing_records(records)] == ["TurnEnded"]
    texts = [
        u.content.text for u, _ in restore(records).updates if isinstance(u, AgentMessageChunk)
    ]
    assert texts == ["done"]  # type: ignore[union-attr]


def test_calls_of_two_conversations_that_share_an_id_stay_apart() -> None:
    # Models number their calls alike: the root's call_0 ends just before the
    # child's call_0 starts, and neither may be folded into the other.
    delegate = ToolCall(id="call_0", name="subagent", arguments='{"task": "read"}')
    read = ToolCall(id="call_0", name="read_file", arguments='{"path": "a"}')
    restored = restore(
        [
            *session(),
            assistant(ROOT, "delegating", delegate),
            ToolStarted(conv=ROOT, call_id="call_0"),
            ConversationStarted(conv=SUB, parent=ROOT, parent_tool_call="call_0", depth=1),
            assistant(SUB, "reading", read),
            outcome(ROOT, delegate, "done"),
            ToolStarted(conv=SUB, call_id="call_0"),
        ]
    )
    statuses = [
        (conversation.id, update.status)
        for update, conversation in restored.updates
        if isinstance(update, ToolCallStart | ToolCallProgress) and update.status is not None
    ]
    assert statuses[-2:] == [(ROOT, "completed"), (SUB, "in_progress")]
