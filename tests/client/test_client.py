"""ParleyClient against the real daemon (scripted offline model), end to end.
Every frame the daemon sends is checked against ACP's schema on the way in."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parley_client.connection import ParleyClient
from parley_client.errors import DISCONNECTED, ParleyError
from parley_client.launch import DaemonProcess
from parley_client.permissions import PermissionHandler, allow_all, deny_all
from parley_client.transcript import Transcript, compare_replay
from parley_protocol.acp import (
    AgentMessageChunk,
    PermissionOptionId,
    RequestPermissionRequest,
    SessionNotification,
)
from parley_protocol.jsonrpc import ErrorCode
from tests.support.acp_conformance import FrameChecker
from tests.support.daemon import offline_env

README = "# Harbour\n\nA small sample project.\n"
WRITE_NOTE = 'Write a note saying "ship it"'


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    (folder / "README.md").write_text(README)
    return folder


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return offline_env(tmp_path / "home")


@pytest.fixture
async def client(env: dict[str, str]) -> AsyncIterator[ParleyClient]:
    checker = FrameChecker()
    async with ParleyClient(
        frame_observer=checker.observe,
        env=env,
        stderr="capture",
        permission_handler=allow_all,
    ) as client:
        await client.initialize()
        yield client
    assert checker.checked > 0  # the observer saw the daemon's frames


async def run_turn(client: ParleyClient, session_id: str, text: str) -> tuple[str, Transcript]:
    transcript = Transcript()
    transcript.add_text("user", text)
    response = await client.run_with_updates(
        client.prompt(session_id, text), transcript.apply, session_id
    )
    return response.stop_reason, transcript


async def test_initialize_describes_the_agent(env: dict[str, str]) -> None:
    async with ParleyClient(frame_observer=FrameChecker().observe, env=env) as client:
        answer = await client.initialize()
    assert answer.protocol_version == 1
    assert answer.agent_info is not None and answer.agent_info.name == "parley"
    assert answer.agent_capabilities is not None and answer.agent_capabilities.load_session


async def test_prompt_streams_thinking_text_tool_call_and_usage(
    client: ParleyClient, workspace: Path
) -> None:
    session_id = await client.new_session(workspace)
    stop, transcript = await run_turn(client, session_id, "Summarize README.md")

    assert stop == "end_turn"
    assert transcript.messages("thought")
    answer = "".join(m.text for m in transcript.messages("agent"))
    assert "scripted offline model" in answer
    assert "Harbour" in answer  # quoted from the file the tool really read
    [call] = transcript.tool_calls()
    assert (call.name, call.kind, call.title, call.status) == (
        "read_file",
        "read",
        "Read README.md",
        "completed",
    )
    assert call.output == README
    assert call.duration_ms is not None
    usage = transcript.usages[-1]
    assert usage.detail is not None and usage.detail.model == "parley-scripted"
    assert usage.detail.turn.input_tokens > 0 and usage.used <= usage.size


@pytest.mark.parametrize(
    ("handler", "option", "written"),
    [(allow_all, "allow_once", True), (deny_all, "reject_once", False)],
)
async def test_permission_answer_decides_the_write(
    env: dict[str, str],
    workspace: Path,
    handler: PermissionHandler,
    option: str,
    written: bool,
) -> None:
    asked: list[RequestPermissionRequest] = []

    async def recording(request: RequestPermissionRequest) -> PermissionOptionId | None:
        asked.append(request)
        return await handler(request)

    async with ParleyClient(
        frame_observer=FrameChecker().observe, env=env, permission_handler=recording
    ) as client:
        await client.initialize()
        session_id = await client.new_session(workspace)
        stop, transcript = await run_turn(client, session_id, WRITE_NOTE)

    assert stop == "end_turn"
    [request] = asked
    assert request.tool_call.title == "Write NOTES.md"
    assert {o.option_id for o in request.options} >= {"allow_once", "reject_once"}
    assert (workspace / "NOTES.md").is_file() is written
    [call] = transcript.tool_calls()
    assert call.status == ("completed" if written else "failed")
    if written:
        assert "ship it" in (workspace / "NOTES.md").read_text()


async def test_cancel_mid_story_stops_the_turn(client: ParleyClient, workspace: Path) -> None:
    session_id = await client.new_session(workspace)
    cancels: list[asyncio.Task[None]] = []

    def on_update(notification: SessionNotification) -> None:
        if isinstance(notification.update, AgentMessageChunk) and not cancels:
            cancels.append(asyncio.create_task(client.cancel(session_id)))

    response = await asyncio.wait_for(
        client.run_with_updates(
            client.prompt(session_id, "Tell me a long story"), on_update, session_id
        ),
        timeout=6,  # the whole story takes about 8 s
    )
    await asyncio.gather(*cancels)
    assert response.stop_reason == "cancelled"


async def test_cancel_request_from_the_daemon_stops_the_permission_handler(
    env: dict[str, str], workspace: Path
) -> None:
    asked = asyncio.Event()
    stopped = asyncio.Event()

    async def never_answers(request: RequestPermissionRequest) -> PermissionOptionId | None:
        asked.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()
        return None

    async with ParleyClient(
        frame_observer=FrameChecker().observe, env=env, permission_handler=never_answers
    ) as client:
        await client.initialize()
        session_id = await client.new_session(workspace)
        turn = asyncio.ensure_future(client.prompt(session_id, WRITE_NOTE))
        await asyncio.wait_for(asked.wait(), 5)
        # Straight to the wire, not client.cancel(): the handler must be stopped by
        # the daemon's `$/cancel_request`, not by the client's own bookkeeping.
        await client.peer.notify("session/cancel", {"sessionId": session_id})
        await asyncio.wait_for(stopped.wait(), 5)
        assert (await turn).stop_reason == "cancelled"
    assert not (workspace / "NOTES.md").exists()


async def test_list_and_load_after_restart_replay_what_streamed(
    env: dict[str, str], workspace: Path
) -> None:
    live = Transcript()
    async with ParleyClient(
        frame_observer=FrameChecker().observe, env=env, permission_handler=allow_all
    ) as client:
        await client.initialize()
        session_id = await client.new_session(workspace)
        for text in ("Summarize README.md", WRITE_NOTE):
            live.add_text("user", text)
            await client.run_with_updates(client.prompt(session_id, text), live.apply, session_id)

    replayed = Transcript()
    async with ParleyClient(frame_observer=FrameChecker().observe, env=env) as client:
        await client.initialize()
        sessions = await client.all_sessions(workspace)
        assert [(s.session_id, s.cwd) for s in sessions] == [(session_id, str(workspace))]
        assert sessions[0].title == "Summarize README.md"
        assert await client.all_sessions(workspace / "elsewhere") == []
        await client.run_with_updates(
            client.load_session(session_id, workspace), replayed.apply, session_id
        )

    rows = {row.kind: row for row in compare_replay(live, replayed)}
    assert all(row.same for row in rows.values()), rows
    assert rows["user_message_chunk"].replayed == 2
    # Live streams each message in pieces; the replay sends it whole, text unchanged.
    assert rows["agent_message_chunk"].live > rows["agent_message_chunk"].replayed > 0
    assert rows["tool_call"].replayed == 2


async def test_unknown_session_is_a_parley_error(client: ParleyClient, workspace: Path) -> None:
    with pytest.raises(ParleyError) as loading:
        await client.load_session("sess_0123456789abcdef01234567", workspace)
    assert loading.value.code == ErrorCode.RESOURCE_NOT_FOUND
    with pytest.raises(ParleyError) as prompting:
        await client.prompt("sess_nope", "hello")
    assert prompting.value.code == ErrorCode.RESOURCE_NOT_FOUND
    assert "sess_nope" in prompting.value.message


async def test_daemon_exit_fails_pending_calls_and_ends_updates(
    env: dict[str, str], workspace: Path
) -> None:
    daemon = DaemonProcess(env=env, stderr="capture")
    async with ParleyClient(endpoint=daemon, frame_observer=FrameChecker().observe) as client:
        await client.initialize()
        session_id = await client.new_session(workspace)
        updates = client.updates(session_id)
        turn = asyncio.ensure_future(client.prompt(session_id, "Tell me a long story"))
        async for _ in updates:
            assert daemon.pid is not None
            os.kill(daemon.pid, signal.SIGKILL)
            break
        async for _ in updates:
            pass  # ends once the daemon is gone, whatever was still queued
        with pytest.raises(ParleyError) as failure:
            await turn
        assert failure.value.code == DISCONNECTED
        assert "parleyd exited with code -9" in failure.value.message
        with pytest.raises(ParleyError):
            await client.list_sessions()


async def test_connect_tcp(env: dict[str, str], workspace: Path) -> None:
    daemon = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parleyd.main",
        "--listen",
        "tcp://127.0.0.1:0",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert daemon.stderr is not None
        line = (await asyncio.wait_for(daemon.stderr.readline(), 10)).decode()
        address = re.search(r"tcp://([\d.]+):(\d+) token-file (.+)", line)
        assert address, line
        async with ParleyClient.connect_tcp(
            address.group(1),
            int(address.group(2)),
            token_file=Path(address.group(3)),
            frame_observer=FrameChecker().observe,
        ) as client:
            await client.initialize()
            session_id = await client.new_session(workspace)
            answer = await client.prompt(session_id, "Summarize README.md")
            assert answer.stop_reason == "end_turn"
            assert [s.session_id for s in await client.all_sessions()] == [session_id]
    finally:
        daemon.terminate()
        await daemon.wait()
