"""The plain view of a session tree: sub-agents streaming at once take turns by
whole lines, each labelled with its conversation and indented by its depth."""

from __future__ import annotations

import io
import re

import pytest

from parley_client.render import PlainView, Renderer, usage_summary
from parley_client.transcript import Usage
from parley_protocol.acp import (
    PermissionOption,
    RequestPermissionRequest,
    SessionNotification,
    ToolCallUpdate,
)
from parley_protocol.parley import UsageDetail, UsageTotals, parley_meta
from tests.client.stream import (
    GRANDCHILD,
    LISTER,
    READER,
    ROOT,
    SESSION_ID,
    announced,
    text,
    tool_call,
    tool_ended,
    usage,
)


def plain(notifications: list[SessionNotification]) -> str:
    out = io.StringIO()
    renderer = Renderer(PlainView(out))
    for notification in notifications:
        renderer.feed(notification)
    renderer.finish("end_turn")
    return out.getvalue()


def test_parallel_sub_agents_take_turns_by_whole_lines() -> None:
    shown = plain(
        [
            text(ROOT, "thought", "Two tasks.", "msg_r0"),
            text(ROOT, "agent", "Delegating ", "msg_r0"),
            text(ROOT, "agent", "now.", "msg_r0"),
            tool_call(ROOT, "call_1", "Sub-agent: read"),
            tool_call(ROOT, "call_2", "Sub-agent: list"),
            announced(ROOT, READER, "Read README.md"),
            announced(ROOT, LISTER, "List the files"),
            text(READER, "user", "Read README.md", "msg_a0"),
            text(LISTER, "user", "List the files", "msg_b0"),
            text(READER, "agent", "Reading ", "msg_a1"),
            text(LISTER, "agent", "Listing ", "msg_b1"),
            text(READER, "agent", "the file.\n\nIt says", "msg_a1"),
            text(LISTER, "agent", "all of it.", "msg_b1"),
            tool_call(LISTER, "call_1", "Sub-agent: ls"),
            announced(LISTER, GRANDCHILD, "ls"),
            text(GRANDCHILD, "agent", "Here ", "msg_c1"),
            usage(GRANDCHILD, 50),
            tool_call(READER, "call_1", "Read README.md"),
            text(GRANDCHILD, "agent", "they are.", "msg_c1"),
            tool_ended(READER, "call_1", output="# Harbour"),
            usage(READER, 70),
            usage(ROOT, 300),
            text(READER, "agent", "Harbour.", "msg_a2"),
            tool_ended(LISTER, "call_1", output="README.md"),
            tool_ended(ROOT, "call_1", output="Harbour."),
            text(LISTER, "agent", "Just README.md.", "msg_b2"),
            tool_ended(ROOT, "call_2", status="failed", output="the sub-agent failed"),
            text(ROOT, "agent", "Both done.", "msg_r1"),
        ]
    )
    # A sub-agent's line waits while another's is open; a sub-agent that completed
    # ends its lines before its call's, whose preview (the answer just shown) is left
    # out; only the root's figures make the usage line.
    assert shown == (
        "[thinking] Two tasks.\n"
        "Delegating now.\n"
        "  [Read README.md] > Read README.md\n"
        "  [List the files] > List the files\n"
        "  [Read README.md] Reading the file.\n"
        "  [Read README.md]\n"
        "  [Read README.md] It says\n"
        "  [List the files] Listing all of it.\n"
        "    [ls] Here they are.\n"
        "  [Read README.md] [tool] Read README.md ... completed (5 ms)\n"
        "  [Read README.md]     # Harbour\n"
        "  [Read README.md] Harbour.\n"
        "  [List the files] [tool] Sub-agent: ls ... completed (5 ms)\n"
        "[tool] Sub-agent: read ... completed (5 ms)\n"
        "  [List the files] Just README.md.\n"
        "[tool] Sub-agent: list ... failed (5 ms)\n"
        "    the sub-agent failed\n"
        "Both done.\n"
        "[usage] 300 in · 0 out · 0 cached · 0 reasoning · context 300/32,000 (1%)\n"
    )


def test_an_unfinished_sub_agent_is_closed_with_the_turn() -> None:
    shown = plain(
        [
            tool_call(ROOT, "call_1", "Sub-agent: read"),
            announced(ROOT, READER, "Read README.md"),
            text(READER, "agent", "Reading", "msg_a1"),
            tool_call(READER, "call_1", "Read README.md"),
            text(ROOT, "thought", "Waiting", "msg_r1"),
        ]
    )
    assert re.sub(r" \(.+ ms\)$", "", shown, flags=re.M) == (
        "  [Read README.md] Reading\n"
        "[thinking] Waiting\n"
        "  [Read README.md] [tool] Read README.md ... cancelled\n"
        "[tool] Sub-agent: read ... cancelled\n"
    )


def test_a_sub_agents_permission_question_names_it() -> None:
    out = io.StringIO()
    renderer = Renderer(PlainView(out))
    renderer.feed(announced(ROOT, READER, "Write the notes"))
    renderer.permission_asked(
        RequestPermissionRequest(
            session_id=SESSION_ID,
            tool_call=ToolCallUpdate(
                tool_call_id="call_1", title="Write NOTES.md", kind="edit", raw_input={}
            ),
            options=[PermissionOption(option_id="allow_once", name="Allow", kind="allow_once")],
            meta=parley_meta(conversation=READER),
        )
    )
    assert out.getvalue().splitlines()[0] == "[permission] [Write the notes] Write NOTES.md (edit)"


@pytest.mark.parametrize(
    ("cost", "shown"),
    [(None, "cost unknown"), (0.0123, "$0.0123 + unpriced responses")],
)
def test_a_turn_of_a_model_priced_nowhere_shows_its_cost_as_unknown(
    cost: float | None, shown: str
) -> None:
    turn = UsageTotals(responses=2, input_tokens=300, cost=cost, priced=False)
    usage = Usage(
        used=300,
        size=0,
        cost=None,
        detail=UsageDetail(turn=turn, session=turn, conversation="conv_1"),
    )
    assert usage_summary(usage) == f"300 in · 0 out · 0 cached · 0 reasoning · {shown}"
