"""MCP servers through the real daemon, driven by the ACP Python SDK: the
suite's own server (written with the official `mcp` SDK) over stdio and
streamable HTTP, one that crashes mid-call and one that never starts, with a
model on the real OpenAI Chat Completions path over loopback calling them."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import acp
import pytest
from acp import text_block
from acp.schema import AcpMcpServer, EnvVariable, HttpMcpServer, McpServerStdio

from parley_protocol.parley import TOOL_CALL_CANCEL
from parleyd.offline.script import PlannedToolCall
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.chat_streams import text_stream, tool_calls_stream
from tests.support.daemon import replay_env
from tests.support.mcp_server import PNG_1X1
from tests.support.mcp_servers import SCRIPT, http_server, stdio_server
from tests.support.replay_server import ReplayServer

CANCEL_CALL = TOOL_CALL_CANCEL.removeprefix("_")


def _status(update: Any) -> dict[str, Any] | None:
    """What an update says of an MCP server, if it says anything."""
    if update.session_update != "session_info_update" or not update.field_meta:
        return None
    status: dict[str, Any] | None = update.field_meta["parley"].get("mcpServer")
    return status


def _state_of(name: str, state: str, failures: int | None = None) -> Any:
    def wanted(update: Any) -> bool:
        status = _status(update)
        return (
            status is not None
            and (status["name"], status["state"]) == (name, state)
            and failures in (None, status["failures"])
        )

    return wanted


def _endings(client: RecordingClient) -> dict[str, Any]:
    return {
        u.tool_call_id: u
        for u in client.updates
        if u.session_update == "tool_call_update" and u.status in ("completed", "failed")
    }


def _stdio(server: dict[str, Any]) -> McpServerStdio:
    return McpServerStdio(
        name=server["name"],
        command=server["command"],
        args=server["args"],
        env=[EnvVariable(**variable) for variable in server["env"]],
    )


async def test_a_stdio_servers_tools_are_asked_for_called_shown_and_restarted_after_a_crash(
    workspace: Path, home: Path
) -> None:
    served = _stdio(stdio_server("tools", PARLEY_TEST_VALUE="42"))
    broken = McpServerStdio(name="broken", command="/no/such/server", args=[], env=[])
    calls = (
        PlannedToolCall("call_echo", "mcp__tools__echo", {"text": "hi"}),
        PlannedToolCall("call_picture", "mcp__tools__picture", {}),
        PlannedToolCall("call_where", "mcp__tools__where", {}),
    )
    client = RecordingClient()
    async with ReplayServer() as provider:
        provider.enqueue(200, "text/event-stream", tool_calls_stream(*calls))
        crash = PlannedToolCall("call_crash", "mcp__tools__crash", {})
        provider.enqueue(200, "text/event-stream", tool_calls_stream(crash))
        provider.enqueue(200, "text/event-stream", text_stream("Done."))
        async with acp_daemon(replay_env(home, provider.url), client) as (connection, _):
            init = await connection.initialize(protocol_version=1)
            assert init.agent_capabilities.mcp_capabilities.http is True
            assert init.agent_capabilities.mcp_capabilities.sse is True
            session = await connection.new_session(cwd=str(workspace), mcp_servers=[served, broken])
            ready = await client.wait_for(_state_of("tools", "ready"))
            down = await client.wait_for(_state_of("broken", "restarting"))
            answer = await connection.prompt(
                session_id=session.session_id, prompt=[text_block("Use the tools")]
            )
            assert answer.stop_reason == "end_turn"
            # The server that crashed mid-call is started again, once.
            await client.wait_for(_state_of("tools", "ready", failures=1))
            # A load names its servers anew: the session's are stopped, these
            # started afresh (no failures behind them), and the broken one not at all.
            fresh = _state_of("tools", "ready", failures=0)
            loaded_at = len(client.updates)
            await connection.load_session(
                cwd=str(workspace), session_id=session.session_id, mcp_servers=[served]
            )
            await client.wait_for(lambda _: sum(map(fresh, client.updates)) == 2)
            with pytest.raises(acp.RequestError, match=r"mcpServers\[0\]: unknown type 'acp'"):
                over_acp = AcpMcpServer(type="acp", name="a", server_id="x")
                await connection.new_session(cwd=str(workspace), mcp_servers=[over_acp])
        first, after_calls, after_crash = provider.requests
    # The client knew the session before it heard of its servers.
    opened = next(n for n, f in enumerate(client.frames) if "sessionId" in (f.get("result") or {}))
    told = next(n for n, f in enumerate(client.frames) if "mcpServer" in json.dumps(f))
    assert opened < told
    assert _status(ready)["tools"] == [
        "mcp__tools__echo",
        "mcp__tools__picture",
        "mcp__tools__crash",
        "mcp__tools__wait",
        "mcp__tools__where",
        "mcp__tools__pid",
    ]
    assert "cannot start it: No such file or directory: /no/such/server" in _status(down)["error"]
    after_load = [_status(u) for u in client.updates[loaded_at:]]
    assert all(status is None or status["name"] == "tools" for status in after_load)
    offered = [tool["function"]["name"] for tool in first.json["tools"]]
    assert "read_file" in offered and "mcp__tools__echo" in offered
    echo = next(t for t in first.json["tools"] if t["function"]["name"] == "mcp__tools__echo")
    assert echo["function"]["parameters"]["required"] == ["text"]
    # Asked like a built-in, under the tool's own title and its server's name.
    assert sorted(request.title for request in client.permission_requests) == [
        "Draw a picture (tools)",
        "crash (tools)",
        "echo (tools)",
        "where (tools)",
    ]
    ended = _endings(client)
    assert ended["call_echo"].raw_output["output"] == "echo: hi"
    assert ended["call_where"].raw_output["output"] == f"{workspace} 42"
    kinds = {request.title: request.kind for request in client.permission_requests}
    assert (kinds["Draw a picture (tools)"], kinds["echo (tools)"]) == ("read", "other")
    shown = [part.model_dump(by_alias=True) for part in ended["call_picture"].content]
    assert any(part.get("content", {}).get("data") == PNG_1X1 for part in shown)
    assert ended["call_crash"].status == "failed"
    assert ended["call_crash"].raw_output["output"] == (
        "The MCP server 'tools' stopped during the call (its last words: crashing on purpose)."
    )
    # The model read the results, the picture's image too; then the crash.
    sent = json.dumps(after_calls.json)
    assert "echo: hi" in sent and PNG_1X1 in sent
    assert "stopped during the call" in json.dumps(after_crash.json)


@pytest.fixture
def config(home: Path) -> Path:
    """A config.toml that gives every session the suite's server over stdio."""
    path = home / "config.toml"
    home.mkdir()
    path.write_text(
        f"[mcp_servers.configured]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(str(SCRIPT))}]\n"
    )
    return path


async def test_configured_and_http_servers_answer_allow_always_asks_once_and_calls_cancel(
    workspace: Path, home: Path, config: Path
) -> None:
    client = RecordingClient(permission_answer="allow_always")
    async with http_server() as url, ReplayServer() as provider:
        for text in ("one", "two"):
            echo = PlannedToolCall(f"call_{text}", "mcp__web__echo", {"text": text})
            provider.enqueue(200, "text/event-stream", tool_calls_stream(echo))
        wait = PlannedToolCall("call_wait", "mcp__configured__wait", {})
        provider.enqueue(200, "text/event-stream", tool_calls_stream(wait))
        provider.enqueue(200, "text/event-stream", text_stream("Done."))
        env = {**replay_env(home, provider.url), "PARLEY_CONFIG": str(config)}
        async with acp_daemon(env, client) as (connection, _):
            await connection.initialize(protocol_version=1)
            web = HttpMcpServer(type="http", name="web", url=url, headers=[])
            session = await connection.new_session(cwd=str(workspace), mcp_servers=[web])
            await client.wait_for(_state_of("web", "ready"))
            await client.wait_for(_state_of("configured", "ready"))
            turn = connection.prompt(session_id=session.session_id, prompt=[text_block("go")])
            answer = asyncio.ensure_future(turn)
            await client.wait_for(
                lambda u: (
                    u.session_update == "tool_call_update"
                    and u.tool_call_id == "call_wait"
                    and u.status == "in_progress"
                )
            )
            params = {"sessionId": session.session_id, "toolCallId": "call_wait"}
            assert await connection.ext_method(CANCEL_CALL, params) == {}
            assert (await answer).stop_reason == "end_turn"
    ended = _endings(client)
    assert [ended[f"call_{t}"].raw_output["output"] for t in ("one", "two")] == [
        "echo: one",
        "echo: two",
    ]
    assert ended["call_wait"].status == "failed"
    # "Always" for the http server's echo: asked once; the configured one's wait asked too.
    assert [request.title for request in client.permission_requests] == [
        "echo (web)",
        "wait (configured)",
    ]
    offered = {tool["function"]["name"] for tool in provider.requests[0].json["tools"]}
    assert {"mcp__web__echo", "mcp__configured__wait"} <= offered
