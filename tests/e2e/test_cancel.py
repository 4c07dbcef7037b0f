"""Cancel at every level, through the ACP Python SDK and the real daemon: the turn
and the one call running a command that ignores SIGTERM (its whole process group
dies all the same), a permission question the cancel overtakes (the client's late
"allow" changes nothing), one of two calls running side by side, and one child
conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import acp
import pytest
from acp import text_block
from acp.connection import StreamDirection, StreamEvent
from acp.schema import RequestPermissionResponse

from parley_protocol.parley import TOOL_CALL_CANCEL
from parleyd.agent import CALL_CANCELLED, CALL_CANCELLED_UNRUN
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.chat_streams import SLEEPER, WAITER, WAITER_SAW, serve_two_calls
from tests.support.daemon import offline_env, replay_env
from tests.support.processes import live_members, members_after_kill, needs_proc
from tests.support.replay_server import ReplayServer

# The SDK's ext_method adds the leading "_" itself.
CANCEL_CALL = TOOL_CALL_CANCEL.removeprefix("_")
# What a call stopped by the cancel of its turn answers.
TURN_CANCELLED = "Cancelled by the user before it finished."


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Widget\n\nA widget that frobs.\n")
    return root


async def _start(connection: acp.core.ClientSideConnection, workspace: Path) -> str:
    await connection.initialize(protocol_version=1)
    session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
    return session.session_id


def _prompt(
    connection: acp.core.ClientSideConnection, session_id: str, text: str
) -> asyncio.Future[acp.schema.PromptResponse]:
    """A prompt sent, its answer to come."""
    return asyncio.ensure_future(
        connection.prompt(session_id=session_id, prompt=[text_block(text)])
    )


def _shown(update: Any) -> str:
    """The text a tool call update shows, if it shows text."""
    content = getattr(update, "content", None) or []
    return "".join(getattr(getattr(part, "content", None), "text", "") for part in content)


def _printed(text: str, call_id: str | None = None) -> Callable[[Any], bool]:
    """An update showing that a call (any, or `call_id`) printed `text`."""

    def wanted(update: Any) -> bool:
        return (
            update.session_update == "tool_call_update"
            and call_id in (None, update.tool_call_id)
            and text in _shown(update)
        )

    return wanted


def _endings(client: RecordingClient) -> dict[str, Any]:
    """Each tool call's last update that gave it a status, by call id."""
    return {
        update.tool_call_id: update
        for update in client.updates
        if update.session_update in ("tool_call", "tool_call_update") and update.status
    }


def _assert_cancelled(
    client: RecordingClient,
    call_id: str,
    level: str,
    answer: acp.schema.PromptResponse,
    call_cancelled: str,
) -> None:
    """The call failed as cancelled: with the whole turn (`level` "turn"), or
    alone, saying `call_cancelled`, and the turn went on to its end."""
    ended = _endings(client)[call_id]
    assert ended.status == "failed"
    if level == "turn":
        assert answer.stop_reason == "cancelled"
        assert _shown(ended) == TURN_CANCELLED
    else:
        assert answer.stop_reason == "end_turn"
        assert _shown(ended) == call_cancelled


# It ignores SIGTERM, and so does everything it starts (an ignored signal stays
# ignored across fork and exec): only the SIGKILL after the grace period stops it.
STUBBORN = "trap '' TERM; sleep 60 & echo $$ $! > pids; echo started; wait"


@needs_proc
@pytest.mark.parametrize("level", ["turn", "call"])
async def test_a_command_that_ignores_sigterm_dies_with_its_whole_process_group(
    home: Path, workspace: Path, level: str
) -> None:
    client = RecordingClient(permission_answer="allow_once")
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        turn = _prompt(connection, session_id, f"Run `{STUBBORN}`")
        running = await asyncio.wait_for(client.wait_for(_printed("started")), 10)
        shell, child = map(int, (workspace / "pids").read_text().split())
        assert {shell, child} <= set(live_members(shell))
        if level == "turn":
            await connection.cancel(session_id=session_id)
        else:
            params = {"sessionId": session_id, "toolCallId": running.tool_call_id}
            assert await connection.ext_method(CANCEL_CALL, params) == {}
        answer = await asyncio.wait_for(turn, 30)
        # The process group was the shell's own: nothing it started is left.
        assert await members_after_kill(shell) == []
    _assert_cancelled(client, running.tool_call_id, level, answer, CALL_CANCELLED)
    if level == "call":
        # The turn went on: the model read that the call was cancelled, and answered.
        assert CALL_CANCELLED.removesuffix(".") in client.text()


@dataclass
class _LateClient(RecordingClient):
    """Holds its answer to a permission question until `release` is set, and
    notes when it has sent it."""

    asked: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    answers: list[dict[str, Any]] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **extra: Any
    ) -> RequestPermissionResponse:
        self.asked.set()
        await self.release.wait()
        return await super().request_permission(session_id, tool_call, options, **extra)

    def observe(self, event: StreamEvent) -> None:
        super().observe(event)
        message = event.message
        outgoing = event.direction is StreamDirection.OUTGOING
        if outgoing and "outcome" in message.get("result", {}):
            self.answers.append(message)
            self.answered.set()


@pytest.mark.parametrize("level", ["turn", "call"])
async def test_a_late_allow_to_a_question_the_cancel_withdrew_changes_nothing(
    home: Path, workspace: Path, level: str
) -> None:
    client = _LateClient(permission_answer="allow_once")
    async with acp_daemon(offline_env(home), client) as (connection, process):
        session_id = await _start(connection, workspace)
        turn = _prompt(connection, session_id, 'Write a note saying "too late"')
        await asyncio.wait_for(client.asked.wait(), 10)
        (asked,) = [f for f in client.frames if f.get("method") == "session/request_permission"]
        call_id = asked["params"]["toolCall"]["toolCallId"]
        if level == "turn":
            await connection.cancel(session_id=session_id)
        else:
            params = {"sessionId": session_id, "toolCallId": call_id}
            assert await connection.ext_method(CANCEL_CALL, params) == {}
        answer = await asyncio.wait_for(turn, 10)
        # The question is withdrawn: ACP's way to answer it as cancelled.
        withdrawn = [f["params"] for f in client.frames if f.get("method") == "$/cancel_request"]
        assert withdrawn == [{"requestId": asked["id"]}]
        # Only now does the client say "allow", to a question no longer asked.
        client.release.set()
        await asyncio.wait_for(client.answered.wait(), 10)
        (late,) = client.answers
        assert late["id"] == asked["id"]
        assert late["result"]["outcome"] == {"outcome": "selected", "optionId": "allow_once"}
        # Sent after the late answer, so read after it: the session takes prompts.
        again = await asyncio.wait_for(_prompt(connection, session_id, "Hi"), 10)
        assert again.stop_reason == "end_turn"
        assert process.returncode is None
    assert not (workspace / "NOTES.md").exists()
    assert not [f for f in client.frames if "error" in f]
    _assert_cancelled(client, call_id, level, answer, CALL_CANCELLED_UNRUN)


async def test_one_of_two_calls_side_by_side_is_cancelled_and_the_other_finishes(
    home: Path, workspace: Path
) -> None:
    async with ReplayServer() as provider:
        serve_two_calls(provider)
        client = RecordingClient(permission_answer="allow_once")
        async with acp_daemon(replay_env(home, provider.url), client) as (connection, _):
            session_id = await _start(connection, workspace)
            turn = _prompt(connection, session_id, "Run both")
            await asyncio.wait_for(client.wait_for(_printed("started", SLEEPER.id)), 10)
            params = {"sessionId": session_id, "toolCallId": SLEEPER.id}
            assert await connection.ext_method(CANCEL_CALL, params) == {}
            answer = await asyncio.wait_for(turn, 30)
        assert answer.stop_reason == "end_turn"
        (_, after_tools) = provider.requests
    ended = _endings(client)
    assert (ended[SLEEPER.id].status, _shown(ended[SLEEPER.id])) == ("failed", CALL_CANCELLED)
    assert ended[WAITER.id].status == "completed" and WAITER_SAW in _shown(ended[WAITER.id])
    # The turn went on with both results: the model was given them, and answered.
    results = {
        m["tool_call_id"]: m["content"] for m in after_tools.json["messages"] if m["role"] == "tool"
    }
    assert results[SLEEPER.id] == CALL_CANCELLED and WAITER_SAW in results[WAITER.id]
    assert client.text()


def _told_by_a_child(text: str) -> Callable[[Any], bool]:
    def wanted(update: Any) -> bool:
        conversation = update.field_meta["parley"]["conversation"]
        return (
            update.session_update == "agent_message_chunk"
            and conversation["depth"] == 1
            and text in update.content.text
        )

    return wanted


async def test_one_child_is_cancelled_through_its_parent_call_and_the_turn_goes_on(
    home: Path, workspace: Path
) -> None:
    """To a client that does not take child sessions the children stream under
    the session; it stops one by cancelling the call that started it."""
    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        session_id = await _start(connection, workspace)
        turn = _prompt(
            connection, session_id, 'Delegate "Tell me a long story" and "Read README.md"'
        )
        telling = await asyncio.wait_for(client.wait_for(_told_by_a_child("Lighthouse")), 20)
        parent_call = telling.field_meta["parley"]["conversation"]["parentToolCall"]
        params = {"sessionId": session_id, "toolCallId": parent_call}
        assert await connection.ext_method(CANCEL_CALL, params) == {}
        answer = await asyncio.wait_for(turn, 30)
    assert answer.stop_reason == "end_turn"
    ended = _endings(client)
    cancelled = ended.pop(parent_call)
    assert cancelled.status == "failed"
    result = _shown(cancelled)
    assert result.startswith("The sub-agent was cancelled by the user before it finished.")
    assert "Lighthouse" in result  # what it had told so far
    # The other child's calls and its own finished, and the root answered from it.
    assert {update.status for update in ended.values()} == {"completed"}
    root_text = "".join(
        u.content.text
        for u in client.updates
        if u.session_update == "agent_message_chunk"
        and u.field_meta["parley"]["conversation"]["depth"] == 0
    )
    assert "Widget" in root_text
