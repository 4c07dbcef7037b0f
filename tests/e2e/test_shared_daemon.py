"""One daemon, many editors (a `--listen` daemon, as the shim's shared one):
each editor its own sessions; a session attached to one editor at a time; a
turn that outlives its editor, re-attached with no gap and no duplicate; a
permission question that waits for the next editor; exit once idle."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from parley_protocol.jsonrpc import ErrorCode
from parley_protocol.parley import SESSION_ATTACH
from parleyd.offline.script import plan_reply
from tests.support.daemon import daemon_env, offline_env
from tests.support.raw_daemon import RawDaemon
from tests.support.shared_daemon import sequence_of, session_updates, shared_daemon

STORY = "Tell me a long story"


@pytest.fixture
def socket_path() -> Iterator[Path]:
    # Short: a Unix socket's path has room for about 100 bytes, a test's tmp_path not always.
    folder = Path(tempfile.mkdtemp(prefix="pl-"))
    yield folder / "d.sock"
    shutil.rmtree(folder, ignore_errors=True)


def _whole_story() -> str:
    return "".join(plan_reply({"messages": [{"role": "user", "content": STORY}]}).content)


def _chunks(updates: list[dict[str, Any]], session_id: str) -> list[dict[str, Any]]:
    return [
        u
        for u in updates
        if u["sessionId"] == session_id and u["update"]["sessionUpdate"] == "agent_message_chunk"
    ]


def _text(updates: list[dict[str, Any]]) -> str:
    return "".join(u["update"]["content"]["text"] for u in updates)


def _is_chunk(frame: dict[str, Any]) -> bool:
    update = frame.get("params", {}).get("update", {})
    return update.get("sessionUpdate") == "agent_message_chunk"


def _turn_over(frame: dict[str, Any]) -> bool:
    update = frame.get("params", {}).get("update", {})
    turn = (update.get("_meta") or {}).get("parley", {}).get("turn") or {}
    return turn.get("state") == "idle"


def _attach(session_id: str, cwd: Path, replay: dict[str, Any] | None) -> dict[str, Any]:
    return {"sessionId": session_id, "cwd": str(cwd), "replayFrom": replay}


async def _status(editor: RawDaemon, session_id: str) -> str:
    """The session's `_meta.parley.status` in `session/list`."""
    listed = await editor.request("session/list", {})
    (info,) = [i for i in listed["result"]["sessions"] if i["sessionId"] == session_id]
    return str(info["_meta"]["parley"]["status"])


async def _allow_once(editor: RawDaemon, ask: dict[str, Any]) -> None:
    """The editor's answer to the permission request `ask`: allowed, once."""
    allowed = {"outcome": {"outcome": "selected", "optionId": "allow_once"}}
    await editor.send({"jsonrpc": "2.0", "id": ask["id"], "result": allowed})


@asynccontextmanager
async def two_editors(home: Path, socket_path: Path) -> AsyncIterator[tuple[RawDaemon, RawDaemon]]:
    """Two editors connected to one daemon."""
    async with (
        shared_daemon(offline_env(home), socket_path) as daemon,
        daemon.editor() as first,
        daemon.editor() as second,
    ):
        yield first, second


async def _telling(editor: RawDaemon, workspace: Path, chunks: int = 5) -> str:
    session_id = await editor.new_session(workspace)
    await editor.start_prompt(session_id, STORY, 70)
    for _ in range(chunks):
        await editor.until(_is_chunk)
    return session_id


async def test_two_editors_each_with_their_own_session(
    home: Path, workspace: Path, socket_path: Path
) -> None:
    async with two_editors(home, socket_path) as (first, second):
        one = await first.new_session(workspace)
        two = await second.new_session(workspace)
        await first.start_prompt(one, "Hi", 1)
        await second.start_prompt(two, STORY, 2)
        assert (await first.until(lambda f: f.get("id") == 1))["result"]["stopReason"]
        assert (await second.until(lambda f: f.get("id") == 2))["result"]["stopReason"]
        assert {u["sessionId"] for u in session_updates(first)} == {one}
        assert {u["sessionId"] for u in session_updates(second)} == {two}
        assert _text(_chunks(session_updates(second), two)) == _whole_story()


async def test_a_session_is_attached_to_one_editor_until_another_takes_it(
    home: Path, workspace: Path, socket_path: Path
) -> None:
    async with two_editors(home, socket_path) as (first, second):
        session_id = await _telling(first, workspace)
        loaded = await second.load_session(session_id, workspace)
        assert loaded["error"]["code"] == ErrorCode.SESSION_BUSY
        assert "attached to another editor (connection" in loaded["error"]["message"]
        assert SESSION_ATTACH in loaded["error"]["message"]
        prompted = await second.request(
            "session/prompt",
            {"sessionId": session_id, "prompt": [{"type": "text", "text": "x"}]},
        )
        assert prompted["error"]["code"] == ErrorCode.SESSION_BUSY

        taken = await second.request(SESSION_ATTACH, _attach(session_id, workspace, None))
        assert taken["result"]["replayed"] == "none"
        assert taken["result"]["state"] == "running"
        # The first editor's last word on it says who has it now.
        told = await first.until(
            lambda f: "attachedElsewhere" in str(f.get("params", {}).get("update", {}))
        )
        elsewhere = told["params"]["update"]["_meta"]["parley"]["attachedElsewhere"]
        holder = re.search(r"another editor \((connection \d+)\)", loaded["error"]["message"])
        assert holder is not None and holder.group(1) != elsewhere["editor"]
        assert re.fullmatch(r"connection \d+", elsewhere["editor"])
        # The first editor is now the one refused.
        refused = await first.request(
            "session/set_mode", {"sessionId": session_id, "modeId": "ask"}
        )
        assert refused["error"]["code"] == ErrorCode.SESSION_BUSY
        await second.until(_turn_over)
        # The turn's own prompt still answers the editor that sent it.
        assert (await first.until(lambda f: f.get("id") == 70))["result"] == {
            "stopReason": "end_turn"
        }
        seen = _text(_chunks(session_updates(first), session_id))
        rest = _text(_chunks(session_updates(second), session_id))
        assert seen + rest == _whole_story()


@pytest.mark.parametrize("replay", ["after", "start"])
async def test_a_turn_outlives_its_editor_and_the_next_gets_the_rest_exactly(
    home: Path, workspace: Path, socket_path: Path, replay: str
) -> None:
    async with shared_daemon(offline_env(home), socket_path) as daemon:
        async with daemon.editor() as first:
            session_id = await _telling(first, workspace, chunks=8)
        seen = _chunks(session_updates(first), session_id)
        last_seen = sequence_of(seen[-1])
        assert last_seen is not None
        numbers = [sequence_of(u) for u in session_updates(first)]
        assert all(n is not None for n in numbers) and numbers == sorted(set(numbers))

        async with daemon.editor() as second:
            cursor = (
                {"type": "after", "sequence": last_seen} if replay == "after" else {"type": "start"}
            )
            answer = await second.request(SESSION_ATTACH, _attach(session_id, workspace, cursor))
            assert answer["result"]["replayed"] == replay
            assert answer["result"]["state"] == "running"
            await second.until(_turn_over)
            got = session_updates(second)
            told = _chunks(got, session_id)
            numbered = [sequence_of(u) for u in got if sequence_of(u) is not None]
            assert numbered == sorted(set(numbered)), "a number repeated or out of order"
            if replay == "after":
                assert _text(seen) + _text(told) == _whole_story()
                assert min(numbered) > last_seen
            else:
                # Everything, from the user's prompt on, exactly once.
                prompts = [u for u in got if u["update"]["sessionUpdate"] == "user_message_chunk"]
                assert _text(prompts) == STORY
                assert _text(told) == _whole_story()
                assert [sequence_of(u) for u in told] == [sequence_of(u) for u in seen] + [
                    sequence_of(u) for u in told[len(seen) :]
                ]


async def test_an_editor_killed_mid_turn_lets_its_session_go(
    home: Path, workspace: Path, socket_path: Path
) -> None:
    async with shared_daemon(offline_env(home), socket_path, "--idle-exit", "0.2") as daemon:
        async with daemon.editor(killed=True) as first:
            session_id = await _telling(first, workspace)
        async with daemon.editor() as second:
            answer = await second.request(
                SESSION_ATTACH, _attach(session_id, workspace, {"type": "start"})
            )
            assert answer["result"]["replayed"] == "start"
            if answer["result"]["state"] == "running":
                await second.until(_turn_over)
            assert _text(_chunks(session_updates(second), session_id)) == _whole_story()
        # Nothing holds the daemon: it exits idle.
        assert await asyncio.wait_for(daemon.process.wait(), 30) == 0


async def test_a_permission_question_waits_for_the_next_editor(
    home: Path, workspace: Path, socket_path: Path
) -> None:
    async with shared_daemon(offline_env(home), socket_path) as daemon:
        async with daemon.editor() as first:
            session_id = await first.new_session(workspace)
            await first.start_prompt(session_id, 'Write a note saying "later"', 9)
            await first.until(lambda f: f.get("method") == "session/request_permission")
        async with daemon.editor() as second:
            await second.request(SESSION_ATTACH, _attach(session_id, workspace, {"type": "start"}))
            ask = await second.until(lambda f: f.get("method") == "session/request_permission")
            assert ask["params"]["sessionId"] == session_id
            await _allow_once(second, ask)
            await second.until(_turn_over)
        assert "- later" in (workspace / "NOTES.md").read_text()


async def test_a_permission_question_moves_with_the_session_to_the_editor_taking_it(
    home: Path, workspace: Path, socket_path: Path
) -> None:
    async with two_editors(home, socket_path) as (first, second):
        session_id = await first.new_session(workspace)
        await first.start_prompt(session_id, 'Write a note saying "moved"', 9)
        shown = await first.until(lambda f: f.get("method") == "session/request_permission")
        await second.request(SESSION_ATTACH, _attach(session_id, workspace, None))
        withdrawn = await first.until(lambda f: f.get("method") == "$/cancel_request")
        assert withdrawn["params"] == {"requestId": shown["id"]}
        ask = await second.until(lambda f: f.get("method") == "session/request_permission")
        await _allow_once(second, ask)
        await second.until(_turn_over)
    assert "- moved" in (workspace / "NOTES.md").read_text()


async def test_with_no_editor_to_ask_a_permission_is_refused_in_time(
    home: Path, workspace: Path, socket_path: Path
) -> None:
    env = daemon_env(home, PARLEY_PROVIDER="offline", PARLEY_UNATTENDED_PERMISSION_SECONDS="0")
    async with shared_daemon(env, socket_path, "--idle-exit", "0.2") as daemon:
        async with daemon.editor() as first:
            session_id = await first.new_session(workspace)
            await first.start_prompt(session_id, 'Write a note saying "later"', 9)
            await first.until(lambda f: f.get("method") == "session/request_permission")
        # Refused, the turn ends, the session closes, and the idle daemon exits.
        assert await asyncio.wait_for(daemon.process.wait(), 30) == 0
    assert not (workspace / "NOTES.md").exists()
    assert not await asyncio.to_thread(socket_path.exists)
    log = (home / "sessions" / session_id / "log.jsonl").read_text()
    assert '"type":"turn_end"' in log


async def test_editors_leaving_pause_their_turns_when_so_configured(
    home: Path, workspace: Path, socket_path: Path
) -> None:
    env = daemon_env(home, PARLEY_PROVIDER="offline", PARLEY_WHEN_EDITOR_LEAVES="pause")
    async with shared_daemon(env, socket_path) as daemon:
        async with daemon.editor() as first:
            session_id = await _telling(first, workspace)
        async with daemon.editor() as second:
            # Once the daemon has seen the first editor go: paused and closed.
            for _ in range(600):  # a bound for a hang, not a measurement
                if await _status(second, session_id) == "saved":
                    break
                await asyncio.sleep(0.05)
            loaded = await second.load_session(session_id, workspace)
            assert "result" in loaded, loaded
            states = [
                u["update"]["_meta"]["parley"]["turn"]["state"]
                for u in session_updates(second)
                if (u["update"].get("_meta") or {}).get("parley", {}).get("turn")
            ]
            assert states == ["paused"]


async def test_an_idle_daemon_exits_and_removes_its_socket(home: Path, socket_path: Path) -> None:
    async with shared_daemon(offline_env(home), socket_path, "--idle-exit", "0.2") as daemon:
        async with daemon.editor() as editor:
            assert "result" in await editor.request("session/list", {})
        assert await asyncio.wait_for(daemon.process.wait(), 30) == 0
    assert not await asyncio.to_thread(socket_path.exists)
