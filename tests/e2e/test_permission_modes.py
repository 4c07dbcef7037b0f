"""Permission modes through the real daemon and the scripted model: each mode
switched mid-session with `session/set_mode`, what it asks, refuses and runs,
the mode and the "always" answers per command prefix across restarts and
loads, the defaults of `config.toml`, and the same through the ACP Python SDK."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import acp
import pytest
from acp import text_block

from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.daemon import offline_env
from tests.support.raw_daemon import RawDaemon, raw_daemon

MODE_IDS = ["ask", "accept_edits", "read_only", "full_auto"]
READ_ONLY = "the session is in read-only mode"

_prompt_ids = itertools.count(1)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Modes\n\nAbout modes.\n")
    return root


@dataclass
class _Turn:
    stop_reason: str
    # The `session/request_permission` params, in the order they were asked.
    questions: list[dict[str, Any]]
    # How each tool call of the turn ended: its last `tool_call_update`.
    calls: list[dict[str, Any]]


async def _turn(daemon: RawDaemon, session_id: str, text: str, answer: str | None = None) -> _Turn:
    """Run a prompt to its answer, answering every permission question with the
    option `answer`; without one, a question fails the test."""
    request_id = next(_prompt_ids)
    first = len(daemon.frames)
    await daemon.start_prompt(session_id, text, request_id)
    questions = []
    while True:
        frame = await daemon.receive()
        if frame.get("method") == "session/request_permission":
            questions.append(frame["params"])
            assert answer is not None, f"{text!r} asked: {frame['params']['toolCall']['title']}"
            outcome = {"outcome": "selected", "optionId": answer}
            await daemon.send({"jsonrpc": "2.0", "id": frame["id"], "result": {"outcome": outcome}})
        elif frame.get("id") == request_id and "method" not in frame:
            break
    updates = _updates(daemon.frames[first:])
    calls = [
        u
        for u in updates
        if u["sessionUpdate"] == "tool_call_update" and u.get("status") in ("completed", "failed")
    ]
    return _Turn(frame["result"]["stopReason"], questions, calls)


def _updates(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["params"]["update"] for f in frames if f.get("method") == "session/update"]


def _mode_updates(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [u for u in _updates(frames) if u["sessionUpdate"] == "current_mode_update"]


async def _set_mode(daemon: RawDaemon, session_id: str, mode_id: str) -> None:
    """Switch modes; the client hears of it before the answer."""
    answer = await daemon.request("session/set_mode", {"sessionId": session_id, "modeId": mode_id})
    assert answer["result"] == {}
    told = _updates(daemon.frames[:-1])[-1]
    assert (told["sessionUpdate"], told["currentModeId"]) == ("current_mode_update", mode_id)


async def _new_session(daemon: RawDaemon, workspace: Path) -> tuple[str, dict[str, Any]]:
    """A session, and the `modes` its answer offers."""
    await daemon.initialize()
    created = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
    return created["result"]["sessionId"], created["result"]["modes"]


def _refused(turn: _Turn, why: str) -> bool:
    """The turn's one tool call was refused for `why`, without a question."""
    (call,) = turn.calls
    return not turn.questions and call["status"] == "failed" and why in call["rawOutput"]["output"]


async def test_every_mode_switched_mid_session(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        session_id, modes = await _new_session(daemon, workspace)
        assert modes["currentModeId"] == "ask"
        assert [mode["id"] for mode in modes["availableModes"]] == MODE_IDS
        assert all(mode["name"] and mode["description"] for mode in modes["availableModes"])

        # ask: a write asks first (and is rejected here).
        asked = await _turn(daemon, session_id, 'Write a note saying "asked"', "reject_once")
        assert len(asked.questions) == 1
        assert not (workspace / "NOTES.md").exists()

        await _set_mode(daemon, session_id, "accept_edits")
        edited = await _turn(daemon, session_id, 'Write a note saying "accepted"')
        assert not edited.questions and "accepted" in (workspace / "NOTES.md").read_text()
        shell = await _turn(daemon, session_id, "Run `ls`", "allow_once")
        assert len(shell.questions) == 1 and shell.calls[-1]["status"] == "completed"

        await _set_mode(daemon, session_id, "read_only")
        write = await _turn(daemon, session_id, 'Write a note to KEPT.md saying "no"')
        command = await _turn(daemon, session_id, "Run `touch made.txt`")
        assert _refused(write, READ_ONLY) and _refused(command, READ_ONLY)
        assert not (workspace / "KEPT.md").exists() and not (workspace / "made.txt").exists()
        # What changes nothing still runs.
        read = await _turn(daemon, session_id, "Summarize README.md")
        assert not read.questions and read.calls[-1]["status"] == "completed"

        await _set_mode(daemon, session_id, "full_auto")
        write = await _turn(daemon, session_id, 'Write a note to AUTO.md saying "auto"')
        command = await _turn(daemon, session_id, "Run `touch made.txt`")
        assert not write.questions and not command.questions
        assert [call["status"] for call in write.calls + command.calls] == ["completed"] * 2
        assert (workspace / "AUTO.md").exists() and (workspace / "made.txt").exists()
        # Setting the mode it is in changes nothing and says nothing.
        told = len(_mode_updates(daemon.frames))
        again = {"sessionId": session_id, "modeId": "full_auto"}
        assert (await daemon.request("session/set_mode", again))["result"] == {}
        assert len(_mode_updates(daemon.frames)) == told


async def test_the_mode_persists_across_restarts_load_and_resume(
    home: Path, workspace: Path
) -> None:
    env = offline_env(home)
    async with raw_daemon(env) as daemon:
        session_id, _ = await _new_session(daemon, workspace)
        await _set_mode(daemon, session_id, "accept_edits")
        await _set_mode(daemon, session_id, "full_auto")
        assert not (await _turn(daemon, session_id, "Run `ls`")).questions
        live = _mode_updates(daemon.frames)

    async with raw_daemon(env) as daemon:
        await daemon.initialize()
        loaded = await daemon.load_session(session_id, workspace)
        assert loaded["result"]["modes"]["currentModeId"] == "full_auto"
        assert [mode["id"] for mode in loaded["result"]["modes"]["availableModes"]] == MODE_IDS
        # The replay says each change where it happened, as the client heard it live.
        assert _mode_updates(daemon.frames) == live
        assert not (await _turn(daemon, session_id, "Run `ls`")).questions
        await _set_mode(daemon, session_id, "read_only")

    async with raw_daemon(env) as daemon:
        await daemon.initialize()
        params = {"sessionId": session_id, "cwd": str(workspace), "mcpServers": []}
        resumed = await daemon.request("session/resume", params)
        assert resumed["result"]["modes"]["currentModeId"] == "read_only"
        assert _refused(await _turn(daemon, session_id, "Run `ls`"), READ_ONLY)


async def test_always_allowing_a_command_holds_for_its_prefix_across_a_load(
    home: Path, workspace: Path
) -> None:
    env = offline_env(home)
    async with raw_daemon(env) as daemon:
        session_id, _ = await _new_session(daemon, workspace)
        first = await _turn(daemon, session_id, "Run `git status`", "allow_always")
        (question,) = first.questions
        names = {option["kind"]: option["name"] for option in question["options"]}
        assert names == {
            "allow_once": "Allow once",
            "allow_always": "Always allow `git status`",
            "reject_once": "Reject",
            "reject_always": "Always reject `git status`",
        }
        assert not (await _turn(daemon, session_id, "Run `git status -s`")).questions
        push = await _turn(daemon, session_id, "Run `git push`", "reject_once")
        (question,) = push.questions
        assert "Always allow `git push`" in [option["name"] for option in question["options"]]
        # A second command after the allowed one is not what was allowed.
        chained = await _turn(
            daemon, session_id, "Run `git status && touch made.txt`", "reject_once"
        )
        assert len(chained.questions) == 1
        assert not (workspace / "made.txt").exists()

    async with raw_daemon(env) as daemon:
        await daemon.initialize()
        await daemon.load_session(session_id, workspace)
        assert not (await _turn(daemon, session_id, "Run `git status --short`")).questions
        assert (
            len((await _turn(daemon, session_id, "Run `git push`", "reject_once")).questions) == 1
        )


async def test_per_tool_defaults_from_the_config_file(
    home: Path, workspace: Path, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[permissions]\nread_file = "ask"\nrun_shell = "deny"\n')
    env = {**offline_env(home), "PARLEY_CONFIG": str(config)}
    async with raw_daemon(env) as daemon:
        session_id, _ = await _new_session(daemon, workspace)
        read = await _turn(daemon, session_id, "Summarize README.md", "allow_once")
        assert [q["toolCall"]["title"] for q in read.questions] == ["Read README.md"]
        denied = "the user's configuration denies run_shell"
        assert _refused(await _turn(daemon, session_id, "Run `touch made.txt`"), denied)
        # Full auto stops the asking, not the denying.
        await _set_mode(daemon, session_id, "full_auto")
        assert not (await _turn(daemon, session_id, "Summarize README.md")).questions
        assert _refused(await _turn(daemon, session_id, "Run `touch made.txt`"), denied)
    assert not (workspace / "made.txt").exists()


async def test_an_unknown_mode_or_session_is_refused_and_nothing_changes(
    home: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        session_id, _ = await _new_session(daemon, workspace)
        bad = await daemon.request("session/set_mode", {"sessionId": session_id, "modeId": "yolo"})
        assert bad["error"]["code"] == -32602
        assert "ask, accept_edits, read_only, full_auto" in bad["error"]["message"]
        unknown = await daemon.request(
            "session/set_mode", {"sessionId": "sess_0000nothere", "modeId": "read_only"}
        )
        assert unknown["error"]["code"] == -32002
        assert not _mode_updates(daemon.frames)
        # Still in ask mode.
        asked = await _turn(daemon, session_id, 'Write a note saying "still asks"', "allow_once")
        assert len(asked.questions) == 1


async def test_modes_through_the_acp_sdk(home: Path, workspace: Path) -> None:
    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        assert session.modes is not None and session.modes.current_mode_id == "ask"
        assert [mode.id for mode in session.modes.available_modes] == MODE_IDS
        await connection.set_session_mode(session_id=session.session_id, mode_id="read_only")
        told = await asyncio.wait_for(
            client.wait_for(lambda u: u.session_update == "current_mode_update"), 10
        )
        assert told.current_mode_id == "read_only"
        with pytest.raises(acp.RequestError) as refused:
            await connection.set_session_mode(session_id=session.session_id, mode_id="yolo")
        assert refused.value.code == -32602
        answer = await connection.prompt(
            session_id=session.session_id, prompt=[text_block('Write a note saying "no"')]
        )
    assert answer.stop_reason == "end_turn"
    assert not client.permission_requests and not (workspace / "NOTES.md").exists()

    replayed = RecordingClient()
    async with acp_daemon(offline_env(home), replayed) as (connection, _):
        await connection.initialize(protocol_version=1)
        loaded = await connection.load_session(
            session_id=session.session_id, cwd=str(workspace), mcp_servers=[]
        )
    assert loaded.modes is not None and loaded.modes.current_mode_id == "read_only"
    modes = [
        u.current_mode_id for u in replayed.updates if u.session_update == "current_mode_update"
    ]
    assert modes == ["read_only"]
