"""The core flow over Content-Length framing, driven by pytest-lsp's client
(pygls' JsonRPCClient), as LSP-style editor backends talk to the daemon."""

from __future__ import annotations

import asyncio
import copy
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from pygls.client import JsonRPCClient
from pygls.protocol import JsonRPCProtocol, default_converter
from pytest_lsp import ClientServerConfig

from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import offline_env


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


@pytest_lsp.fixture(config=_CONFIG)
async def client(lsp_client: AcpTestClient) -> Any:
    yield
    # The daemon exits when its stdin closes. Stopped here, before the check:
    # pytest-lsp skips its own stop when this teardown raises, and a daemon left
    # behind is collected after its event loop has closed.
    assert lsp_client._server is not None and lsp_client._server.stdin is not None
    lsp_client._server.stdin.close()
    await lsp_client.stop()
    protocol: AcpProtocol = lsp_client.protocol  # type: ignore[assignment]
    assert protocol.violations == []


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
