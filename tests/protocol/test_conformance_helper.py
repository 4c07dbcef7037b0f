"""The ACP conformance helper accepts what Parley's Structs encode and rejects wrong frames.

Both directions matter: a checker that accepts everything would make every
end-to-end conformance assertion pass vacuously.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.protocol import samples
from tests.support.acp_conformance import UNSTABLE_SCHEMA, AcpConformance


@pytest.fixture(scope="module")
def acp() -> AcpConformance:
    return AcpConformance.load()


def update_frame(update: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": "session/update",
        "params": {"sessionId": "sess_1", "update": update},
    }


def test_defs_found_by_x_method_and_x_side(acp: AcpConformance) -> None:
    assert acp.def_for("session/update", "Notification", ("client",)) == "SessionNotification"
    assert (
        acp.def_for("session/request_permission", "Request", ("client",))
        == "RequestPermissionRequest"
    )
    expected = {
        "initialize": "InitializeResponse",
        "session/new": "NewSessionResponse",
        "session/load": "LoadSessionResponse",
        "session/list": "ListSessionsResponse",
        "session/prompt": "PromptResponse",
        "session/resume": "ResumeSessionResponse",
        "session/close": "CloseSessionResponse",
        "session/delete": "DeleteSessionResponse",
    }
    for method, name in expected.items():
        assert acp.def_for(method, "Response", ("agent",)) == name
    assert acp.def_for("$/cancel_request", "Notification", ("client", "protocol")) == (
        "CancelRequestNotification"
    )


def test_load_is_cached() -> None:
    assert AcpConformance.load() is AcpConformance.load()


def test_methods_only_the_unstable_schema_has_are_checked_against_it() -> None:
    assert AcpConformance.for_method("session/list") is AcpConformance.load()
    assert AcpConformance.for_method(None) is AcpConformance.load()
    status = AcpConformance.for_method("session/status")
    assert status is AcpConformance.load(UNSTABLE_SCHEMA)
    status.check_agent_frame(
        {"jsonrpc": "2.0", "id": 1, "result": {"status": "saved"}}, "session/status"
    )
    with pytest.raises(AssertionError, match="'status' is a required property"):
        status.check_agent_frame({"jsonrpc": "2.0", "id": 1, "result": {}}, "session/status")


@pytest.mark.parametrize(
    ("frame", "request_method"),
    samples.agent_frames(),
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_accepts_what_parley_encodes(frame: dict[str, Any], request_method: str | None) -> None:
    conformance = AcpConformance.for_method(frame.get("method", request_method))
    conformance.check_agent_frame(frame, request_method)


def test_accepts_extension_methods(acp: AcpConformance) -> None:
    acp.check_agent_frame(
        {"jsonrpc": "2.0", "method": "_parley/session/paused", "params": {"anything": [1]}}
    )
    acp.check_agent_frame({"jsonrpc": "2.0", "id": 4, "result": "free-form"}, "_parley/x")


TOOL_CALL = {"sessionUpdate": "tool_call", "toolCallId": "call_1", "title": "Read"}

BAD_FRAMES: list[tuple[str, dict[str, Any], str | None, str]] = [
    (
        "tool_call without toolCallId",
        update_frame({"sessionUpdate": "tool_call", "title": "Read"}),
        None,
        "'toolCallId' is a required property",
    ),
    (
        "stopReason done",
        {"jsonrpc": "2.0", "id": 2, "result": {"stopReason": "done"}},
        "session/prompt",
        "'done'",
    ),
    (
        "unknown sessionUpdate",
        update_frame({"sessionUpdate": "agent_message", "content": {"type": "text", "text": "x"}}),
        None,
        "SessionNotification",
    ),
    (
        "tool_call_update with a bare content block",
        update_frame(
            {
                "sessionUpdate": "tool_call_update",
                "toolCallId": "c",
                "content": [{"type": "text", "text": "x"}],
            }
        ),
        None,
        "content[0]",
    ),
    (
        "diff without newText",
        update_frame({**TOOL_CALL, "content": [{"type": "diff", "path": "/a"}]}),
        None,
        "'newText' is a required property",
    ),
    (
        "tool_call with a bad kind",
        update_frame({**TOOL_CALL, "kind": "write"}),
        None,
        "'write'",
    ),
    (
        "tool_call with kind null (ToolCall.kind is not nullable)",
        update_frame({**TOOL_CALL, "kind": None}),
        None,
        "None",
    ),
    (
        "usage_update with negative used",
        update_frame({"sessionUpdate": "usage_update", "used": -1, "size": 10}),
        None,
        "-1",
    ),
    (
        "notice with an empty title",
        update_frame({"sessionUpdate": "notice", "severity": "info", "title": ""}),
        None,
        "''",
    ),
    (
        "message chunk with a string content",
        update_frame({"sessionUpdate": "agent_message_chunk", "content": "hi"}),
        None,
        "'hi'",
    ),
    (
        "session/update without sessionId",
        {"jsonrpc": "2.0", "method": "session/update", "params": {"update": TOOL_CALL}},
        None,
        "'sessionId' is a required property",
    ),
    (
        "permission option with a bad kind",
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "session/request_permission",
            "params": {
                "sessionId": "s",
                "toolCall": {"toolCallId": "c"},
                "options": [{"optionId": "a", "name": "A", "kind": "allow"}],
            },
        },
        None,
        "'allow'",
    ),
    (
        "initialize result without protocolVersion",
        {"jsonrpc": "2.0", "id": 0, "result": {"agentCapabilities": {}}},
        "initialize",
        "'protocolVersion' is a required property",
    ),
    (
        "protocolVersion out of uint16",
        {"jsonrpc": "2.0", "id": 0, "result": {"protocolVersion": 70000}},
        "initialize",
        "uint16",
    ),
    (
        "session/new result without sessionId",
        {"jsonrpc": "2.0", "id": 1, "result": {}},
        "session/new",
        "'sessionId' is a required property",
    ),
    (
        "session/list session without cwd",
        {"jsonrpc": "2.0", "id": 1, "result": {"sessions": [{"sessionId": "s"}]}},
        "session/list",
        "'cwd' is a required property",
    ),
    (
        "error with a string code",
        {"jsonrpc": "2.0", "id": 1, "error": {"code": "oops", "message": "m"}},
        "session/prompt",
        "'oops'",
    ),
    (
        "error without message",
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32603}},
        "session/prompt",
        "'message' is a required property",
    ),
    (
        "missing jsonrpc",
        {"method": "session/update", "params": {"sessionId": "s", "update": TOOL_CALL}},
        None,
        '"jsonrpc" must be "2.0"',
    ),
    (
        "result and error together",
        {"jsonrpc": "2.0", "id": 1, "result": {}, "error": {"code": 1, "message": "m"}},
        "session/load",
        "exactly one of result and error",
    ),
    (
        "response without id",
        {"jsonrpc": "2.0", "result": {"stopReason": "end_turn"}},
        "session/prompt",
        'must have an "id"',
    ),
    (
        "response without the request's method",
        {"jsonrpc": "2.0", "id": 1, "result": {"stopReason": "end_turn"}},
        None,
        "needs the method",
    ),
    (
        "a method ACP does not have",
        {"jsonrpc": "2.0", "method": "session/updates", "params": {}},
        None,
        "no notification `session/updates`",
    ),
    (
        "a client-bound method sent as a request by the agent",
        {"jsonrpc": "2.0", "id": 9, "method": "session/prompt", "params": {}},
        None,
        "no request `session/prompt` handled by client",
    ),
]


@pytest.mark.parametrize(
    ("frame", "request_method", "message"),
    [pytest.param(f, m, msg, id=name) for name, f, m, msg in BAD_FRAMES],
)
def test_rejects_wrong_frames(
    acp: AcpConformance, frame: dict[str, Any], request_method: str | None, message: str
) -> None:
    with pytest.raises(AssertionError) as info:
        acp.check_agent_frame(frame, request_method)
    assert message in str(info.value)


def test_rejects_each_sample_once_broken(acp: AcpConformance) -> None:
    """Deleting a required field from any encoded update makes the helper fail."""
    for update in samples.SESSION_UPDATES:
        frame = samples.notification_frame(update)
        acp.check_agent_frame(frame)
        broken = copy.deepcopy(frame)
        del broken["params"]["update"]["sessionUpdate"]
        with pytest.raises(AssertionError):
            acp.check_agent_frame(broken)


def test_rejects_doc_erratum(acp: AcpConformance) -> None:
    """The docs' current_mode_update example uses `modeId`; the schema wants currentModeId."""
    with pytest.raises(AssertionError, match="'currentModeId' is a required property"):
        acp.check_agent_frame(update_frame({"sessionUpdate": "current_mode_update", "modeId": "x"}))
