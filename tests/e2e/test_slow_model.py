"""A model slow to answer, through the real daemon: while it says nothing (a
model loading before its first byte, a silent think between two deltas, a
tool call's arguments streaming), the client is told each interval what it
waits for and how long, as a `session_info_update` with `_meta.parley.status`,
or as a `notice` to a client that advertises `session.notices`; and once the
model speaks again, or its response ends, that the wait is over. A sub-agent's
model is reported under its own conversation. Statuses are liveness, not
history: a load replays none of them, and the conversation holds only what the
model said.

The provider is a replay server that keeps quiet where the test says; the
interval is a fifth of a second, so every silence is told a few times.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acp import text_block

from parleyd.offline.script import PlannedToolCall
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.chat_streams import tool_calls_stream
from tests.support.daemon import replay_env
from tests.support.fixtures import load_case
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.replay_server import ReplayServer
from tests.support.transcripts import conversation_of, session_notes
from tests.support.updates import as_replayed

SSE = "text/event-stream"
FAST_STATUS = {"PARLEY_STATUS_INTERVAL_SECONDS": "0.2"}
# How long the model keeps quiet: a few intervals.
SILENCE = 1.0
ANSWER = "openai_chat/text_usage_chunk"
GREETER = PlannedToolCall(
    "call_greeter", "subagent", {"task": "Say hi to the user", "title": "Greeter"}
)

Update = dict[str, Any]


def _status(update: Update) -> dict[str, Any] | None:
    status: dict[str, Any] | None = update.get("_meta", {}).get("parley", {}).get("status")
    return status


def _statuses(updates: list[Update]) -> list[dict[str, Any]]:
    return [status for update in updates if (status := _status(update)) is not None]


def _updates(frames: list[dict[str, Any]]) -> list[Update]:
    return [note["update"] for note in session_notes(frames)]


def _answer_text(case: str) -> str:
    """What a recorded Chat Completions stream says, all its content deltas joined."""
    events = [
        json.loads(line.removeprefix(b"data: "))
        for line in load_case(case).body.splitlines()
        if line.startswith(b"data: {")
    ]
    return "".join(
        choice["delta"].get("content") or "" for event in events for choice in event["choices"]
    )


def _assert_told_then_over(statuses: list[dict[str, Any]], waiting_for: str) -> None:
    """A wait told at least once, each time longer, then told over."""
    *waiting, over = statuses
    assert waiting, "the silence was told"
    assert {status["waiting"] for status in waiting} == {waiting_for}
    seconds = [status["seconds"] for status in waiting]
    assert seconds == sorted(set(seconds)) and seconds[0] > 0
    assert over == {"waiting": None, "seconds": None}


async def test_a_model_slow_to_start_is_reported_and_a_load_replays_none_of_it(
    workspace: Path, home: Path
) -> None:
    async with ReplayServer() as provider:
        provider.enqueue_fixture(ANSWER, wait=SILENCE)
        env = {**replay_env(home, provider.url), **FAST_STATUS}
        live = RecordingClient()
        async with acp_daemon(env, live) as (connection, _):
            await connection.initialize(protocol_version=1)
            session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
            session_id = session.session_id
            answer = await connection.prompt(session_id=session_id, prompt=[text_block("Add")])
        assert answer.stop_reason == "end_turn"

        replaying = RecordingClient()
        async with acp_daemon(env, replaying) as (connection, _):
            await connection.initialize(protocol_version=1)
            await connection.load_session(session_id=session_id, cwd=str(workspace), mcp_servers=[])

    streamed = _updates(live.frames)
    told = [update for update in streamed if _status(update) is not None]
    assert {update["sessionUpdate"] for update in told} == {"session_info_update"}
    assert {conversation_of(update)["depth"] for update in told} == {0}
    _assert_told_then_over(_statuses(told), "first_output")
    first_word = next(u for u in streamed if u["sessionUpdate"] == "agent_message_chunk")
    assert streamed.index(told[0]) < streamed.index(first_word)
    # The conversation is the model's alone, and so is its replay.
    assert live.text() == _answer_text(ANSWER)
    prompt, *replayed = _updates(replaying.frames)
    assert prompt["content"]["text"] == "Add"
    assert replayed == as_replayed([u for u in streamed if u not in told])


async def test_a_client_with_notices_is_told_of_a_model_gone_quiet_midway(
    workspace: Path, home: Path
) -> None:
    # The ACP Python SDK's schema has no `session.notices` yet (its model drops
    # the key), so this client speaks raw JSON-RPC; the daemon's every frame is
    # still checked against ACP's schema.
    async with ReplayServer() as provider:
        body = load_case(ANSWER).body
        # Two pieces: the first half of the answer, a silence, the rest.
        provider.enqueue(200, SSE, body, chunk_size=len(body) // 2 + 1, delay=SILENCE)
        async with raw_daemon({**replay_env(home, provider.url), **FAST_STATUS}) as daemon:
            capabilities: dict[str, Any] = {"session": {"notices": {}}}
            await daemon.request(
                "initialize", {"protocolVersion": 1, "clientCapabilities": capabilities}
            )
            session_id = await daemon.new_session(workspace)
            answer = await _prompt(daemon, session_id, "Add")
    assert answer == {"stopReason": "end_turn"}

    streamed = _updates(daemon.frames)
    told = [update for update in streamed if _status(update) is not None]
    *notices, over = told
    assert {notice["sessionUpdate"] for notice in notices} == {"notice"}
    assert {notice["title"] for notice in notices} == {"Waiting for the model"}
    assert all("has sent nothing more for" in notice["description"] for notice in notices)
    # The end of a wait is no news for the user: a session info update.
    assert over["sessionUpdate"] == "session_info_update"
    _assert_told_then_over(_statuses(told), "more_output")
    text = "".join(
        u["content"]["text"] for u in streamed if u["sessionUpdate"] == "agent_message_chunk"
    )
    assert text == _answer_text(ANSWER)


async def test_a_tool_call_written_slowly_and_a_sub_agent_slow_to_start_are_reported(
    workspace: Path, home: Path
) -> None:
    body = tool_calls_stream(GREETER)
    # The silence falls inside the call: after its id and name, before its end.
    cut = body.index(b"\n\n", len(body) // 2) + 2
    assert b'"id": "call_greeter"' in body[:cut] and b'"finish_reason": "tool_calls"' in body[cut:]
    async with ReplayServer() as provider:
        # The root's model goes quiet inside its call, then the sub-agent's
        # model is slow to start, then the root ends its turn.
        provider.enqueue(200, SSE, body, chunk_size=cut, delay=SILENCE)
        provider.enqueue_fixture(ANSWER, wait=SILENCE)
        provider.enqueue_fixture(ANSWER)
        async with raw_daemon({**replay_env(home, provider.url), **FAST_STATUS}) as daemon:
            await daemon.initialize()
            session_id = await daemon.new_session(workspace)
            answer = await _prompt(daemon, session_id, "Greet me through a sub-agent")
    assert answer == {"stopReason": "end_turn"}

    notes = session_notes(daemon.frames)
    assert {note["sessionId"] for note in notes} == {session_id}
    told = [note["update"] for note in notes if _status(note["update"]) is not None]
    root = [u for u in told if conversation_of(u)["depth"] == 0]
    child = [u for u in told if conversation_of(u)["depth"] == 1]
    # The root's response, its wait told over, ended before the sub-agent began.
    assert root + child == told
    _assert_told_then_over(_statuses(root), "tool_call_arguments")
    _assert_told_then_over(_statuses(child), "first_output")
    (parent,) = {conversation_of(u)["parent"] for u in child}
    assert parent == conversation_of(root[0])["id"]
    assert {conversation_of(u)["parentToolCall"] for u in child} == {"call_greeter"}


async def _prompt(daemon: RawDaemon, session_id: str, text: str) -> dict[str, Any]:
    answer = await daemon.request(
        "session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
    )
    result: dict[str, Any] = answer["result"]
    return result
