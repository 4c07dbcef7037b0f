"""The core flow over Content-Length framing, driven by pytest-lsp's client
(pygls' JsonRPCClient), as LSP-style editor backends talk to the daemon; and a
tree of sub-conversations, streamed and replayed after a restart, to such a
client, which takes no child sessions."""

from __future__ import annotations

import asyncio
import copy
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from pygls.client import JsonRPCClient
from pygls.protocol import JsonRPCProtocol, default_converter
from pytest_lsp import ClientServerConfig

from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import offline_env
from tests.support.transcripts import (
    check_tree_order,
    child_state,
    conversation_of,
    per_conversation,
    session_notes,
)


class AcpProtocol(JsonRPCProtocol):
    """Checks every frame the daemon sends against the ACP schema on arrival.

    pygls' converter turns the params and results it hands on into namedtuples
    (renaming `_meta`), so the raw frames are kept here, before conversion."""

    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self.checker = FrameChecker()
        self.frames: list[dict[str, Any]] = []
        # Kept, not raised: an exception here would stop pygls' reader and
        # leave the test waiting forever instead of failing.
        self.violations: list[str] = []

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" in data:  # the whole frame; nested objects arrive first, raw
            try:
                self.checker.received(data)
            except (AssertionError, OSError) as violation:
                self.violations.append(str(violation))
            # Copied: pygls' structuring rewrites nested params in place.
            self.frames.append(copy.deepcopy(data))
        return super().structure_message(data)

    def send_request(self, method: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        msg_id = kwargs.pop("msg_id", None) or str(uuid.uuid4())
        self.checker.sent({"id": msg_id, "method": method})
        return super().send_request(method, params, *args, msg_id=msg_id, **kwargs)


class AcpTestClient(JsonRPCClient):
    def __init__(self) -> None:
        super().__init__(protocol_cls=AcpProtocol, converter_factory=default_converter)
        self.permission_requests: list[Any] = []

        @self.feature("session/update")
        def on_update(params: Any) -> None:
            pass  # kept raw by AcpProtocol

        @self.feature("session/request_permission")
        def on_permission(params: Any) -> dict[str, Any]:
            self.permission_requests.append(params)
            return {"outcome": {"outcome": "selected", "optionId": "allow_once"}}

    @property
    def updates(self) -> list[dict[str, Any]]:
        protocol: AcpProtocol = self.protocol  # type: ignore[assignment]
        return [
            frame["params"]["update"]
            for frame in protocol.frames
            if frame.get("method") == "session/update"
        ]

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        return await asyncio.wait_for(self.protocol.send_request_async(method, params), 30)


# pytest-lsp fixes the server's environment when the fixture is declared, so the
# daemon's data lives in a folder made for this module.
_CONFIG = ClientServerConfig(
    server_command=[sys.executable, "-m", "parleyd.main"],
    client_factory=AcpTestClient,
    server_env=offline_env(Path(tempfile.mkdtemp(prefix="parley-pytest-lsp-"))),
)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Gadget\n\nIt gadgets.\n")
    return root


async def _stop(client: AcpTestClient) -> list[str]:
    """Stop the daemon (it exits when its stdin closes); return the schema
    violations its frames had."""
    assert client._server is not None and client._server.stdin is not None
    client._server.stdin.close()
    await client.stop()
    protocol: AcpProtocol = client.protocol  # type: ignore[assignment]
    return protocol.violations


@pytest_lsp.fixture(config=_CONFIG)
async def client(lsp_client: AcpTestClient) -> Any:
    yield
    # Stopped here, before the check: pytest-lsp skips its own stop when this
    # teardown raises, and a daemon left behind is collected after its event
    # loop has closed.
    assert await _stop(lsp_client) == []


@asynccontextmanager
async def _daemon(home: Path) -> AsyncIterator[AcpTestClient]:
    """A daemon of its own with its data in `home`, through pytest-lsp, for a
    test that restarts it."""
    config = ClientServerConfig(
        server_command=_CONFIG.server_command,
        client_factory=AcpTestClient,
        server_env=offline_env(home),
    )
    client = await config.start()
    assert isinstance(client, AcpTestClient)
    try:
        yield client
    finally:
        violations = await _stop(client)
    assert violations == []


async def test_core_flow_over_content_length(client: AcpTestClient, workspace: Path) -> None:
    init = await client.call("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
    assert init.protocolVersion == 1
    session = await client.call("session/new", {"cwd": str(workspace), "mcpServers": []})
    session_id = session.sessionId

    answer = await client.call(
        "session/prompt",
        {"sessionId": session_id, "prompt": [{"type": "text", "text": "Summarize README.md"}]},
    )
    assert answer.stopReason == "end_turn"
    kinds = [update["sessionUpdate"] for update in client.updates]
    assert {"agent_thought_chunk", "agent_message_chunk", "tool_call", "usage_update"} <= set(kinds)
    finished = [u for u in client.updates if u.get("status") == "completed"]
    assert "It gadgets." in finished[0]["content"][0]["content"]["text"]

    written = await client.call(
        "session/prompt",
        {"sessionId": session_id, "prompt": [{"type": "text", "text": "Write a note"}]},
    )
    assert written.stopReason == "end_turn"
    assert len(client.permission_requests) == 1
    assert (workspace / "NOTES.md").exists()

    story = asyncio.ensure_future(
        client.call(
            "session/prompt",
            {"sessionId": session_id, "prompt": [{"type": "text", "text": "a long story"}]},
        )
    )
    await asyncio.sleep(0.5)
    client.protocol.notify("session/cancel", {"sessionId": session_id})
    cancelled = await asyncio.wait_for(story, 5)
    assert cancelled.stopReason == "cancelled"

    listed = await client.call("session/list", {})
    assert [s.sessionId for s in listed.sessions] == [session_id]


# Two children in parallel; the second delegates once more.
TREE = 'Delegate "Read README.md and summarize it" and "delegate `list the files`"'


def _notes(client: AcpTestClient) -> list[dict[str, Any]]:
    protocol: AcpProtocol = client.protocol  # type: ignore[assignment]
    return session_notes(protocol.frames)


async def test_a_tree_of_conversations_under_meta_and_its_replay(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with _daemon(home) as first:
        await first.call("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        session = await first.call("session/new", {"cwd": str(workspace), "mcpServers": []})
        root = session.sessionId
        prompt = [{"type": "text", "text": TREE}]
        answer = await first.call("session/prompt", {"sessionId": root, "prompt": prompt})
        assert answer.stopReason == "end_turn"
        live = _notes(first)

    # Everything under the session's own id, each update naming its
    # conversation, each child announced on its parent before its own traffic.
    check_tree_order(live, root, child_sessions=False)
    assert "subagent_update" not in {note["update"]["sessionUpdate"] for note in live}
    refs: dict[str, dict[str, Any]] = {}
    states: dict[str, list[dict[str, Any]]] = {}
    for note in live:
        update = note["update"]
        if (state := child_state(update)) is not None:
            child = refs.setdefault(state[0], update["_meta"]["parley"]["subagent"]["conversation"])
            # On the parent's own `subagent` call, in the parent's conversation.
            assert update["toolCallId"] == child["parentToolCall"]
            assert conversation_of(update)["id"] == child["parent"]
            states.setdefault(state[0], []).append(state[1])
    ended = {"state": "idle", "stopReason": "end_turn"}
    assert list(states.values()) == [[{"state": "running"}, ended]] * 3
    (grandchild,) = [child for child, ref in refs.items() if ref["depth"] == 2]
    assert refs[refs[grandchild]["parent"]]["depth"] == 1
    for note in live:
        conversation = conversation_of(note["update"])
        assert conversation == refs.get(conversation["id"], conversation)

    usage = [n["update"] for n in live if n["update"]["sessionUpdate"] == "usage_update"]
    last_root = [u for u in usage if conversation_of(u)["depth"] == 0][-1]
    total = last_root["_meta"]["parley"]["usage"]["total"]
    assert total["responses"] == 8  # each of the four conversations answered in two
    assert total["toolUses"] == {"subagent": 3, "read_file": 1, "list_directory": 1}

    async with _daemon(home) as second:
        await second.call("initialize", {"protocolVersion": 1, "clientCapabilities": {}})
        await second.call(
            "session/load", {"sessionId": root, "cwd": str(workspace), "mcpServers": []}
        )
        protocol: AcpProtocol = second.protocol  # type: ignore[assignment]
        answer = next(frame for frame in reversed(protocol.frames) if "result" in frame)
        assert answer["result"]["modes"]["currentModeId"] == "ask"
        replayed = _notes(second)
    check_tree_order(replayed, root, child_sessions=False)
    assert per_conversation(replayed) == per_conversation(live)
