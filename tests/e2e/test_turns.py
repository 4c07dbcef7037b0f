"""Turn endings over the raw wire: every way to cancel, a pending permission
request, stop reasons from real recorded streams, a daemon killed mid-turn,
and a client that stops reading."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import offline_env, replay_env
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.replay_server import ReplayServer


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Turns\n\nAbout turns.\n")
    return root


async def _new_session(daemon: RawDaemon, workspace: Path) -> str:
    await daemon.initialize()
    answer = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
    session_id: str = answer["result"]["sessionId"]
    return session_id


async def _start_prompt(daemon: RawDaemon, session_id: str, text: str, request_id: int) -> None:
    await daemon.send(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "session/prompt",
            "params": {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]},
        }
    )


async def _until(daemon: RawDaemon, wanted: Any) -> dict[str, Any]:
    """Read frames until one satisfies `wanted`."""
    while True:
        frame = await daemon.receive()
        if wanted(frame):
            return frame


def _is_chunk(frame: dict[str, Any]) -> bool:
    update = frame.get("params", {}).get("update", {})
    return update.get("sessionUpdate") == "agent_message_chunk"


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("session/cancel", lambda session, request: {"sessionId": session}),
        ("$/cancel_request", lambda session, request: {"requestId": request}),
        ("$/cancelRequest", lambda session, request: {"id": request}),
    ],
)
async def test_every_cancel_ends_the_prompt_with_cancelled(
    tmp_path: Path, workspace: Path, method: str, params: Any
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        session_id = await _new_session(daemon, workspace)
        await _start_prompt(daemon, session_id, "Tell me a long story", 50)
        await _until(daemon, _is_chunk)
        await daemon.send({"jsonrpc": "2.0", "method": method, "params": params(session_id, 50)})
        answer = await _until(daemon, lambda frame: frame.get("id") == 50)
        assert answer["result"] == {"stopReason": "cancelled"}


async def test_cancel_while_permission_is_pending(tmp_path: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        session_id = await _new_session(daemon, workspace)
        await _start_prompt(daemon, session_id, 'Write a note saying "later"', 60)
        ask = await _until(daemon, lambda f: f.get("method") == "session/request_permission")
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
        )
        # The daemon withdraws its question, then answers the prompt.
        withdrawn = await _until(daemon, lambda f: f.get("method") == "$/cancel_request")
        assert withdrawn["params"] == {"requestId": ask["id"]}
        answer = await _until(daemon, lambda frame: frame.get("id") == 60)
        assert answer["result"] == {"stopReason": "cancelled"}
        # ACP still has the client answer the withdrawn request; that is harmless.
        await daemon.send(
            {"jsonrpc": "2.0", "id": ask["id"], "error": {"code": -32800, "message": "cancelled"}}
        )
        assert not (workspace / "NOTES.md").exists()
        again = await daemon.request(
            "session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": "Hi"}]}
        )
        assert again["result"] == {"stopReason": "end_turn"}


@pytest.mark.parametrize(
    ("case", "stop_reason"),
    [
        ("openai_chat/finish_reason_length", "max_tokens"),
        ("openai_chat/refusal", "refusal"),
        ("openai_chat/text_usage_chunk", "end_turn"),
    ],
)
async def test_stop_reasons_from_recorded_streams(
    tmp_path: Path, workspace: Path, case: str, stop_reason: str
) -> None:
    async with ReplayServer() as provider:
        provider.enqueue_fixture(case)
        async with raw_daemon(replay_env(tmp_path / "home", provider.url)) as daemon:
            session_id = await _new_session(daemon, workspace)
            answer = await daemon.request(
                "session/prompt",
                {"sessionId": session_id, "prompt": [{"type": "text", "text": "go"}]},
            )
        sent = provider.requests[0].json
    assert answer["result"] == {"stopReason": stop_reason}
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][-1] == {"role": "user", "content": "go"}
    assert {tool["function"]["name"] for tool in sent["tools"]} >= {"read_file", "run_shell"}


async def test_a_killed_daemon_loses_only_the_unfinished_response(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _new_session(daemon, workspace)
        done = await daemon.request(
            "session/prompt",
            {"sessionId": session_id, "prompt": [{"type": "text", "text": "Summarize README.md"}]},
        )
        assert done["result"] == {"stopReason": "end_turn"}
        live = [f["params"]["update"] for f in daemon.frames if f.get("method")]
        await _start_prompt(daemon, session_id, "Tell me a long story", 70)
        for _ in range(10):
            await _until(daemon, _is_chunk)
        daemon.process.send_signal(signal.SIGKILL)
        await daemon.process.wait()

    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        await daemon.send(
            {
                "jsonrpc": "2.0",
                "id": 80,
                "method": "session/load",
                "params": {"sessionId": session_id, "cwd": str(workspace), "mcpServers": []},
            }
        )
        loaded = await _until(daemon, lambda frame: frame.get("id") == 80)
        assert loaded["result"] == {}
        replayed = [f["params"]["update"] for f in daemon.frames if f.get("method")]
        # The completed turn comes back exactly; of the killed one, its prompt.
        assert replayed[1 : len(live) + 1] == live
        assert replayed[len(live) + 1]["content"]["text"] == "Tell me a long story"
        assert len(replayed) == len(live) + 2
        again = await daemon.request(
            "session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": "Hi"}]}
        )
        assert again["result"] == {"stopReason": "end_turn"}


async def test_a_client_that_stops_reading_does_not_stall_its_requests(
    tmp_path: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        session_id = await _new_session(daemon, workspace)
        await _start_prompt(daemon, session_id, "Tell me a long story", 90)
        await _until(daemon, _is_chunk)
        # Stop reading while the story streams, and keep talking.
        await asyncio.sleep(1.0)
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
        )
        await daemon.send(
            {
                "jsonrpc": "2.0",
                "id": 91,
                "method": "session/new",
                "params": {"cwd": str(workspace), "mcpServers": []},
            }
        )
        answers: dict[int, dict[str, Any]] = {}
        while len(answers) < 2:
            frame = await daemon.receive()
            if frame.get("id") in (90, 91):
                answers[frame["id"]] = frame
        assert answers[90]["result"] == {"stopReason": "cancelled"}
        assert answers[91]["result"]["sessionId"] != session_id


async def test_session_settings_reach_the_provider_and_keys_never_reach_disk(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with ReplayServer() as provider:
        env = replay_env(home, provider.url)
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        async with raw_daemon(env) as daemon:
            await daemon.initialize()
            refused = await daemon.request(
                "session/new",
                {
                    "cwd": str(workspace),
                    "mcpServers": [],
                    "_meta": {"parley": {"apiKey": "sk-over-the-wire"}},
                },
            )
            assert refused["error"]["code"] == -32602
            assert "apiKey" in refused["error"]["message"]
            created = await daemon.request(
                "session/new",
                {
                    "cwd": str(workspace),
                    "mcpServers": [],
                    "_meta": {"parley": {"model": "gpt-4.1-mini", "maxOutputTokens": 77}},
                },
            )
            session_id = created["result"]["sessionId"]
            await daemon.request(
                "session/prompt",
                {"sessionId": session_id, "prompt": [{"type": "text", "text": "go"}]},
            )
        sent = provider.requests[0]
    assert sent.json["model"] == "gpt-4.1-mini"
    assert sent.json["max_completion_tokens"] == 77
    assert sent.headers["authorization"] == f"Bearer {env['OPENAI_API_KEY']}"
    for path in home.rglob("*"):
        if path.is_file():
            assert env["OPENAI_API_KEY"].encode() not in path.read_bytes(), path
