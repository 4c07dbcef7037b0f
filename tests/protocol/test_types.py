"""Round-trips of real ACP messages through Parley's Structs.

Examples are copied verbatim from the ACP docs (`tests/fixtures/acp/docs/*.mdx`),
and every JSON example in them whose method Parley speaks is round-tripped too.
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any

import msgspec
import pytest

from parley_protocol import acp, parley
from tests.protocol import samples
from tests.support.acp_conformance import SCHEMA, UNSTABLE_SCHEMA, AcpConformance
from tests.support.fixtures import ACP

# -- helpers --------------------------------------------------------------------


def omitted_defaults(original: Any, encoded: Any, path: str = "$") -> list[str]:
    """Paths present in `original` but absent from `encoded`.

    Asserts the two are otherwise equal, and that every omitted value is a
    default (`null`, `false`, `[]`): with `omit_defaults`, those are the only
    keys a round-trip may drop.
    """
    if isinstance(original, dict):
        assert isinstance(encoded, dict), f"{path}: {encoded!r} is not an object"
        dropped: list[str] = []
        extra = set(encoded) - set(original)
        assert not extra, f"{path}: keys added by the round-trip: {sorted(extra)}"
        for key, value in original.items():
            if key not in encoded:
                assert value in (None, False, []), f"{path}.{key}: {value!r} was dropped"
                dropped.append(f"{path}.{key}")
            else:
                dropped += omitted_defaults(value, encoded[key], f"{path}.{key}")
        return dropped
    if isinstance(original, list):
        assert isinstance(encoded, list) and len(encoded) == len(original), path
        return [d for i, (o, e) in enumerate(zip(original, encoded, strict=True)) for d in
                omitted_defaults(o, e, f"{path}[{i}]")]  # fmt: skip
    assert original == encoded, f"{path}: {original!r} != {encoded!r}"
    assert type(original) is type(encoded) or {type(original), type(encoded)} <= {int, float}, (
        f"{path}: {original!r} changed type"
    )
    return []


def round_trip(data: Any, typ: Any) -> tuple[Any, list[str]]:
    """decode -> encode -> decode; returns the decoded value and the omitted defaults."""
    raw = json.dumps(data).encode()
    value = msgspec.json.decode(raw, type=typ)
    encoded = msgspec.json.encode(value)
    assert msgspec.json.decode(encoded, type=typ) == value
    return value, omitted_defaults(data, json.loads(encoded))


def part_type(frame: dict[str, Any], method: str | None = None) -> tuple[str, Any]:
    """Which part of a frame holds the typed payload, and its Parley type."""
    if "method" in frame:
        method = frame["method"]
        if "id" in frame:
            table = acp.AGENT_REQUESTS if method in acp.AGENT_REQUESTS else acp.CLIENT_REQUESTS
            return "params", table[method][0]
        notes = acp.AGENT_NOTIFICATIONS | acp.CLIENT_NOTIFICATIONS
        return "params", notes[method]
    assert method is not None
    table = acp.AGENT_REQUESTS if method in acp.AGENT_REQUESTS else acp.CLIENT_REQUESTS
    return "result", table[method][1]


def check_frame(frame_json: str, method: str | None = None, omitted: tuple[str, ...] = ()) -> Any:
    frame = json.loads(frame_json)
    part, typ = part_type(frame, method)
    value, dropped = round_trip(frame[part], typ)
    assert dropped == list(omitted)
    return value


# -- verbatim examples from the ACP docs -------------------------------------------

INITIALIZE_REQUEST = """{
  "jsonrpc": "2.0",
  "id": 0,
  "method": "initialize",
  "params": {
    "protocolVersion": 1,
    "clientCapabilities": {
      "fs": {
        "readTextFile": true,
        "writeTextFile": true
      },
      "terminal": true
    },
    "clientInfo": {
      "name": "my-client",
      "title": "My Client",
      "version": "1.0.0"
    }
  }
}"""

INITIALIZE_RESPONSE = """{
  "jsonrpc": "2.0",
  "id": 0,
  "result": {
    "protocolVersion": 1,
    "agentCapabilities": {
      "loadSession": true,
      "promptCapabilities": {
        "image": true,
        "audio": true,
        "embeddedContext": true
      },
      "mcpCapabilities": {
        "http": true,
        "sse": true
      }
    },
    "agentInfo": {
      "name": "my-agent",
      "title": "My Agent",
      "version": "1.0.0"
    },
    "authMethods": []
  }
}"""

SESSION_NEW = """{
  "jsonrpc": "2.0",
  "id": 1,
  "method": "session/new",
  "params": {
    "cwd": "/home/user/project",
    "mcpServers": [
      {
        "name": "filesystem",
        "command": "/path/to/mcp-server",
        "args": ["--stdio"],
        "env": []
      }
    ]
  }
}"""

SESSION_NEW_RESPONSE = """{
  "jsonrpc": "2.0",
  "id": 1,
  "result": {
    "sessionId": "sess_abc123def456"
  }
}"""

SESSION_PROMPT = """{
  "jsonrpc": "2.0",
  "id": 2,
  "method": "session/prompt",
  "params": {
    "sessionId": "sess_abc123def456",
    "prompt": [
      {
        "type": "text",
        "text": "Can you analyze this code for potential issues?"
      },
      {
        "type": "resource",
        "resource": {
          "uri": "file:///home/user/project/main.py",
          "mimeType": "text/x-python",
          "text": "def process_data(items):\\n    for item in items:\\n        print(item)"
        }
      }
    ]
  }
}"""

SESSION_PROMPT_META = """{
  "jsonrpc": "2.0",
  "id": 1,
  "method": "session/prompt",
  "params": {
    "sessionId": "sess_abc123def456",
    "prompt": [
      {
        "type": "text",
        "text": "Hello, world!"
      }
    ],
    "_meta": {
      "traceparent": "00-80e1afed08e019fc1110464cfa66635c-7a085853722dc6d2-01",
      "zed.dev/debugMode": true
    }
  }
}"""

PROMPT_RESPONSE = """{
  "jsonrpc": "2.0",
  "id": 2,
  "result": {
    "stopReason": "end_turn"
  }
}"""

TOOL_CALL = """{
  "jsonrpc": "2.0",
  "method": "session/update",
  "params": {
    "sessionId": "sess_abc123def456",
    "update": {
      "sessionUpdate": "tool_call",
      "toolCallId": "call_001",
      "title": "Reading configuration file",
      "kind": "read",
      "status": "pending"
    }
  }
}"""

TOOL_CALL_UPDATE = """{
  "jsonrpc": "2.0",
  "method": "session/update",
  "params": {
    "sessionId": "sess_abc123def456",
    "update": {
      "sessionUpdate": "tool_call_update",
      "toolCallId": "call_001",
      "status": "in_progress",
      "content": [
        {
          "type": "content",
          "content": {
            "type": "text",
            "text": "Found 3 configuration files..."
          }
        }
      ]
    }
  }
}"""

TERMINAL_TOOL_CALL = """{
  "jsonrpc": "2.0",
  "method": "session/update",
  "params": {
    "sessionId": "sess_abc123def456",
    "update": {
      "sessionUpdate": "tool_call",
      "toolCallId": "call_002",
      "title": "Running tests",
      "kind": "execute",
      "status": "in_progress",
      "content": [
        {
          "type": "terminal",
          "terminalId": "term_xyz789"
        }
      ]
    }
  }
}"""

REQUEST_PERMISSION = """{
  "jsonrpc": "2.0",
  "id": 5,
  "method": "session/request_permission",
  "params": {
    "sessionId": "sess_abc123def456",
    "toolCall": {
      "toolCallId": "call_001"
    },
    "options": [
      {
        "optionId": "allow-once",
        "name": "Allow once",
        "kind": "allow_once"
      },
      {
        "optionId": "reject-once",
        "name": "Reject",
        "kind": "reject_once"
      }
    ]
  }
}"""

PERMISSION_SELECTED = """{
  "jsonrpc": "2.0",
  "id": 5,
  "result": {
    "outcome": {
      "outcome": "selected",
      "optionId": "allow-once"
    }
  }
}"""

PERMISSION_CANCELLED = """{
  "jsonrpc": "2.0",
  "id": 5,
  "result": {
    "outcome": {
      "outcome": "cancelled"
    }
  }
}"""

USAGE_UPDATE = """{
  "jsonrpc": "2.0",
  "method": "session/update",
  "params": {
    "sessionId": "sess_abc123def456",
    "update": {
      "sessionUpdate": "usage_update",
      "used": 53000,
      "size": 200000,
      "cost": {
        "amount": 0.045,
        "currency": "USD"
      }
    }
  }
}"""

SESSION_LIST_RESPONSE = """{
  "jsonrpc": "2.0",
  "id": 2,
  "result": {
    "sessions": [
      {
        "sessionId": "sess_abc123def456",
        "cwd": "/home/user/project",
        "title": "Implement session list API",
        "updatedAt": "2025-10-29T14:22:15Z",
        "_meta": {
          "messageCount": 12,
          "hasErrors": false
        }
      },
      {
        "sessionId": "sess_xyz789ghi012",
        "cwd": "/home/user/another-project",
        "title": "Debug authentication flow",
        "updatedAt": "2025-10-28T16:45:30Z"
      },
      {
        "sessionId": "sess_uvw345rst678",
        "cwd": "/home/user/project",
        "updatedAt": "2025-10-27T15:30:00Z"
      }
    ],
    "nextCursor": "eyJwYWdlIjogM30="
  }
}"""

SESSION_CANCEL = """{
  "jsonrpc": "2.0",
  "method": "session/cancel",
  "params": {
    "sessionId": "sess_abc123def456"
  }
}"""


def test_initialize_request() -> None:
    req = check_frame(INITIALIZE_REQUEST)
    assert isinstance(req, acp.InitializeRequest)
    assert req.protocol_version == 1
    assert req.client_capabilities is not None
    assert req.client_capabilities.can_read_text_file
    assert req.client_capabilities.can_write_text_file
    assert req.client_capabilities.terminal
    assert not req.client_capabilities.supports_notices
    assert req.client_info == acp.Implementation(
        name="my-client", title="My Client", version="1.0.0"
    )


def test_initialize_response() -> None:
    # The doc spells out the default `"authMethods": []`; omit_defaults drops it.
    resp = check_frame(INITIALIZE_RESPONSE, "initialize", omitted=("$.authMethods",))
    assert resp.agent_capabilities.prompt_capabilities.embedded_context is True
    assert resp.auth_methods == []


def test_session_new() -> None:
    req = check_frame(SESSION_NEW)
    assert req.cwd == "/home/user/project"
    assert req.mcp_servers[0]["command"] == "/path/to/mcp-server"
    resp = check_frame(SESSION_NEW_RESPONSE, "session/new")
    assert resp == acp.NewSessionResponse(session_id="sess_abc123def456")


def test_session_new_mcp_servers_default_to_empty() -> None:
    req = msgspec.convert({"cwd": "/p"}, acp.NewSessionRequest)
    assert req.mcp_servers == []
    assert req.additional_directories is None


def test_session_prompt() -> None:
    req = check_frame(SESSION_PROMPT)
    text, resource = req.prompt
    assert isinstance(text, acp.TextContent)
    assert isinstance(resource, acp.EmbeddedResource)
    assert resource.resource.text is not None and resource.resource.blob is None
    assert resource.resource.mime_type == "text/x-python"
    assert check_frame(PROMPT_RESPONSE, "session/prompt") == acp.PromptResponse(
        stop_reason="end_turn"
    )


def test_session_prompt_meta() -> None:
    req = check_frame(SESSION_PROMPT_META)
    assert req.meta == {
        "traceparent": "00-80e1afed08e019fc1110464cfa66635c-7a085853722dc6d2-01",
        "zed.dev/debugMode": True,
    }


def test_tool_call_and_update() -> None:
    start = check_frame(TOOL_CALL).update
    assert isinstance(start, acp.ToolCallStart)
    assert (start.tool_call_id, start.kind, start.status) == ("call_001", "read", "pending")
    progress = check_frame(TOOL_CALL_UPDATE).update
    assert isinstance(progress, acp.ToolCallProgress)
    assert isinstance(progress, acp.ToolCallUpdate)
    assert progress.title is None
    (content,) = progress.content or []
    assert isinstance(content, acp.ContentToolCallContent)
    terminal = check_frame(TERMINAL_TOOL_CALL).update
    assert terminal.content == [acp.TerminalToolCallContent(terminal_id="term_xyz789")]


def test_request_permission() -> None:
    req = check_frame(REQUEST_PERMISSION)
    assert isinstance(req, acp.RequestPermissionRequest)
    assert req.tool_call == acp.ToolCallUpdate(tool_call_id="call_001")
    assert [o.kind for o in req.options] == ["allow_once", "reject_once"]
    selected = check_frame(PERMISSION_SELECTED, "session/request_permission")
    assert selected.outcome == acp.AllowedOutcome(option_id="allow-once")
    cancelled = check_frame(PERMISSION_CANCELLED, "session/request_permission")
    assert cancelled.outcome == acp.DeniedOutcome()


def test_usage_update() -> None:
    update = check_frame(USAGE_UPDATE).update
    assert update == acp.UsageUpdate(
        used=53000, size=200000, cost=acp.Cost(amount=0.045, currency="USD")
    )


def test_session_list_and_cancel() -> None:
    resp = check_frame(SESSION_LIST_RESPONSE, "session/list")
    assert resp.sessions[0].meta == {"messageCount": 12, "hasErrors": False}
    assert resp.sessions[2].title is None
    assert check_frame(SESSION_CANCEL) == acp.CancelNotification(session_id="sess_abc123def456")


@pytest.mark.parametrize(
    ("fragment", "typ"),
    [
        ('{"type": "text", "text": "What\'s the weather like today?"}', acp.ContentBlock),
        (
            '{"type": "image", "mimeType": "image/png", '
            '"data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB..."}',
            acp.ContentBlock,
        ),
        (
            '{"type": "audio", "mimeType": "audio/wav", '
            '"data": "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAAB..."}',
            acp.ContentBlock,
        ),
        (
            '{"type": "resource", "resource": {"uri": "file:///home/user/script.py", '
            '"mimeType": "text/x-python", "text": "def hello():\\n    print(\'Hello, world!\')"}}',
            acp.ContentBlock,
        ),
        (
            '{"type": "resource_link", "uri": "file:///home/user/document.pdf", '
            '"name": "document.pdf", "mimeType": "application/pdf", "size": 1024000}',
            acp.ContentBlock,
        ),
        (
            '{"type": "content", '
            '"content": {"type": "text", "text": "Analysis complete. Found 3 issues."}}',
            acp.ToolCallContent,
        ),
        (
            '{"type": "diff", "path": "/home/user/project/src/config.json", '
            '"oldText": "{\\n  \\"debug\\": false\\n}", "newText": "{\\n  \\"debug\\": true\\n}"}',
            acp.ToolCallContent,
        ),
        ('{"type": "terminal", "terminalId": "term_xyz789"}', acp.ToolCallContent),
        ('{"path": "/home/user/project/src/main.py", "line": 42}', acp.ToolCallLocation),
    ],
)
def test_doc_fragments(fragment: str, typ: Any) -> None:
    _, dropped = round_trip(json.loads(fragment), typ)
    assert dropped == []


# -- every JSON example in the docs ---------------------------------------------------

DOCS = ACP / "docs"

# The docs' examples that contradict schema.json (the authority).
DOC_ERRATA = {
    ("session-modes.mdx", 2): "current_mode_update has `modeId`; schema: `currentModeId`",
    ("session-modes.mdx", 3): "toolCall.content holds a bare ContentBlock, not ToolCallContent",
    ("session-setup.mdx", 6): "session/load result is null; schema: a LoadSessionResponse object",
    ("file-system.mdx", 4): "fs/write_text_file result is null; schema: a WriteTextFileResponse",
}


def doc_examples() -> list[Any]:
    speaks = (
        set(acp.AGENT_REQUESTS)
        | set(acp.AGENT_NOTIFICATIONS)
        | set(acp.CLIENT_REQUESTS)
        | set(acp.CLIENT_NOTIFICATIONS)
    )
    found = []
    for doc in sorted(DOCS.glob("*.mdx")):
        methods_by_id: dict[Any, str] = {}
        blocks = re.findall(r"```json[^\n]*\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
        for i, block in enumerate(blocks):
            try:
                frame = json.loads(block)
            except ValueError:
                continue
            if not isinstance(frame, dict) or frame.get("jsonrpc") != "2.0":
                continue
            method = frame.get("method")
            if method is not None and "id" in frame:
                methods_by_id[frame["id"]] = method
            elif method is None:
                method = methods_by_id.get(frame.get("id"))
                if "error" in frame:
                    continue
            if method not in speaks:
                continue
            marks = []
            if (doc.name, i) in DOC_ERRATA:
                marks = [pytest.mark.xfail(reason=DOC_ERRATA[doc.name, i], strict=True)]
            found.append(pytest.param(frame, method, id=f"{doc.stem}-{i}", marks=marks))
    return found


@pytest.mark.parametrize(("frame", "method"), doc_examples())
def test_every_doc_example_round_trips(frame: dict[str, Any], method: str) -> None:
    part, typ = part_type(frame, method)
    round_trip(frame[part], typ)


# -- _meta, unknown fields, camelCase --------------------------------------------------


def test_meta_preserved_at_every_depth() -> None:
    prompt = {
        "sessionId": "s",
        "_meta": {"traceparent": "00-1-2-01", "nested": {"a": [1, {"b": None}]}},
        "prompt": [
            {
                "type": "text",
                "text": "hi",
                "_meta": {"k": 1},
                "annotations": {"audience": ["user"], "_meta": {"ann": True}},
            },
            {
                "type": "resource",
                "_meta": {"res": 1},
                "resource": {"uri": "file:///a", "blob": "AA==", "_meta": {"blob": 2}},
            },
        ],
    }
    value, dropped = round_trip(prompt, acp.PromptRequest)
    assert dropped == []
    assert value.prompt[1].resource.meta == {"blob": 2}

    update = {
        "sessionId": "s",
        "_meta": {"parley": {"conversation": {"id": "c", "parent": None}}},
        "update": {
            "sessionUpdate": "tool_call_update",
            "toolCallId": "t",
            "_meta": {"u": 1},
            "content": [
                {"type": "diff", "path": "/a", "newText": "x", "_meta": {"d": 1}},
                {"type": "content", "_meta": {"c": 1}, "content": {"type": "text", "text": "x"}},
            ],
            "locations": [{"path": "/a", "_meta": {"loc": 1}}],
        },
    }
    _, dropped = round_trip(update, acp.SessionNotification)
    assert dropped == []

    init = {
        "protocolVersion": 1,
        "_meta": {"top": 1},
        "clientInfo": {"name": "c", "version": "1", "_meta": {"info": 1}},
        "clientCapabilities": {
            "_meta": {"caps": 1},
            "fs": {"readTextFile": True, "_meta": {"fs": 1}},
            "session": {"notices": {}, "compaction": {}, "_meta": {"sess": 1}},
        },
    }
    value, dropped = round_trip(init, acp.InitializeRequest)
    assert dropped == []
    assert value.client_capabilities.supports_notices
    assert value.client_capabilities.supports_compaction


def test_unknown_fields_tolerated_on_requests() -> None:
    init = msgspec.convert(
        {
            "protocolVersion": 1,
            "futureTopLevel": {"x": 1},
            "clientCapabilities": {
                "fs": {"readTextFile": True, "watch": True},
                "terminal": False,
                "subagents": {},
                "somethingNew": [1, 2],
                "session": {"notices": {}, "futureSession": True},
            },
        },
        acp.InitializeRequest,
    )
    assert init.client_capabilities is not None
    assert init.client_capabilities.can_read_text_file

    prompt = msgspec.json.decode(
        b'{"sessionId": "s", "newField": 1, "prompt": [{"type": "text", "text": "x",'
        b' "futureField": {"y": 2}}]}',
        type=acp.PromptRequest,
    )
    assert prompt.prompt == [acp.TextContent(text="x")]

    new = msgspec.convert(
        {"cwd": "/p", "mcpServers": [], "additionalDirectories": ["/q"], "future": 1},
        acp.NewSessionRequest,
    )
    assert new.additional_directories == ["/q"]
    listing = msgspec.convert({"cursor": None, "future": 1}, acp.ListSessionsRequest)
    assert listing == acp.ListSessionsRequest()
    load = msgspec.convert(
        {"sessionId": "s", "cwd": "/p", "mcpServers": [{"type": "http", "name": "n", "url": "u"}]},
        acp.LoadSessionRequest,
    )
    assert load.mcp_servers[0]["type"] == "http"
    cancel = msgspec.convert({"requestId": None, "x": 1}, acp.CancelRequestNotification)
    assert cancel.request_id is None
    assert msgspec.convert({"id": "7"}, acp.LspCancelParams).id == "7"


def test_bad_params_are_validation_errors() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.prompt\[0\]\.resource"):
        msgspec.convert(
            {"sessionId": "s", "prompt": [{"type": "resource", "resource": {"uri": "u"}}]},
            acp.PromptRequest,
        )
    with pytest.raises(msgspec.ValidationError, match="sessionId"):
        msgspec.convert({"prompt": []}, acp.PromptRequest)
    with pytest.raises(msgspec.ValidationError, match="protocolVersion"):
        msgspec.convert({"protocolVersion": "1"}, acp.InitializeRequest)


def snake_keys(value: Any, path: str = "$") -> list[str]:
    if isinstance(value, dict):
        bad = [f"{path}.{k}" for k in value if "_" in k.lstrip("_") and k != "_meta"]
        return bad + [b for k, v in value.items() if k != "_meta" for b in snake_keys(v, k)]
    if isinstance(value, list):
        return [b for v in value for b in snake_keys(v, path)]
    return []


def test_camel_case_on_the_wire() -> None:
    update = samples.to_json(samples.SESSION_UPDATES[3])
    assert {"sessionUpdate", "toolCallId", "rawInput"} <= set(update)
    for frame, _ in samples.agent_frames():
        assert snake_keys(frame) == [], frame
    usage = samples.to_json(samples.USAGE)
    assert set(usage["turn"]) == {
        "responses",
        "toolUses",
        "wallMs",
        "inputTokens",
        "outputTokens",
        "cacheReadTokens",
        "cacheWriteTokens",
        "reasoningTokens",
        "cost",
        "currency",
        "priced",
    }
    assert {"contextUsed", "contextSize"} <= set(usage)


def test_raw_output_null_is_kept() -> None:
    """rawInput/rawOutput are arbitrary JSON: `null` is a value, absence is not."""
    data = {"sessionUpdate": "tool_call_update", "toolCallId": "t", "rawOutput": None}
    value, dropped = round_trip(data, acp.SessionUpdate)
    assert dropped == []
    assert value.raw_output is None
    assert "rawOutput" not in samples.to_json(acp.ToolCallProgress(tool_call_id="t"))


# -- every SessionUpdate variant ------------------------------------------------------


def test_every_struct_is_exported() -> None:
    import parley_protocol.content
    import parley_protocol.initialize
    import parley_protocol.session
    import parley_protocol.tool_calls

    for module in (
        parley_protocol.content,
        parley_protocol.initialize,
        parley_protocol.session,
        parley_protocol.tool_calls,
    ):
        for name, value in vars(module).items():
            if isinstance(value, type) and value.__module__ == module.__name__:
                assert getattr(acp, name) is value, f"{module.__name__}.{name} not in acp"
                assert name in acp.__all__


def test_every_session_update_variant_is_sampled() -> None:
    variants = set(typing.get_args(acp.SessionUpdate))
    assert {type(u) for u in samples.SESSION_UPDATES} == variants


def test_session_update_tags_match_the_acp_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))

    def tags(def_name: str, field: str) -> set[str]:
        return {b["properties"][field]["const"] for b in schema["$defs"][def_name]["oneOf"]}

    ours = {t.__struct_config__.tag for t in typing.get_args(acp.SessionUpdate)}
    assert ours == tags("SessionUpdate", "sessionUpdate")
    ours = {t.__struct_config__.tag for t in typing.get_args(acp.ContentBlock)}
    assert ours == tags("ContentBlock", "type")
    ours = {t.__struct_config__.tag for t in typing.get_args(acp.ToolCallContent)}
    assert ours == tags("ToolCallContent", "type")
    stop_reasons = {b["const"] for b in schema["$defs"]["StopReason"]["oneOf"]}
    assert set(typing.get_args(acp.StopReason)) == stop_reasons


@pytest.mark.parametrize("update", samples.SESSION_UPDATES, ids=lambda u: type(u).__name__)
def test_session_update_variant_round_trips(update: acp.SessionUpdate) -> None:
    frame = samples.notification_frame(update)
    value, dropped = round_trip(frame["params"], acp.SessionNotification)
    assert dropped == []
    assert value.update == update
    assert type(value.update) is type(update)
    assert parley.read_parley_meta(value.meta).conversation == samples.CONVERSATION


# -- Parley's extensions -----------------------------------------------------------------


def test_parley_meta_builds_and_reads_back() -> None:
    meta = parley.parley_meta(
        conversation=samples.CHILD_CONVERSATION,
        usage=samples.USAGE,
        base={"traceparent": "t", "parley": {"other": 1}},
    )
    assert meta["traceparent"] == "t"
    assert meta["parley"]["other"] == 1
    assert meta["parley"]["conversation"] == {
        "id": "conv_child",
        "parent": "conv_root",
        "parentToolCall": "call_9",
        "depth": 1,
    }
    # every key present, nulls included: clients need no defaults
    assert samples.to_json(parley.ConversationRef(id="c")) == {
        "id": "c",
        "parent": None,
        "parentToolCall": None,
        "depth": 0,
    }
    read = parley.read_parley_meta(json.loads(json.dumps(meta)))
    assert read.conversation == samples.CHILD_CONVERSATION
    assert read.usage == samples.USAGE
    assert parley.read_parley_meta(None) == parley.ParleyMeta()
    assert parley.parley_meta() == {"parley": {}}
    with pytest.raises(ValueError, match="alone"):
        parley.parley_meta(
            conversation=samples.CONVERSATION,
            capabilities=parley.ParleyCapabilities(version="1"),
        )


def test_capabilities_advertised_under_agent_capabilities_meta() -> None:
    caps = samples.to_json(samples.INITIALIZE_RESPONSE)["agentCapabilities"]["_meta"]["parley"]
    assert caps["methods"] == [
        "_parley/toolCall/cancel",
        "_parley/session/pause",
        "_parley/session/resume",
        "_parley/session/inject",
        "_parley/session/queue/list",
        "_parley/session/queue/replace",
        "_parley/session/queue/withdraw",
        "_parley/session/setBudget",
        "_parley/session/fork",
        "_parley/session/attach",
    ]
    assert caps["version"] == "0.1.0"


def test_session_settings_from_meta() -> None:
    settings = parley.session_settings_from_meta(
        {
            "traceparent": "x",
            "parley": {
                "provider": "openai",
                "model": "gpt",
                "baseUrl": "http://127.0.0.1:1/v1",
                "maxOutputTokens": 1000,
                "contextSize": 8000,
            },
        }
    )
    assert settings == parley.SessionSettings(
        provider="openai",
        model="gpt",
        base_url="http://127.0.0.1:1/v1",
        max_output_tokens=1000,
        context_size=8000,
    )
    assert parley.session_settings_from_meta(None) == parley.SessionSettings()
    assert parley.session_settings_from_meta({"other": 1}) == parley.SessionSettings()
    assert "api" not in " ".join(parley.SessionSettings.__struct_fields__).lower()


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"parley": {"maxOutputTokens": "many"}}, r"`_meta\.parley\.maxOutputTokens`"),
        ({"parley": {"contextSize": 0}}, r">= 1 - at `_meta\.parley\.contextSize`"),
        ({"parley": "gpt"}, r"Expected `object`, got `str` - at `_meta\.parley`"),
        ({"parley": {"apiKey": "sk-x"}}, r"`_meta\.parley\.apiKey` is not accepted"),
        ({"parley": {"api_key": "sk-x"}}, r"not accepted"),
        ({"parley": {"temperature": 0.2}}, r"unknown field `temperature` - at `_meta\.parley`"),
    ],
)
def test_session_settings_errors_are_clear(meta: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        parley.session_settings_from_meta(meta)


def test_extension_method_names() -> None:
    assert parley.TOOL_CALL_CANCEL == "_parley/toolCall/cancel"
    assert parley.SESSION_PAUSE == "_parley/session/pause"
    assert parley.SESSION_RESUME == "_parley/session/resume"
    assert parley.SESSION_FORK == "_parley/session/fork"
    params = msgspec.convert({"sessionId": "s", "messageId": "m"}, parley.SessionForkParams)
    assert params == parley.SessionForkParams(session_id="s", message_id="m")
    params = msgspec.convert({"sessionId": "s", "toolCallId": "t"}, parley.ToolCallCancelParams)
    assert params == parley.ToolCallCancelParams(session_id="s", tool_call_id="t")


def sent_by_agent(param: Any) -> bool:
    frame, method = param.values
    if "method" in frame:
        return method in acp.CLIENT_REQUESTS or method in acp.CLIENT_NOTIFICATIONS
    return method in acp.AGENT_REQUESTS


@pytest.mark.parametrize(("frame", "method"), [p for p in doc_examples() if sent_by_agent(p)])
def test_doc_examples_parley_would_send_conform(frame: dict[str, Any], method: str) -> None:
    """Agent-sent doc examples pass the conformance helper, before and after a round-trip."""
    conformance = AcpConformance.load()
    request_method = None if "method" in frame else method
    conformance.check_agent_frame(frame, request_method)
    part, typ = part_type(frame, method)
    encoded = {**frame, part: samples.to_json(msgspec.convert(frame[part], typ))}
    conformance.check_agent_frame(encoded, request_method)


# -- field names and requiredness against schema.json -------------------------------

SCHEMA_NAMES = {
    "ToolCallStart": "ToolCall",
    "ToolCallProgress": "ToolCallUpdate",
    "ContentToolCallContent": "Content",
    "FileEditToolCallContent": "Diff",
    "TerminalToolCallContent": "Terminal",
    "AgentPlanUpdate": "Plan",
    "AllowedOutcome": "SelectedPermissionOutcome",
    "UserMessageChunk": "ContentChunk",
    "AgentMessageChunk": "ContentChunk",
    "AgentThoughtChunk": "ContentChunk",
}
# Deliberate differences, each explained where the Struct is defined.
FIELD_EXCEPTIONS = {
    # required on the wire, but Parley accepts their absence (schema: default-on-null)
    ("NewSessionRequest", "mcpServers"): "optional",
    ("LoadSessionRequest", "mcpServers"): "optional",
    ("McpServerStdio", "args"): "optional",
    ("McpServerStdio", "env"): "optional",
    ("McpServerHttp", "headers"): "optional",
    ("McpServerSse", "headers"): "optional",
    # the tag of McpServer's union, which the schema puts on the union
    ("McpServerHttp", "type"): "extra",
    ("McpServerSse", "type"): "extra",
    # both subclass the one Struct that stands for their untagged union
    ("TextResourceContents", "blob"): "extra",
    ("BlobResourceContents", "text"): "extra",
}


def schema_fields(definition: dict[str, Any]) -> dict[str, bool]:
    """A $def's fields, each with whether it is required."""
    return {key: key in definition.get("required", []) for key in definition["properties"]}


def test_fields_match_the_acp_schema() -> None:
    """Against the stable schema; a type or field only the unstable one has
    (Parley uses those behind their capability) against the unstable one."""
    defs = json.loads(SCHEMA.read_text(encoding="utf-8"))["$defs"]
    unstable = json.loads(UNSTABLE_SCHEMA.read_text(encoding="utf-8"))["$defs"]
    checked = 0
    for name in acp.__all__:
        struct = getattr(acp, name)
        if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
            continue
        def_name = SCHEMA_NAMES.get(name, name)
        definition = defs.get(def_name, unstable.get(def_name))
        if definition is None or "properties" not in definition:
            continue
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        ours = {f.encode_name: f.required for f in info.fields}
        preview = schema_fields(unstable.get(def_name, definition))
        theirs = schema_fields(definition)
        theirs |= {key: preview[key] for key in set(ours) & set(preview) - set(theirs)}
        for field in set(ours) | set(theirs):
            exception = FIELD_EXCEPTIONS.get((name, field))
            if field not in theirs:
                assert exception == "extra", f"{name}.{field} is not in the ACP schema"
            elif field not in ours:
                pytest.fail(f"{name} lacks ACP field {def_name}.{field}")
            elif ours[field] != theirs[field]:
                assert exception == "optional", f"{name}.{field}: required={ours[field]}"
        checked += 1
    assert checked >= 60
