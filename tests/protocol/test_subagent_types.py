"""The unstable child-session types against ACP's unstable schema, and the
`_meta.parley.subagent` payload Parley sends clients without them."""

from __future__ import annotations

import msgspec
import pytest

from parley_protocol import acp
from parley_protocol.parley import ConversationRef, SubagentInfo, UsageTotals
from tests.support.acp_conformance import UNSTABLE_SCHEMA, AcpConformance

CHILD = "conv_child"


@pytest.mark.parametrize(
    "update",
    [
        acp.SubagentUpdate(
            session_id=CHILD,
            title="Read the README",
            description="a careful reader",
            capabilities=acp.SubagentSessionCapabilities(cancel=acp.SessionCancelCapabilities()),
            state=acp.RunningState(),
        ),
        acp.SubagentUpdate(session_id=CHILD, state=acp.RequiresActionState()),
        acp.SubagentUpdate(session_id=CHILD, state=acp.IdleState(stop_reason="end_turn")),
        acp.SubagentUpdate(
            session_id=CHILD,
            state=acp.IdleState(
                stop_reason="error", error={"code": -32603, "message": "the provider failed"}
            ),
        ),
        acp.SubagentUpdate(session_id=CHILD, state=acp.IdleState(stop_reason="_interrupted")),
    ],
    ids=["announced", "requires-action", "idle", "failed", "interrupted"],
)
def test_subagent_updates_conform_to_the_unstable_schema(update: acp.SubagentUpdate) -> None:
    notification = acp.SessionNotification(session_id="sess_parent", update=update)
    encoded = msgspec.to_builtins(notification)
    AcpConformance.load(UNSTABLE_SCHEMA).check("SessionNotification", encoded)
    decoded = msgspec.convert(encoded, acp.SessionNotification)
    assert decoded.update == update


def test_omitted_fields_stay_omitted_so_a_state_change_keeps_the_title() -> None:
    encoded = msgspec.to_builtins(acp.SubagentUpdate(session_id=CHILD, state=acp.RunningState()))
    assert encoded == {
        "sessionUpdate": "subagent_update",
        "sessionId": CHILD,
        "state": {"state": "running"},
    }


def test_a_client_advertising_subagents_is_recognised() -> None:
    capabilities = msgspec.convert({"subagents": {}}, acp.ClientCapabilities)
    assert capabilities.supports_subagents
    assert not acp.ClientCapabilities().supports_subagents


def test_subagent_info_and_usage_totals_carry_every_key() -> None:
    info = SubagentInfo(conversation=ConversationRef(id=CHILD, depth=1), title="t")
    assert set(msgspec.to_builtins(info)) == {
        "conversation",
        "title",
        "description",
        "state",
        "stopReason",
    }
    totals = msgspec.to_builtins(UsageTotals(tool_uses={"read_file": 2}))
    assert totals["toolUses"] == {"read_file": 2} and totals["responses"] == 0
