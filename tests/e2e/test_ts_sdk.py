"""The real daemon driven by the official ACP TypeScript SDK (@agentclientprotocol/sdk)
through tests/ts/client.mjs, on the built-in scripted model. The SDK checks the
requests and notifications it receives against ACP's schema; the client checks every
message, answers too, with the SDK's validators, and reports what the SDK would take
only in part: whatever a strict client could not take as sent fails here."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from parley_protocol.parley import TOOL_CALL_CANCEL
from parleyd.agent import CALL_CANCELLED
from parleyd.offline.script import PlannedToolCall
from tests.support import scripted_agent
from tests.support.chat_streams import (
    SLEEPER,
    WAITER,
    WAITER_SAW,
    serve_two_calls,
    text_stream,
    tool_calls_stream,
)
from tests.support.daemon import PARLEYD, offline_env, replay_env
from tests.support.replay_server import ReplayServer
from tests.support.updates import as_replayed

TS = Path(__file__).resolve().parents[1] / "ts"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="node is not on PATH"),
    pytest.mark.skipif(
        not (TS / "node_modules").is_dir(),
        reason="tests/ts/node_modules is missing: `python3 dev.py test` installs it with npm",
    ),
]

Step = dict[str, Any]
INITIALIZE: Step = {
    "op": "initialize",
    "clientCapabilities": {"fs": {"readTextFile": False, "writeTextFile": False}},
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Widget\n\nA widget that frobs.\nSecond line.\n")
    return root


def _run_client(
    steps: Sequence[Step],
    env: Mapping[str, str],
    agent: Sequence[str] = PARLEYD,
    *,
    unstable: bool = False,
) -> dict[str, Any]:
    """What client.mjs recorded running `steps` against `agent`; `unstable` picks the
    SDK's client that knows ACP's unstable features over its default, stable one."""
    assert NODE is not None
    flags = ["--unstable"] if unstable else []
    done = subprocess.run(
        [NODE, str(TS / "client.mjs"), *flags, *agent],
        input=json.dumps(steps),
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=60,
        check=False,
    )
    # The agent's log and the SDK's complaints, shown with a failing test.
    sys.stderr.write(done.stderr)
    assert done.returncode == 0
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def _described(errors: list[dict[str, Any]]) -> str:
    """The errors without the messages they quote, which can be long."""
    return json.dumps(
        [{k: v for k, v in e.items() if k not in ("message", "issues")} for e in errors]
    )


def _assert_strict(record: dict[str, Any]) -> None:
    """Everything the agent sent passed the SDK's validation, unchanged."""
    assert record["validationErrors"] == [], _described(record["validationErrors"])
    assert record["errors"] == [], _described(record["errors"])
    assert record["agentExit"] == {"code": 0, "signal": None}


def _updates(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation's updates, without the slash commands said of the session."""
    return [
        entry["update"]
        for entry in record["updates"]
        if entry["update"]["sessionUpdate"] != "available_commands_update"
    ]


def _answer(record: dict[str, Any]) -> str:
    return "".join(
        u["content"]["text"]
        for u in _updates(record)
        if u["sessionUpdate"] == "agent_message_chunk"
    )


def _start(workspace: Path) -> list[Step]:
    return [INITIALIZE, {"op": "new", "cwd": str(workspace)}]


def _prompt(text: str, **fields: Any) -> Step:
    return {"op": "prompt", "text": text, **fields}


def test_a_turn_that_reads_a_file(workspace: Path, home: Path) -> None:
    steps = [*_start(workspace), _prompt("Summarize README.md")]
    record = _run_client(steps, offline_env(home))
    _assert_strict(record)
    initialized, created, prompted = record["steps"]
    assert initialized["result"]["agentCapabilities"]["loadSession"] is True
    assert created["result"]["sessionId"].startswith("sess_")
    assert prompted["result"] == {"stopReason": "end_turn"}
    calls = [u for u in _updates(record) if u["sessionUpdate"] in ("tool_call", "tool_call_update")]
    assert calls[1]["title"] == "Read README.md" and calls[1]["rawInput"] == {"path": "README.md"}
    assert [u["status"] for u in calls if u.get("status")] == [
        "pending",
        "in_progress",
        "completed",
    ]
    assert "A widget that frobs." in calls[-1]["content"][0]["content"]["text"]
    assert 'heading:** "Widget"' in _answer(record)


def test_every_field_sent_is_one_acp_defines(workspace: Path, home: Path) -> None:
    """The client that knows ACP's unstable features too drops nothing: Parley adds
    no field of its own outside `_meta`."""
    steps = [
        *_start(workspace),
        _prompt("Summarize README.md"),
        {"op": "request", "method": "session/list", "params": {}},
    ]
    record = _run_client(steps, offline_env(home), unstable=True)
    _assert_strict(record)
    assert record["steps"][-1]["result"]["sessions"][0]["title"] == "Summarize README.md"
    assert record["ignoredFields"] == []


def test_a_write_asks_permission_and_is_allowed(workspace: Path, home: Path) -> None:
    steps = [
        *_start(workspace),
        {"op": "permission", "answer": "allow_once"},
        _prompt('Write a note saying "ship it"'),
    ]
    record = _run_client(steps, offline_env(home))
    _assert_strict(record)
    assert record["steps"][-1]["result"] == {"stopReason": "end_turn"}
    (asked,) = record["permissionRequests"]
    assert asked["request"]["toolCall"]["title"].startswith("Write")
    chosen = next(o for o in asked["request"]["options"] if o["kind"] == "allow_once")
    assert asked["outcome"] == {"outcome": "selected", "optionId": chosen["optionId"]}
    assert "ship it" in (workspace / "NOTES.md").read_text()
    final = [u for u in _updates(record) if u["sessionUpdate"] == "tool_call_update"][-1]
    assert final["status"] == "completed" and final["content"][0]["type"] == "diff"


def test_a_story_cancelled_mid_stream(workspace: Path, home: Path) -> None:
    steps = [
        *_start(workspace),
        _prompt("Tell me a long story", background="story"),
        {"op": "waitFor", "update": {"sessionUpdate": "agent_message_chunk"}, "count": 5},
        {"op": "cancel"},
        {"op": "await", "name": "story"},
        _prompt("Hello"),
    ]
    record = _run_client(steps, offline_env(home))
    _assert_strict(record)
    waited, _, story, again = record["steps"][3:]
    assert story["result"] == {"stopReason": "cancelled"}
    assert again["result"] == {"stopReason": "end_turn"}
    # The index counts every update received, the session's commands too.
    message_id = record["updates"][waited["index"]]["update"]["messageId"]
    told = "".join(
        u["content"]["text"]
        for u in _updates(record)
        if u["sessionUpdate"] == "agent_message_chunk" and u["messageId"] == message_id
    )
    assert told and "*The end.*" not in told


def test_a_fresh_daemon_replays_a_loaded_session_as_it_streamed(
    workspace: Path, home: Path
) -> None:
    live = _run_client([*_start(workspace), _prompt("Summarize README.md")], offline_env(home))
    _assert_strict(live)
    session_id = live["steps"][1]["result"]["sessionId"]

    load = {"op": "load", "sessionId": session_id, "cwd": str(workspace)}
    replayed = _run_client([INITIALIZE, load], offline_env(home))
    _assert_strict(replayed)
    assert replayed["steps"][1]["result"]["modes"]["currentModeId"] == "ask"
    assert {entry["sessionId"] for entry in replayed["updates"]} == {session_id}
    first, *rest = _updates(replayed)
    assert first["sessionUpdate"] == "user_message_chunk"
    assert first["content"] == {"type": "text", "text": "Summarize README.md"}
    # Part for part and tool call for tool call, as it streamed.
    assert rest == as_replayed(_updates(live))


TREE = 'Delegate "Summarize README.md" and "delegate `list the files`"'


@pytest.mark.parametrize("child_sessions", [False, True], ids=["stable", "child-sessions"])
def test_sub_conversations_stream_and_replay_as_a_strict_client_takes_them(
    workspace: Path, home: Path, child_sessions: bool
) -> None:
    """Two children in parallel and a grandchild: to the stable client all under
    the session, with `_meta.parley`; to the client that takes child sessions
    (the SDK's unstable one), each child as its own session, announced first."""
    initialize = (
        {**INITIALIZE, "clientCapabilities": {"subagents": {}}} if child_sessions else INITIALIZE
    )
    live = _run_client(
        [initialize, {"op": "new", "cwd": str(workspace)}, _prompt(TREE)],
        offline_env(home),
        unstable=child_sessions,
    )
    _assert_strict(live)
    root = live["steps"][1]["result"]["sessionId"]
    assert live["steps"][2]["result"] == {"stopReason": "end_turn"}
    sessions = {entry["sessionId"] for entry in live["updates"]}
    kinds = {entry["update"]["sessionUpdate"] for entry in live["updates"]}
    refs = [entry["update"]["_meta"]["parley"]["conversation"] for entry in live["updates"]]
    children = {ref["id"] for ref in refs if ref["depth"] > 0}
    assert len(children) == 3
    if child_sessions:
        # Nothing the unstable client does not know, and each child its own session.
        assert live["ignoredFields"] == []
        assert sessions == children | {root} and "subagent_update" in kinds
    else:
        assert sessions == {root} and "subagent_update" not in kinds

    load = {"op": "load", "sessionId": root, "cwd": str(workspace)}
    replayed = _run_client([initialize, load], offline_env(home), unstable=child_sessions)
    _assert_strict(replayed)

    def per_session(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for update in _updates(record):
            depth = update["_meta"]["parley"]["conversation"]["depth"]
            if depth == 0 and update["sessionUpdate"] == "user_message_chunk":
                continue  # the client's own prompt, only replayed
            key = update["_meta"]["parley"]["conversation"]["id"]
            grouped.setdefault(key, []).append(update)
        return {key: as_replayed(updates) for key, updates in grouped.items()}

    assert per_session(replayed) == per_session(live)


SESSION_ID = "sess_scripted"
STILL_HERE = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": "ok"}}


def _update(update: dict[str, Any]) -> dict[str, Any]:
    params = {"sessionId": SESSION_ID, "update": update}
    return {"jsonrpc": "2.0", "method": "session/update", "params": params}


def _tool_call(**fields: Any) -> dict[str, Any]:
    return _update({"sessionUpdate": "tool_call", "toolCallId": "call_1", **fields})


def _run_scripted(
    workspace: Path, sent: list[dict[str, Any]], stop_reason: str = "end_turn"
) -> dict[str, Any]:
    """The client's record of one prompt to an agent that answers it by sending
    `sent`, then an update that is fine, then `stop_reason`."""
    plan = {
        "initialize": {"result": {"protocolVersion": 1, "agentCapabilities": {}}},
        "session/new": {"result": {"sessionId": SESSION_ID}},
        "session/prompt": {
            "send": [*sent, _update(STILL_HERE)],
            "result": {"stopReason": stop_reason},
        },
    }
    agent = (sys.executable, scripted_agent.__file__, json.dumps(plan))
    record = _run_client([*_start(workspace), _prompt("go")], {}, agent)
    assert record["errors"] == [], _described(record["errors"])
    # The connection went on: the last update arrived and the prompt was answered.
    assert _updates(record)[-1] == STILL_HERE
    assert record["steps"][-1]["result"] == {"stopReason": stop_reason}
    return record


@dataclass(frozen=True)
class Invalid:
    """What a scripted agent sends during a prompt, and how the client must take it."""

    sent: list[dict[str, Any]]
    caught_by: set[str]
    problem: str
    stop_reason: str = "end_turn"
    # How many of the updates sent, the fine one after them included, reach the handler.
    delivered: int = 1


INVALID = {
    "unknown-update-kind": Invalid(
        [_update({"sessionUpdate": "telepathy", "content": STILL_HERE["content"]})],
        {"schema", "sdk-log"},
        "update.sessionUpdate: expected one of user_message_chunk, ",
    ),
    "tool-call-without-title": Invalid(
        [_tool_call()],
        {"schema", "sdk-log"},
        "update.title: Invalid input: expected string",
    ),
    "permission-request-without-options": Invalid(
        [
            {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "session/request_permission",
                "params": {"sessionId": SESSION_ID, "toolCall": {"toolCallId": "call_1"}},
            }
        ],
        {"schema", "sdk-refused"},
        "options: Invalid input: expected array",
    ),
    # The SDK drops what is invalid in an optional field and delivers the rest.
    "tool-call-kind-the-sdk-drops": Invalid(
        [_tool_call(title="Look", kind="teleport")],
        {"altered"},
        'update.kind: sent "teleport", the SDK keeps null',
        delivered=2,
    ),
    "tool-call-content-the-sdk-drops": Invalid(
        [_tool_call(title="Look", content=[{"type": "hologram"}])],
        {"altered"},
        'update.content: sent [{"type":"hologram"}], the SDK keeps []',
        delivered=2,
    ),
    # The SDK hands answers on unchecked: only the client's own check sees this one.
    "unknown-stop-reason": Invalid(
        [], {"schema"}, "stopReason: expected one of end_turn, ", "bored"
    ),
}


@pytest.mark.parametrize("case", INVALID.values(), ids=INVALID.keys())
def test_what_a_strict_client_cannot_take_is_reported(workspace: Path, case: Invalid) -> None:
    record = _run_scripted(workspace, case.sent, case.stop_reason)
    assert {error["source"] for error in record["validationErrors"]} == case.caught_by
    problems = [p for error in record["validationErrors"] for p in error.get("problems", [])]
    assert problems and all(problem.startswith(case.problem) for problem in problems)
    # What the SDK refused never reached the client's handlers.
    assert len(record["updates"]) == case.delivered
    assert record["permissionRequests"] == []


def test_a_field_the_client_does_not_know_is_ignored_not_refused(workspace: Path) -> None:
    record = _run_scripted(workspace, [_tool_call(title="Look", mood="curious")])
    assert record["validationErrors"] == []
    assert record["ignoredFields"] == [{"method": "session/update", "path": "update.mood"}]
    assert _updates(record)[0] == {
        "sessionUpdate": "tool_call",
        "toolCallId": "call_1",
        "title": "Look",
    }


def _endings(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each tool call's last update that gave it a status, by call id."""
    return {
        u["toolCallId"]: u
        for u in _updates(record)
        if u["sessionUpdate"] in ("tool_call", "tool_call_update") and u.get("status")
    }


def _shown(update: dict[str, Any]) -> str:
    return "".join(part["content"]["text"] for part in update["content"])


async def test_one_of_two_calls_side_by_side_is_cancelled_and_the_other_finishes(
    workspace: Path, home: Path
) -> None:
    started = {
        "sessionUpdate": "tool_call_update",
        "toolCallId": SLEEPER.id,
        "content": [{"content": {"text": "started\n"}}],
    }
    cancel = {"sessionId": "$session", "toolCallId": SLEEPER.id}
    steps = [
        *_start(workspace),
        {"op": "permission", "answer": "allow_once"},
        _prompt("Run both", background="turn"),
        {"op": "waitFor", "update": started},
        {"op": "request", "method": TOOL_CALL_CANCEL, "params": cancel},
        {"op": "await", "name": "turn"},
    ]
    async with ReplayServer() as provider:
        serve_two_calls(provider)
        # In a thread: the provider answers on this loop while the client runs.
        record = await asyncio.to_thread(_run_client, steps, replay_env(home, provider.url))
        (_, after_tools) = provider.requests
    _assert_strict(record)
    cancelled, turn = record["steps"][-2:]
    assert cancelled["result"] == {} and turn["result"] == {"stopReason": "end_turn"}
    ended = _endings(record)
    assert (ended[SLEEPER.id]["status"], _shown(ended[SLEEPER.id])) == ("failed", CALL_CANCELLED)
    assert ended[WAITER.id]["status"] == "completed" and WAITER_SAW in _shown(ended[WAITER.id])
    results = {
        m["tool_call_id"]: m["content"] for m in after_tools.json["messages"] if m["role"] == "tool"
    }
    assert results[SLEEPER.id] == CALL_CANCELLED and WAITER_SAW in results[WAITER.id]
    assert _answer(record)


def _switch(mode: str) -> list[Step]:
    """session/set_mode, and the client told of the change."""
    params = {"sessionId": "$session", "modeId": mode}
    told = {"sessionUpdate": "current_mode_update", "currentModeId": mode}
    return [
        {"op": "request", "method": "session/set_mode", "params": params},
        {"op": "waitFor", "update": told},
    ]


def test_every_mode_switched_mid_session_and_kept_across_a_load(
    workspace: Path, home: Path
) -> None:
    steps = [
        *_start(workspace),
        {"op": "permission", "answer": "reject_once"},
        *_switch("full_auto"),
        _prompt("Run `touch auto.txt`"),
        *_switch("read_only"),
        _prompt('Write a note to KEPT.md saying "no"'),
        *_switch("ask"),
        _prompt('Write a note to ASKED.md saying "asked"'),
        *_switch("accept_edits"),
        _prompt('Write a note to EDITS.md saying "accepted"'),
    ]
    live = _run_client(steps, offline_env(home))
    _assert_strict(live)
    created = live["steps"][1]["result"]
    assert created["modes"]["currentModeId"] == "ask"
    offered = [mode["id"] for mode in created["modes"]["availableModes"]]
    assert offered == ["ask", "accept_edits", "read_only", "full_auto"]
    switched = [step for step in live["steps"] if step.get("method") == "session/set_mode"]
    assert [step["result"] for step in switched] == [{}] * 4
    prompted = [step["result"] for step in live["steps"] if step["op"] == "prompt"]
    assert prompted == [{"stopReason": "end_turn"}] * 4
    # Full auto ran the command unasked, read only refused the write unasked,
    # ask asked (and was told no), accept edits wrote unasked.
    (asked,) = live["permissionRequests"]
    assert asked["request"]["toolCall"]["rawInput"]["path"] == "ASKED.md"
    assert (workspace / "auto.txt").exists() and (workspace / "EDITS.md").exists()
    assert not (workspace / "KEPT.md").exists() and not (workspace / "ASKED.md").exists()
    modes = [
        u["currentModeId"] for u in _updates(live) if u["sessionUpdate"] == "current_mode_update"
    ]
    assert modes == ["full_auto", "read_only", "ask", "accept_edits"]

    session_id = created["sessionId"]
    steps = [
        INITIALIZE,
        {"op": "load", "sessionId": session_id, "cwd": str(workspace)},
        _prompt('Write a note to AGAIN.md saying "again"', sessionId=session_id),
    ]
    loaded = _run_client(steps, offline_env(home))
    _assert_strict(loaded)
    assert loaded["steps"][1]["result"]["modes"]["currentModeId"] == "accept_edits"
    replayed = [
        u["currentModeId"] for u in _updates(loaded) if u["sessionUpdate"] == "current_mode_update"
    ]
    assert replayed == modes
    # Still accepting edits: the write is made without a question.
    assert loaded["steps"][2]["result"] == {"stopReason": "end_turn"}
    assert loaded["permissionRequests"] == [] and (workspace / "AGAIN.md").exists()


def test_a_plan_and_an_edit_as_a_strict_client_takes_them_live_and_replayed(
    workspace: Path, home: Path
) -> None:
    steps = [
        *_start(workspace),
        {"op": "permission", "answer": "allow_once"},
        _prompt('Make a plan "Read it", "Fix it"'),
        _prompt('Replace "frobs" with "frobnicates" in README.md'),
        _prompt('Replace "line" with "row" in README.md'),  # once in the file: it lands
        _prompt('Replace "i" with "I" in README.md'),  # many times: refused, lines named
    ]
    live = _run_client(steps, offline_env(home))
    _assert_strict(live)
    updates = _updates(live)
    plans = [u["entries"] for u in updates if u["sessionUpdate"] == "plan"]
    assert [[entry["status"] for entry in plan] for plan in plans] == [
        ["in_progress", "pending"],
        ["completed", "in_progress"],
        ["completed", "completed"],
    ]
    (diff,), (second,) = [
        request["request"]["toolCall"]["content"] for request in live["permissionRequests"][:2]
    ]
    assert (diff["type"], diff["newText"]) == (
        "diff",
        "# Widget\n\nA widget that frobnicates.\nSecond line.\n",
    )
    assert second["newText"].endswith("Second row.\n")
    # The ambiguous edit is asked about as it is, the user told why it will fail.
    (warned,) = live["permissionRequests"][2]["request"]["toolCall"]["content"]
    assert warned["content"]["text"].startswith(
        "As it stands, this call will fail: the edit: old_text occurs 3 times in README.md"
    )
    failed = [u for u in updates if u.get("status") == "failed"]
    assert failed[-1]["rawOutput"]["output"].startswith(
        "the edit: old_text occurs 3 times in README.md, at lines 1, 3, 3;"
    )
    assert (workspace / "README.md").read_text() == (
        "# Widget\n\nA widget that frobnicates.\nSecond row.\n"
    )

    session_id = live["steps"][1]["result"]["sessionId"]
    load = {"op": "load", "sessionId": session_id, "cwd": str(workspace)}
    replayed = _run_client([INITIALIZE, load], offline_env(home))
    _assert_strict(replayed)
    again = [u for u in _updates(replayed) if u["sessionUpdate"] != "user_message_chunk"]
    live_kept = [u for u in as_replayed(updates) if u["sessionUpdate"] != "user_message_chunk"]
    assert again == live_kept


def _reference_server(name: str, package: str, *args: str) -> dict[str, Any]:
    """One of MCP's reference servers from the npm registry, started with node over stdio."""
    assert NODE is not None
    script = TS / "node_modules" / "@modelcontextprotocol" / package / "dist" / "index.js"
    return {"name": name, "command": NODE, "args": [str(script), *args], "env": []}


def _server_ready(name: str) -> Step:
    """Until the client is told, as a notice, that the server is up."""
    told = {"parley": {"mcpServer": {"name": name, "state": "ready"}}}
    return {"op": "waitFor", "update": {"sessionUpdate": "notice", "_meta": told}}


async def test_mcps_reference_servers_tools_reach_the_model_and_a_strict_client(
    workspace: Path, home: Path
) -> None:
    servers = [
        _reference_server("everything", "server-everything", "stdio"),
        _reference_server("files", "server-filesystem", str(workspace)),
    ]
    calls = (
        PlannedToolCall("call_echo", "mcp__everything__echo", {"message": "hi"}),
        PlannedToolCall("call_image", "mcp__everything__get-tiny-image", {}),
        PlannedToolCall(
            "call_read", "mcp__files__read_text_file", {"path": str(workspace / "README.md")}
        ),
    )
    with_notices = {**INITIALIZE["clientCapabilities"], "session": {"notices": {}}}
    steps = [
        {**INITIALIZE, "clientCapabilities": with_notices},
        {"op": "new", "cwd": str(workspace), "params": {"mcpServers": servers}},
        _server_ready("everything"),
        _server_ready("files"),
        {"op": "permission", "answer": "allow_once"},
        _prompt("Use the reference servers"),
    ]
    async with ReplayServer() as provider:
        provider.enqueue(200, "text/event-stream", tool_calls_stream(*calls))
        provider.enqueue(200, "text/event-stream", text_stream("Done."))
        record = await asyncio.to_thread(_run_client, steps, replay_env(home, provider.url))
        offered, answered = provider.requests
    _assert_strict(record)
    assert record["steps"][-1]["result"] == {"stopReason": "end_turn"}
    ended = _endings(record)
    assert [ended[call.id]["status"] for call in calls] == ["completed"] * 3
    assert ended["call_echo"]["rawOutput"]["output"] == "Echo: hi"
    assert "A widget that frobs." in ended["call_read"]["rawOutput"]["output"]
    images = [part for part in ended["call_image"]["content"] if part["content"]["type"] == "image"]
    assert images and images[0]["content"]["mimeType"] == "image/png"
    (everything,) = [
        u for u in _updates(record) if u["sessionUpdate"] == "notice" and "everything" in u["title"]
    ]
    listed = everything["_meta"]["parley"]["mcpServer"]["tools"]
    assert "mcp__everything__echo" in listed and everything["severity"] == "info"
    assert everything["title"] == f"MCP server everything is ready with {len(listed)} tool(s)"
    names = {tool["function"]["name"] for tool in offered.json["tools"]}
    assert {"mcp__everything__echo", "mcp__files__read_text_file"} <= names
    assert images[0]["content"]["data"] in json.dumps(answered.json)
