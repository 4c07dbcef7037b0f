"""Sample values of Parley's wire Structs, shared by the protocol tests.

One sample per variant of each union, filled in enough to exercise the
optional fields and `_meta` at several depths.
"""

from __future__ import annotations

from typing import Any

import msgspec

from parley_protocol import acp, parley
from parley_protocol.jsonrpc import ErrorObject, ErrorResponse, Notification, Request, Response

CONVERSATION = parley.ConversationRef(id="conv_root")
CHILD_CONVERSATION = parley.ConversationRef(
    id="conv_child", parent="conv_root", parent_tool_call="call_9", depth=1
)
UPDATE_META = parley.parley_meta(conversation=CONVERSATION)

TEXT = acp.TextContent(
    text="Hello",
    annotations=acp.Annotations(audience=["user"], priority=0.5, meta={"a": 1}),
    meta={"zed.dev/x": True},
)

CONTENT_BLOCKS: list[acp.ContentBlock] = [
    TEXT,
    acp.ImageContent(data="iVBORw0KGgo=", mime_type="image/png", uri="file:///a.png"),
    acp.AudioContent(data="UklGRiQ=", mime_type="audio/wav"),
    acp.ResourceLink(
        name="doc.pdf", uri="file:///doc.pdf", mime_type="application/pdf", size=1024, title="Doc"
    ),
    acp.EmbeddedResource(
        resource=acp.TextResourceContents(
            uri="file:///main.py", text="print(1)\n", mime_type="text/x-python", meta={"d": 3}
        )
    ),
    acp.EmbeddedResource(resource=acp.BlobResourceContents(uri="file:///x.bin", blob="AAEC")),
]

TOOL_CALL_CONTENTS: list[acp.ToolCallContent] = [
    acp.ContentToolCallContent(content=acp.TextContent(text="found 3 files")),
    acp.FileEditToolCallContent(path="/p/a.py", old_text="a = 1\n", new_text="a = 2\n"),
    acp.FileEditToolCallContent(path="/p/new.py", new_text="x = 1\n"),
    acp.TerminalToolCallContent(terminal_id="term_1"),
]

USAGE = parley.UsageDetail(
    turn=parley.UsageTotals(input_tokens=1200, output_tokens=80, cost=0.01, currency="USD"),
    session=parley.UsageTotals(
        input_tokens=9000,
        output_tokens=700,
        cache_read_tokens=4000,
        cache_write_tokens=100,
        reasoning_tokens=50,
        cost=0.2,
        currency="USD",
    ),
    conversation="conv_root",
    context_used=9800,
    context_size=200000,
    model="gpt-test",
)

SESSION_UPDATES: list[acp.SessionUpdate] = [
    acp.UserMessageChunk(content=acp.TextContent(text="What is 2+2?"), message_id="msg_u1"),
    acp.AgentMessageChunk(content=TEXT, message_id="msg_a1"),
    acp.AgentThoughtChunk(content=acp.TextContent(text="thinking...")),
    acp.ToolCallStart(
        tool_call_id="call_1",
        title="Reading file",
        name="read",
        kind="read",
        status="pending",
        locations=[acp.ToolCallLocation(path="/p/a.py", line=3, meta={"l": 1})],
        raw_input={"path": "/p/a.py"},
    ),
    acp.ToolCallProgress(
        tool_call_id="call_1",
        status="completed",
        content=TOOL_CALL_CONTENTS,
        raw_output=None,
        meta={"parley": {"durationMs": 12}},
    ),
    acp.AgentPlanUpdate(
        entries=[
            acp.PlanEntry(content="Read", priority="high", status="completed"),
            acp.PlanEntry(content="Edit", priority="medium", status="in_progress", meta={"p": 1}),
        ]
    ),
    acp.AvailableCommandsUpdate(
        available_commands=[
            acp.AvailableCommand(
                name="web", description="Search", input=acp.UnstructuredCommandInput(hint="query")
            ),
            acp.AvailableCommand(name="test", description="Run tests"),
        ]
    ),
    acp.CurrentModeUpdate(current_mode_id="code"),
    acp.ConfigOptionUpdate(
        config_options=[
            {"id": "model", "name": "Model", "type": "select", "currentValue": "a", "options": []}
        ]
    ),
    acp.SessionInfoUpdate(title="Fix the bug", updated_at="2026-01-01T00:00:00Z"),
    acp.UsageUpdate(
        used=9800,
        size=200000,
        cost=acp.Cost(amount=0.2, currency="USD"),
        meta=parley.parley_meta(usage=USAGE),
    ),
    acp.Notice(severity="warning", title="Provider is slow", description="retrying in 2s"),
    acp.CompactionUpdate(
        compaction_id="cmp_1", status="completed", summary=[acp.TextContent(text="summary")]
    ),
    acp.CompactionSummaryChunk(compaction_id="cmp_1", content=acp.TextContent(text="sum")),
]

PERMISSION_REQUEST = acp.RequestPermissionRequest(
    session_id="sess_1",
    tool_call=acp.ToolCallUpdate(tool_call_id="call_1", title="Write a.py", kind="edit"),
    options=[
        acp.PermissionOption(option_id="allow-once", name="Allow once", kind="allow_once"),
        acp.PermissionOption(option_id="allow-always", name="Always", kind="allow_always"),
        acp.PermissionOption(option_id="reject-once", name="Reject", kind="reject_once"),
        acp.PermissionOption(option_id="reject-always", name="Never", kind="reject_always"),
    ],
)

INITIALIZE_RESPONSE = acp.InitializeResponse(
    protocol_version=1,
    agent_capabilities=acp.AgentCapabilities(
        load_session=True,
        prompt_capabilities=acp.PromptCapabilities(image=True, embedded_context=True),
        mcp_capabilities=acp.McpCapabilities(),
        session_capabilities=acp.SessionCapabilities(list=acp.SessionListCapabilities()),
        meta=parley.parley_meta(
            capabilities=parley.ParleyCapabilities(
                version="0.1.0",
                methods=list(parley.EXTENSION_METHODS),
                features=["conversation", "usage"],
            )
        ),
    ),
    auth_methods=[acp.AuthMethodAgent(id="env", name="Environment", description="API key env")],
    agent_info=acp.Implementation(name="parley", title="Parley", version="0.1.0"),
)

# (method of the client request, the result Parley answers it with)
RESPONSES: list[tuple[str, msgspec.Struct]] = [
    ("initialize", INITIALIZE_RESPONSE),
    ("initialize", acp.InitializeResponse(protocol_version=1)),
    ("session/new", acp.NewSessionResponse(session_id="sess_1")),
    ("session/load", acp.LoadSessionResponse()),
    (
        "session/list",
        acp.ListSessionsResponse(
            sessions=[
                acp.SessionInfo(
                    session_id="sess_1", cwd="/p", title="t", updated_at="2026-01-01T00:00:00Z"
                ),
                acp.SessionInfo(session_id="sess_2", cwd="/q"),
                acp.SessionInfo(session_id="sess_3", cwd="/q", archived=True),
            ],
            next_cursor="c2",
        ),
    ),
    ("session/resume", acp.ResumeSessionResponse()),
    ("session/close", acp.CloseSessionResponse()),
    ("session/delete", acp.DeleteSessionResponse()),
    # Methods only ACP's unstable schema defines.
    ("session/status", acp.SessionStatusResponse(status="open")),
    ("session/archive", acp.ArchiveSessionResponse()),
    ("session/unarchive", acp.UnarchiveSessionResponse()),
    ("session/set_title", acp.SetSessionTitleResponse(title="Fix the bug")),
    ("session/fork", acp.ForkSessionResponse(session_id="sess_2")),
    *[
        ("session/prompt", acp.PromptResponse(stop_reason=reason))
        for reason in ("end_turn", "max_tokens", "max_turn_requests", "refusal", "cancelled")
    ],
]


def to_json(value: Any) -> Any:
    """Encode with msgspec and parse back: exactly what goes on the wire."""
    return msgspec.json.decode(msgspec.json.encode(value))


def notification_frame(update: acp.SessionUpdate, session_id: str = "sess_1") -> Any:
    params = acp.SessionNotification(session_id=session_id, update=update, meta=UPDATE_META)
    return to_json(Notification(method="session/update", params=params))


def agent_frames() -> list[tuple[Any, str | None]]:
    """Frames Parley sends, each with the method of the request it answers (if any)."""
    frames: list[tuple[Any, str | None]] = []
    frames += [(notification_frame(u), None) for u in SESSION_UPDATES]
    frames += [
        (notification_frame(acp.AgentMessageChunk(content=block)), None) for block in CONTENT_BLOCKS
    ]
    frames.append(
        (
            to_json(Request(id=7, method="session/request_permission", params=PERMISSION_REQUEST)),
            None,
        )
    )
    frames.append(
        (
            to_json(
                Notification(
                    method="$/cancel_request", params=acp.CancelRequestNotification(request_id=7)
                )
            ),
            None,
        )
    )
    frames += [
        (to_json(Response(id=i, result=result)), method)
        for i, (method, result) in enumerate(RESPONSES)
    ]
    frames.append(
        (
            to_json(ErrorResponse(id=3, error=ErrorObject(code=-32602, message="bad params"))),
            "session/prompt",
        )
    )
    return frames
