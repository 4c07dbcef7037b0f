"""The API key the daemon was given is written nowhere: not in a frame, not in the
session log, not in a log line, however it comes back (a tool reading it from a
file, a provider error echoing the request's `Authorization` header)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from parleyd.offline.script import PlannedToolCall
from tests.support.chat_streams import tool_calls_stream
from tests.support.daemon import daemon_env, replay_env
from tests.support.raw_daemon import raw_daemon
from tests.support.replay_server import ReplayServer


async def test_the_key_is_redacted_from_frames_session_log_and_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    async with ReplayServer() as provider:
        env = {**replay_env(home, provider.url), "PARLEY_LOG": "DEBUG"}
        key = env["OPENAI_API_KEY"]
        (workspace / ".env").write_text(f"OPENAI_API_KEY={key}\n")
        echo = {"error": {"message": f"Malformed header Authorization: Bearer {key}"}}
        read_dotenv = PlannedToolCall("call_env", "read_file", {"path": ".env"})
        provider.enqueue(200, "text/event-stream", tool_calls_stream(read_dotenv))
        provider.enqueue(400, "application/json", json.dumps(echo).encode())
        async with raw_daemon(env) as daemon:
            await daemon.initialize()
            session = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
            session_id = session["result"]["sessionId"]
            prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": "read .env"}]}
            failed = await daemon.request("session/prompt", prompt)
            process = daemon.process
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()
            rest_of_stdout = await process.stdout.read()
            assert await asyncio.wait_for(process.wait(), 10) == 0
        # The key did reach the provider, and both ways back ran.
        assert provider.requests[0].headers["authorization"] == f"Bearer {key}"
        tool_result = provider.requests[1].json["messages"][-1]
        assert key in tool_result["content"]

    assert failed["error"]["code"] == -32010
    assert "Authorization: Bearer [REDACTED]" in failed["error"]["message"]
    wire = json.dumps(daemon.frames) + rest_of_stdout.decode()
    assert "OPENAI_API_KEY=[REDACTED]" in wire  # the read_file result shown to the client
    log = (home / "sessions" / session_id / "log.jsonl").read_text()
    assert "[REDACTED]" in log
    # The daemon inherited this test's stderr, which capfd holds.
    stderr = capfd.readouterr().err
    assert "Bearer [REDACTED]" in stderr  # the error was logged, without the key
    for written in (wire, log, stderr):
        assert key not in written


async def test_a_key_in_a_title_is_redacted_from_the_index(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "workspace"
    workspace.mkdir()
    key = "sk-test-pasted-into-a-prompt"
    env = daemon_env(home, PARLEY_PROVIDER="offline", OPENAI_API_KEY=key)
    async with raw_daemon(env) as daemon:
        await daemon.initialize()
        titled: list[str] = []
        # Titled by its first prompt, and by the client.
        for title in (None, f"Rotate {key}"):
            session_id = await daemon.new_session(workspace)
            if title is not None:
                params = {"sessionId": session_id, "title": title}
                assert (await daemon.request("session/set_title", params))["result"]
            prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": key}]}
            assert (await daemon.request("session/prompt", prompt))["result"]
            titled.append(session_id)
        listing = await daemon.request("session/list", {})
    titles = {s["sessionId"]: s["title"] for s in listing["result"]["sessions"]}
    assert [titles[session_id] for session_id in titled] == ["[REDACTED]", "Rotate [REDACTED]"]
    index = b"".join(path.read_bytes() for path in home.glob("index.sqlite*"))
    assert key.encode() not in index
