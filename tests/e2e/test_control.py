"""The editor in control of a running turn, through the real daemon: pause and
resume (also across a restart), steer, cancel while paused."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from parley_protocol.jsonrpc import ErrorCode
from parley_protocol.parley import SESSION_INJECT, SESSION_PAUSE, SESSION_RESUME
from parleyd.offline.script import plan_reply
from parleyd.runtime import CLIENT_GONE
from tests.support.daemon import offline_env
from tests.support.raw_daemon import RawDaemon, raw_daemon

STORY = "Tell me a long story"
PROMPT_ID = 70


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    (folder / "README.md").write_text("# Steered\n\nA project to read when asked.\n")
    return folder


def _updates(daemon: RawDaemon) -> list[dict[str, Any]]:
    return [f["params"]["update"] for f in daemon.frames if f.get("method") == "session/update"]


def _told(update: dict[str, Any]) -> str | None:
    """The turn state a `session_info_update` tells, if it tells one."""
    if update.get("sessionUpdate") != "session_info_update":
        return None
    turn = update["_meta"]["parley"].get("turn")
    return None if turn is None else str(turn["state"])


def _story_text(updates: list[dict[str, Any]]) -> str:
    return "".join(
        u["content"]["text"] for u in updates if u["sessionUpdate"] == "agent_message_chunk"
    )


def _records(home: Path, session_id: str) -> list[dict[str, Any]]:
    log = home / "sessions" / session_id / "log.jsonl"
    return [json.loads(line) for line in log.read_bytes().splitlines()]


def _is_story_chunk(frame: dict[str, Any]) -> bool:
    update = frame.get("params", {}).get("update", {})
    return update.get("sessionUpdate") == "agent_message_chunk"


async def _telling(daemon: RawDaemon, workspace: Path, prompt: str, chunks: int = 5) -> str:
    """A new session streaming its answer to `prompt`, `chunks` chunks in; its id."""
    await daemon.initialize()
    session_id = await daemon.new_session(workspace)
    await daemon.start_prompt(session_id, prompt, PROMPT_ID)
    for _ in range(chunks):
        await daemon.until(_is_story_chunk)
    return session_id


async def _story_until_paused(daemon: RawDaemon, workspace: Path) -> str:
    """A session telling the story, paused a few words in; its id."""
    session_id = await _telling(daemon, workspace, STORY)
    paused = await daemon.request(SESSION_PAUSE, {"sessionId": session_id, "reason": "lunch break"})
    assert paused["result"] == {"runningToolCalls": []}
    return session_id


def _whole_story() -> str:
    """The story as the offline model tells it when nothing stops it."""
    return "".join(plan_reply({"messages": [{"role": "user", "content": STORY}]}).content)


async def test_a_paused_turn_keeps_what_streamed_and_resumes_to_its_end(
    home: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _story_until_paused(daemon, workspace)
        # Told, and recorded before the answer: the response cut where it stood.
        assert [s for u in _updates(daemon) if (s := _told(u))] == ["paused"]
        pause, cut = _records(home, session_id)[-2:]
        assert (pause["type"], pause["reason"]) == ("turn_pause", "lunch break")
        assert (cut["type"], cut["interrupted"]) == ("response", True)

        resumed = await daemon.request(SESSION_RESUME, {"sessionId": session_id})
        # The turn's own prompt answers, once the story is told.
        assert resumed["result"] == {"stopReason": None}
        done = await daemon.until(lambda f: f.get("id") == PROMPT_ID)
        assert done["result"] == {"stopReason": "end_turn"}
        paused_story = _story_text(_updates(daemon))
        told = [s for u in _updates(daemon) if (s := _told(u))]
    assert told == ["paused", "running"]
    # Read as one: what streamed before the pause, then the rest, nothing twice.
    assert paused_story == _whole_story()
    kinds = [r["type"] for r in _records(home, session_id)]
    assert kinds.count("turn_start") == kinds.count("turn_end") == 1


async def test_a_pause_outlives_the_daemon_and_a_resume_then_ends_the_turn(
    home: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _story_until_paused(daemon, workspace)
        before = _story_text(_updates(daemon))
        daemon.process.send_signal(signal.SIGKILL)
        await daemon.process.wait()

    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        loaded = await daemon.load_session(session_id, workspace)
        assert "result" in loaded
        replayed = _updates(daemon)
        # Loaded as paused, saying why, the story as far as it got.
        (status,) = [u for u in replayed if _told(u)]
        assert status["_meta"]["parley"]["turn"] == {
            "state": "paused",
            "reason": "lunch break",
            "stopReason": None,
            "messageId": None,
        }
        assert before.startswith(_story_text(replayed))
        listed = await daemon.request("session/list", {})
        assert listed["result"]["sessions"][0]["_meta"]["parley"]["status"] == "paused"
        busy = await daemon.request(
            "session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": "x"}]}
        )
        assert busy["error"]["code"] == ErrorCode.SESSION_BUSY
        assert "paused" in busy["error"]["message"]

        # No prompt is open for it now: the resume carries it to its end.
        resumed = await daemon.request(SESSION_RESUME, {"sessionId": session_id})
        assert resumed["result"] == {"stopReason": "end_turn"}
        story = _story_text(_updates(daemon))
    assert story == _whole_story()
    kinds = [r["type"] for r in _records(home, session_id)]
    assert kinds.count("turn_start") == kinds.count("turn_end") == 1
    assert [k for k in kinds if k.startswith("turn_")][-3:] == [
        "turn_pause",
        "turn_resume",
        "turn_end",
    ]


@pytest.mark.parametrize("restarted", [False, True], ids=["live", "after-restart"])
async def test_a_cancel_while_paused_ends_the_turn_as_cancelled(
    home: Path, workspace: Path, restarted: bool
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _story_until_paused(daemon, workspace)
        if not restarted:
            await daemon.send(
                {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
            )
            done = await daemon.until(lambda f: f.get("id") == PROMPT_ID)
            assert done["result"] == {"stopReason": "cancelled"}
    if restarted:  # the daemon went away with the session paused, and kept it so
        async with raw_daemon(offline_env(home)) as daemon:
            await daemon.initialize()
            await daemon.load_session(session_id, workspace)
            await daemon.send(
                {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
            )
            # No prompt answers for it: the client is told the turn is over.
            await daemon.until(lambda f: _told(f.get("params", {}).get("update", {})) == "idle")
            again = await daemon.request(
                "session/prompt",
                {"sessionId": session_id, "prompt": [{"type": "text", "text": "Hi"}]},
            )
            # Cancelled, the turn is over: the next prompt is a turn of its own.
            assert again["result"] == {"stopReason": "end_turn"}
    endings = [r["stop_reason"] for r in _records(home, session_id) if r["type"] == "turn_end"]
    assert endings[0] == "cancelled"


async def test_a_steered_message_joins_the_turn_at_its_next_step(
    home: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _telling(daemon, workspace, STORY, chunks=1)
        steer = [{"type": "text", "text": "Then read README.md"}]
        injected = await daemon.request(
            SESSION_INJECT, {"sessionId": session_id, "prompt": steer, "mode": "steer"}
        )
        message_id = injected["result"]["messageId"]
        done = await daemon.until(lambda f: f.get("id") == PROMPT_ID)
        assert done["result"] == {"stopReason": "end_turn"}
        live = _updates(daemon)
        await daemon.load_session(session_id, workspace)
        replayed = _updates(daemon)[len(live) :]
    kinds = [u["sessionUpdate"] for u in live]
    joined = kinds.index("user_message_chunk")
    # Nothing was cut: the story ended, then the message joined, and the model
    # read it and did as it asked.
    assert live[joined]["messageId"] == message_id
    assert live[joined]["content"]["text"] == "Then read README.md"
    assert "agent_message_chunk" in kinds[:joined] and "tool_call" not in kinds[:joined]
    reads = [u for u in live[joined:] if u.get("title") == "Read README.md"]
    assert reads, "the model never acted on the steered message"
    turns = {r["turn"] for r in _records(home, session_id) if r["type"] == "user"}
    assert len(turns) == 1
    # The replay shows it where it entered.
    again = [u["sessionUpdate"] for u in replayed]
    assert again.count("user_message_chunk") == 2
    first_read = next(i for i, u in enumerate(replayed) if u.get("title") == "Read README.md")
    assert again.index("user_message_chunk", 1) < first_read


async def test_control_requests_that_do_not_fit_the_turn_say_why(
    home: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        session_id = await daemon.new_session(workspace)
        text = [{"type": "text", "text": "go"}]
        answers = [
            await daemon.request(SESSION_PAUSE, {"sessionId": session_id}),
            await daemon.request(SESSION_RESUME, {"sessionId": session_id}),
            await daemon.request(SESSION_INJECT, {"sessionId": session_id, "prompt": text}),
        ]
        assert [a["error"]["code"] for a in answers] == [ErrorCode.WRONG_TURN_STATE] * 3
        assert "no running turn to pause" in answers[0]["error"]["message"]
        assert "no paused turn to resume" in answers[1]["error"]["message"]
        unknown_mode = await daemon.request(
            SESSION_INJECT, {"sessionId": session_id, "prompt": text, "mode": "later"}
        )
        assert unknown_mode["error"]["code"] == ErrorCode.INVALID_PARAMS
        unknown = await daemon.request(SESSION_PAUSE, {"sessionId": "sess_0000nothere"})
        assert unknown["error"]["code"] == ErrorCode.RESOURCE_NOT_FOUND
        # And the session still works.
        answer = await daemon.request("session/prompt", {"sessionId": session_id, "prompt": text})
        assert answer["result"] == {"stopReason": "end_turn"}


def _of_depth(updates: list[dict[str, Any]], depth: int) -> list[dict[str, Any]]:
    return [u for u in updates if u["_meta"]["parley"]["conversation"]["depth"] == depth]


@pytest.mark.parametrize("restarted", [False, True], ids=["live", "after-restart"])
async def test_a_sub_agent_pauses_with_its_parent_and_goes_on_where_it_stopped(
    home: Path, workspace: Path, restarted: bool
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        session_id = await daemon.new_session(workspace)
        await daemon.start_prompt(session_id, f'Delegate "{STORY}"', PROMPT_ID)

        def child_chunk(frame: dict[str, Any]) -> bool:
            update = frame.get("params", {}).get("update", {})
            conversation = update.get("_meta", {}).get("parley", {}).get("conversation", {})
            return _is_story_chunk(frame) and conversation.get("depth") == 1

        for _ in range(5):
            await daemon.until(child_chunk)
        paused = await daemon.request(SESSION_PAUSE, {"sessionId": session_id})
        # The sub-agent's call is not a tool to wait for: the sub-agent paused too.
        assert paused["result"] == {"runningToolCalls": []}
        before = _story_text(_of_depth(_updates(daemon), 1))
        if restarted:
            daemon.process.send_signal(signal.SIGKILL)
            await daemon.process.wait()
        else:
            resumed = await daemon.request(SESSION_RESUME, {"sessionId": session_id})
            done = await daemon.until(lambda f: f.get("id") == PROMPT_ID)
            assert (resumed["result"], done["result"]) == (
                {"stopReason": None},
                {"stopReason": "end_turn"},
            )
            told = _story_text(_of_depth(_updates(daemon), 1))
    if restarted:
        async with raw_daemon(offline_env(home)) as daemon:
            await daemon.initialize()
            await daemon.load_session(session_id, workspace)
            replayed = _story_text(_of_depth(_updates(daemon), 1))
            assert before.startswith(replayed)
            resumed = await daemon.request(SESSION_RESUME, {"sessionId": session_id})
            assert resumed["result"] == {"stopReason": "end_turn"}
            told = _story_text(_of_depth(_updates(daemon), 1))
    assert before and told == _whole_story()
    records = _records(home, session_id)
    children = {r["conv"] for r in records if r["type"] == "conversation" and r.get("parent")}
    assert len(children) == 1  # carried on, not started again
    (child,) = children
    kinds = [r["type"] for r in records if r["conv"] == child]
    assert kinds.count("turn_start") == kinds.count("turn_end") == 1
    results = [r for r in records if r["type"] == "tool_result" and r["name"] == "subagent"]
    assert len(results) == 1 and results[0]["status"] == "completed"


async def test_a_turn_whose_client_goes_away_is_paused_for_the_next_one(
    home: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _telling(daemon, workspace, STORY)
        process = daemon.process
        assert process.stdin is not None
        process.stdin.close()
        assert await process.wait() == 0

    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        await daemon.load_session(session_id, workspace)
        (status,) = [u for u in _updates(daemon) if _told(u)]
        assert status["_meta"]["parley"]["turn"] == {
            "state": "paused",
            "reason": CLIENT_GONE,
            "stopReason": None,
            "messageId": None,
        }
        resumed = await daemon.request(SESSION_RESUME, {"sessionId": session_id})
        assert resumed["result"] == {"stopReason": "end_turn"}
        assert _story_text(_updates(daemon)) == _whole_story()
