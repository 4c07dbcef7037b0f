"""Forks through the real daemon: `session/fork` (through the ACP Python SDK)
from the latest point, `_parley/session/fork` from an earlier message, a fork
of a fork, parents deleted under their forks, a parent another daemon is
running a turn in. Each time the fork replays its parent's replay up to where
it left, then its own turns; the model reads that history and no more; both
sessions go on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acp import text_block

from parley_protocol.jsonrpc import ErrorCode
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.daemon import offline_env, replay_env
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.replay_server import ReplayServer

INTRO = "Parley's scripted offline model"


async def _prompt(daemon: RawDaemon, session_id: str, text: str) -> None:
    prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
    answer = await daemon.request("session/prompt", prompt)
    assert answer["result"] == {"stopReason": "end_turn"}, answer


async def _fork(daemon: RawDaemon, session_id: str, **params: Any) -> dict[str, Any]:
    return await daemon.request("_parley/session/fork", {"sessionId": session_id, **params})


async def _forked(daemon: RawDaemon, session_id: str, **params: Any) -> str:
    fork_id: str = (await _fork(daemon, session_id, **params))["result"]["sessionId"]
    return fork_id


async def _load(daemon: RawDaemon, session_id: str, workspace: Path) -> list[dict[str, Any]]:
    """Load the session; the updates its replay sent."""
    first = len(daemon.frames)
    answer = await daemon.load_session(session_id, workspace)
    assert answer["result"]["modes"]["currentModeId"] == "ask", answer
    return [
        frame["params"]["update"]
        for frame in daemon.frames[first:]
        if frame.get("method") == "session/update" and frame["params"]["sessionId"] == session_id
    ]


async def _replays(home: Path, workspace: Path, *session_ids: str) -> list[list[dict[str, Any]]]:
    """Each session's replay, loaded by a fresh daemon."""
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        return [await _load(daemon, session_id, workspace) for session_id in session_ids]


def _prompt_at(replay: list[dict[str, Any]], text: str) -> int:
    """Where the replay shows the user's prompt `text`."""
    return next(
        index
        for index, update in enumerate(replay)
        if update["sessionUpdate"] == "user_message_chunk" and update["content"]["text"] == text
    )


def _titled(title: str) -> dict[str, Any]:
    return {"sessionUpdate": "session_info_update", "title": title}


def _own_turn(replay: list[dict[str, Any]], at: int, title: str, prompt: str) -> None:
    """What a fork replays once its history is over: its title, then its turn."""
    title_update, prompted = replay[at], replay[at + 1]
    assert {key: title_update[key] for key in ("sessionUpdate", "title")} == _titled(title)
    assert prompted["sessionUpdate"] == "user_message_chunk"
    assert prompted["content"]["text"] == prompt


async def test_session_fork_continues_from_the_latest_point(home: Path, workspace: Path) -> None:
    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        initialized = await connection.initialize(protocol_version=1)
        capabilities = initialized.agent_capabilities
        assert capabilities is not None and capabilities.session_capabilities is not None
        assert capabilities.session_capabilities.fork is not None
        assert "_parley/session/fork" in capabilities.field_meta["parley"]["methods"]

        parent = (await connection.new_session(cwd=str(workspace), mcp_servers=[])).session_id
        for text in ("Hello", "What next?"):
            await connection.prompt(session_id=parent, prompt=[text_block(text)])
        fork = (await connection.fork_session(session_id=parent, cwd=str(workspace))).session_id
        assert fork != parent

        # Open once forked, and the model has the history: it introduces
        # itself only in a conversation's first answer.
        client.updates.clear()
        answer = await connection.prompt(session_id=fork, prompt=[text_block("In the fork")])
        assert answer.stop_reason == "end_turn"
        assert client.text() and INTRO not in client.text()
        answer = await connection.prompt(session_id=parent, prompt=[text_block("In the parent")])
        assert answer.stop_reason == "end_turn"

        listed = {s.session_id: s.title for s in (await connection.list_sessions()).sessions}
        assert listed == {parent: "Hello", fork: "Hello (fork)"}

    parent_replay, fork_replay = await _replays(home, workspace, parent, fork)
    left_at = _prompt_at(parent_replay, "In the parent")
    assert fork_replay[:left_at] == parent_replay[:left_at]
    _own_turn(fork_replay, left_at, "Hello (fork)", "In the fork")


def _user_texts(request: Any) -> list[str]:
    return [m["content"] for m in request.json["messages"] if m["role"] == "user"]


async def test_a_fork_from_an_earlier_message(home: Path, workspace: Path) -> None:
    async with ReplayServer() as provider:
        for _ in range(3):
            provider.enqueue_fixture("openai_chat/text_usage_chunk")
        async with raw_daemon(replay_env(home, provider.url)) as daemon:
            await daemon.initialize()
            parent = await daemon.new_session(workspace)
            await _prompt(daemon, parent, "first")
            await _prompt(daemon, parent, "second")
            replay = await _load(daemon, parent, workspace)
            prompts = [u for u in replay if u["sessionUpdate"] == "user_message_chunk"]
            answers = [u for u in replay if u["sessionUpdate"] == "agent_message_chunk"]
            second_turn = _prompt_at(replay, "second")

            # Right before the turn of the second prompt, or right after the
            # turn of the first answer: the same place.
            from_prompt = await _forked(daemon, parent, messageId=prompts[1]["messageId"])
            from_answer = await _forked(daemon, parent, messageId=answers[0]["messageId"])
            for fork in (from_prompt, from_answer):
                forked = await _load(daemon, fork, workspace)
                assert forked[:second_turn] == replay[:second_turn]
                assert forked[second_turn:] == [
                    {**_titled("first (fork)"), "_meta": replay[0]["_meta"]}
                ]

            await _prompt(daemon, from_prompt, "third")
            assert _user_texts(provider.requests[2]) == ["first", "third"]

            unknown = await _fork(daemon, parent, messageId="msg_nothere")
            assert unknown["error"]["code"] == ErrorCode.INVALID_PARAMS
            assert "'msg_nothere'" in unknown["error"]["message"]
            assert parent in unknown["error"]["message"]


async def test_a_fork_of_a_fork_outlives_its_parents(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        parent = await daemon.new_session(workspace)
        await _prompt(daemon, parent, "Hello")
        fork = await _forked(daemon, parent)
        await _prompt(daemon, fork, "In the fork")
        answer = await daemon.request("session/fork", {"sessionId": fork, "cwd": str(workspace)})
        fork_of_fork = answer["result"]["sessionId"]
        await _prompt(daemon, fork_of_fork, "In the fork of the fork")
    fork_replay, last_replay = await _replays(home, workspace, fork, fork_of_fork)
    left_at = _prompt_at(last_replay, "In the fork of the fork") - 1
    assert last_replay[:left_at] == fork_replay
    _own_turn(last_replay, left_at, "Hello (fork) (fork)", "In the fork of the fork")

    for deleted, kept in ((parent, [fork, fork_of_fork]), (fork, [fork_of_fork])):
        async with raw_daemon(offline_env(home)) as daemon:
            await daemon.initialize()
            assert (await daemon.request("session/delete", {"sessionId": deleted}))["result"] == {}
            listing = await daemon.request("session/list", {})
            assert [s["sessionId"] for s in listing["result"]["sessions"]] == kept[::-1]
        replays = await _replays(home, workspace, *kept)
        assert replays[-1] == last_replay
        if len(kept) == 2:
            assert replays[0] == fork_replay

    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        await _load(daemon, fork_of_fork, workspace)
        await _prompt(daemon, fork_of_fork, "Still here?")


async def test_a_fork_of_a_session_another_daemon_is_running(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as holder, raw_daemon(offline_env(home)) as other:
        await holder.initialize()
        await other.initialize()
        parent = await holder.new_session(workspace)
        await _prompt(holder, parent, "Hello")
        await holder.start_prompt(parent, "Tell me a long story", 40)
        await holder.until(
            lambda frame: (
                frame.get("params", {}).get("update", {}).get("sessionUpdate")
                == "agent_message_chunk"
            )
        )

        # The parent's log is locked by `holder` and growing: the fork reads it
        # up to the end of its last finished turn.
        answer = await other.request("session/fork", {"sessionId": parent, "cwd": str(workspace)})
        fork = answer["result"]["sessionId"]
        await _prompt(other, fork, "In the fork")

        await holder.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": parent}}
        )
        cancelled = await holder.until(lambda frame: frame.get("id") == 40)
        assert cancelled["result"] == {"stopReason": "cancelled"}
        await _prompt(holder, parent, "In the parent")

    parent_replay, fork_replay = await _replays(home, workspace, parent, fork)
    left_at = _prompt_at(parent_replay, "Tell me a long story")
    assert fork_replay[:left_at] == parent_replay[:left_at]
    _own_turn(fork_replay, left_at, "Hello (fork)", "In the fork")
    assert _prompt_at(parent_replay, "In the parent") > left_at


async def test_forks_asked_for_wrongly_are_refused(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        parent = await daemon.new_session(workspace)
        unknown = await daemon.request(
            "session/fork", {"sessionId": "sess_0000nothere", "cwd": str(workspace)}
        )
        assert unknown["error"]["code"] == ErrorCode.RESOURCE_NOT_FOUND
        assert unknown["error"]["data"] == {"sessionId": "sess_0000nothere"}
        relative = await daemon.request("session/fork", {"sessionId": parent, "cwd": "here"})
        assert relative["error"]["code"] == ErrorCode.INVALID_PARAMS
        system_prompt = {"mode": "append", "content": [{"type": "text", "text": "Be terse"}]}
        refused = await daemon.request(
            "session/fork",
            {"sessionId": parent, "cwd": str(workspace), "systemPrompt": system_prompt},
        )
        assert refused["error"]["code"] == ErrorCode.INVALID_PARAMS
        assert "systemPrompt" in refused["error"]["message"]
        # Still serving: a fork of a session never prompted is not listed yet.
        fork = await _forked(daemon, parent)
        listing = await daemon.request("session/list", {})
        assert listing["result"]["sessions"] == []
        await _prompt(daemon, fork, "Hello")
        listing = await daemon.request("session/list", {})
        assert [s["sessionId"] for s in listing["result"]["sessions"]] == [fork]
