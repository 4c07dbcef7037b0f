"""The session lifecycle through the real daemon: resume, close, delete,
status, archive and unarchive, set_title. Stable methods go through the ACP
Python SDK where it has them; delete and the unstable methods over the raw
wire. A session another daemon process has open is refused, never changed
under it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acp import text_block

from parley_protocol.jsonrpc import ErrorCode
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.daemon import offline_env
from tests.support.raw_daemon import RawDaemon, raw_daemon

INTRO = "Parley's scripted offline model"


async def _prompted_session(daemon: RawDaemon, workspace: Path, text: str = "Hello") -> str:
    """A new session that has had one prompt, so it is listed."""
    answer = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
    session_id: str = answer["result"]["sessionId"]
    assert (await _prompt(daemon, session_id, text))["result"] == {"stopReason": "end_turn"}
    return session_id


async def _prompt(daemon: RawDaemon, session_id: str, text: str) -> dict[str, Any]:
    return await _call(
        daemon, "session/prompt", session_id, prompt=[{"type": "text", "text": text}]
    )


async def _call(daemon: RawDaemon, method: str, session_id: str, **params: Any) -> dict[str, Any]:
    return await daemon.request(method, {"sessionId": session_id, **params})


async def _listed(daemon: RawDaemon, **params: Any) -> list[str]:
    answer = await daemon.request("session/list", params)
    return [session["sessionId"] for session in answer["result"]["sessions"]]


async def _status(daemon: RawDaemon, session_id: str) -> str:
    status: str = (await _call(daemon, "session/status", session_id))["result"]["status"]
    return status


async def _start_long_prompt(daemon: RawDaemon, session_id: str, request_id: int) -> None:
    """Send a prompt that streams for a long while; returns once it streams."""
    params = {"sessionId": session_id, "prompt": [{"type": "text", "text": "Tell me a long story"}]}
    await daemon.send(
        {"jsonrpc": "2.0", "id": request_id, "method": "session/prompt", "params": params}
    )
    while True:
        update = (await daemon.receive()).get("params", {}).get("update", {})
        if update.get("sessionUpdate") == "agent_message_chunk":
            return


async def _while_prompting(
    daemon: RawDaemon, prompt_id: int, method: str, session_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send `method` for the session while prompt `prompt_id` runs: the answers
    to the prompt and to it, in whichever order they come."""
    await daemon.send(
        {
            "jsonrpc": "2.0",
            "id": prompt_id + 1,
            "method": method,
            "params": {"sessionId": session_id},
        }
    )
    answers: dict[int, dict[str, Any]] = {}
    while len(answers) < 2:
        frame = await daemon.receive()
        if "method" not in frame and frame.get("id") in (prompt_id, prompt_id + 1):
            answers[frame["id"]] = frame
    return answers[prompt_id], answers[prompt_id + 1]


def _title_updates(daemon: RawDaemon) -> list[dict[str, Any]]:
    return [
        frame["params"]["update"]
        for frame in daemon.frames
        if frame.get("method") == "session/update"
        and frame["params"]["update"]["sessionUpdate"] == "session_info_update"
    ]


def _drop_index(home: Path) -> None:
    """Delete the index: the next daemon rebuilds it from the session logs."""
    for path in home.glob("index.sqlite*"):
        path.unlink()


def _error(answer: dict[str, Any]) -> tuple[int, str]:
    return answer["error"]["code"], answer["error"]["message"]


async def test_initialize_advertises_every_lifecycle_method(home: Path) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        answer = await daemon.initialize()
    assert answer["result"]["agentCapabilities"]["sessionCapabilities"] == {
        "list": {},
        "delete": {},
        "additionalDirectories": {},
        "resume": {},
        "close": {},
        "archive": {},
        "status": {},
        "title": {},
        "fork": {},
    }


async def test_resume_opens_a_stored_session_without_replaying_it(
    home: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        session_id = await _prompted_session(daemon, workspace)

    client = RecordingClient()
    async with acp_daemon(offline_env(home), client) as (connection, _):
        await connection.initialize(protocol_version=1)
        await connection.resume_session(session_id=session_id, cwd=str(workspace))
        answer = await connection.prompt(session_id=session_id, prompt=[text_block("Hi again")])
    assert answer.stop_reason == "end_turn"
    # No replay (it would start with the first prompt), yet the model has the
    # history: it introduces itself only in a conversation's first answer.
    assert "user_message_chunk" not in client.kinds()
    assert client.text() and INTRO not in client.text()


async def test_status_and_close(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as daemon, raw_daemon(offline_env(home)) as other:
        await daemon.initialize()
        await other.initialize()
        session_id = await _prompted_session(daemon, workspace)
        assert await _status(daemon, session_id) == "open"
        # Another daemon answers for itself: it does not have the session in memory.
        assert await _status(other, session_id) == "saved"

        await _start_long_prompt(daemon, session_id, 40)
        prompted, closed = await _while_prompting(daemon, 40, "session/close", session_id)
        assert prompted["result"] == {"stopReason": "cancelled"}
        assert closed["result"] == {}
        assert await _status(daemon, session_id) == "saved"
        # Forgotten here, its lock released: the other daemon can open it now.
        assert _error(await _prompt(daemon, session_id, "Hi"))[0] == ErrorCode.RESOURCE_NOT_FOUND
        resumed = await _call(other, "session/resume", session_id, cwd=str(workspace))
        assert resumed["result"]["modes"]["currentModeId"] == "ask"
        assert (await _prompt(other, session_id, "Hi"))["result"] == {"stopReason": "end_turn"}

        # Closed already here: nothing to do. Unknown: said so, naming it.
        assert (await _call(daemon, "session/close", session_id))["result"] == {}
        unknown = await _call(daemon, "session/status", "sess_0000nothere")
        assert unknown["error"]["code"] == ErrorCode.RESOURCE_NOT_FOUND
        assert unknown["error"]["data"] == {"sessionId": "sess_0000nothere"}
        closed_unknown = await _call(daemon, "session/close", "sess_0000nothere")
        assert closed_unknown["error"]["code"] == ErrorCode.RESOURCE_NOT_FOUND


async def test_set_title_is_stored_announced_and_kept(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        created = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
        session_id = created["result"]["sessionId"]
        answer = await _call(
            daemon, "session/set_title", session_id, title="  Fix the parser\nand more "
        )
        assert answer["result"] == {"title": "Fix the parser"}
        [update] = _title_updates(daemon)
        assert update["title"] == "Fix the parser"
        assert update["_meta"]["parley"]["conversation"]["depth"] == 0

        # Set before the first prompt, it is not replaced by one made from it.
        assert (await _prompt(daemon, session_id, "Hello there"))["result"] == {
            "stopReason": "end_turn"
        }
        blank = await _call(daemon, "session/set_title", session_id, title=" \n ")
        assert _error(blank)[0] == ErrorCode.INVALID_PARAMS
        unknown = await _call(daemon, "session/set_title", "sess_0000nothere", title="x")
        assert _error(unknown)[0] == ErrorCode.RESOURCE_NOT_FOUND
        listing = await daemon.request("session/list", {})
        assert [s["title"] for s in listing["result"]["sessions"]] == ["Fix the parser"]

    # A session not open anywhere is retitled too, and the title outlives a rebuilt index.
    _drop_index(home)
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        answer = await _call(daemon, "session/set_title", session_id, title="Parser, again")
        assert answer["result"] == {"title": "Parser, again"}
        # The client has not opened it on this connection: it is told nothing else.
        assert _title_updates(daemon) == []
    _drop_index(home)
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        listing = await daemon.request("session/list", {})
        assert [s["title"] for s in listing["result"]["sessions"]] == ["Parser, again"]


async def test_archived_sessions_are_hidden_until_unarchived(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        kept = await _prompted_session(daemon, workspace)
        archived = await _prompted_session(daemon, workspace)
        await _start_long_prompt(daemon, archived, 60)
        # Archiving closes the session first, its running turn included.
        prompted, answer = await _while_prompting(daemon, 60, "session/archive", archived)
        assert prompted["result"] == {"stopReason": "cancelled"}
        assert answer["result"] == {}
        assert await _status(daemon, archived) == "saved"
        assert (await _call(daemon, "session/archive", archived))["result"] == {}

        assert await _listed(daemon) == [kept]
        assert await _listed(daemon, archived="only") == [archived]
        listing = await daemon.request("session/list", {"archived": "include"})
        flags = {s["sessionId"]: s["archived"] for s in listing["result"]["sessions"]}
        assert flags == {kept: False, archived: True}
        refused = await daemon.request("session/list", {"archived": "_mine"})
        assert _error(refused)[0] == ErrorCode.INVALID_PARAMS
        unknown = await _call(daemon, "session/archive", "sess_0000nothere")
        assert _error(unknown)[0] == ErrorCode.RESOURCE_NOT_FOUND

    # Kept in the log: an index rebuilt from the logs still hides it.
    _drop_index(home)
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        assert await _listed(daemon) == [kept]
        assert (await _call(daemon, "session/unarchive", archived))["result"] == {}
        assert sorted(await _listed(daemon)) == sorted([kept, archived])
        # Unarchiving loads nothing.
        assert await _status(daemon, archived) == "saved"


async def test_delete_removes_the_folder_and_the_listing(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        running = await _prompted_session(daemon, workspace)
        deleted = await _prompted_session(daemon, workspace)
        await _start_long_prompt(daemon, running, 80)
        refused = await _call(daemon, "session/delete", running)
        assert _error(refused) == (
            ErrorCode.SESSION_BUSY,
            f"session {running} is running a prompt: cancel it or wait for its answer"
            " before deleting it",
        )
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": running}}
        )

        # Open here and idle: closed, then deleted.
        assert (await _call(daemon, "session/delete", deleted))["result"] == {}
        assert not (home / "sessions" / deleted).exists()
        assert await _listed(daemon) == [running]
        assert _error(await _prompt(daemon, deleted, "Hi"))[0] == ErrorCode.RESOURCE_NOT_FOUND
        assert (
            _error(await _call(daemon, "session/status", deleted))[0]
            == ErrorCode.RESOURCE_NOT_FOUND
        )
        # Deleted already, or never there: ACP has it succeed.
        for session_id in (deleted, "sess_0000nothere", "../sessions"):
            assert (await _call(daemon, "session/delete", session_id))["result"] == {}
        assert (home / "sessions" / running).exists()

    # Gone for good: a restart does not bring it back from anywhere.
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        assert await _listed(daemon) == [running]


async def test_a_session_another_daemon_has_open_is_left_alone(home: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(home)) as holder, raw_daemon(offline_env(home)) as daemon:
        await holder.initialize()
        await daemon.initialize()
        session_id = await _prompted_session(holder, workspace)
        held = f"session {session_id} is open in another Parley daemon (pid {holder.process.pid})"
        for method, params in [
            ("session/delete", {}),
            ("session/archive", {}),
            ("session/unarchive", {}),
            ("session/set_title", {"title": "Not mine"}),
            ("session/resume", {"cwd": str(workspace)}),
            ("session/load", {"cwd": str(workspace), "mcpServers": []}),
        ]:
            answer = await _call(daemon, method, session_id, **params)
            assert _error(answer) == (ErrorCode.SESSION_BUSY, held), method
        # Not open here, so closing here is done already; the holder keeps it.
        assert (await _call(daemon, "session/close", session_id))["result"] == {}

        assert (home / "sessions" / session_id / "log.jsonl").exists()
        listing = await daemon.request("session/list", {})
        assert [(s["sessionId"], s["title"]) for s in listing["result"]["sessions"]] == [
            (session_id, "Hello")
        ]
        assert (await _prompt(holder, session_id, "Still mine"))["result"] == {
            "stopReason": "end_turn"
        }

        # Once the holder lets go, the session is the other daemon's to delete.
        assert (await _call(holder, "session/close", session_id))["result"] == {}
        assert (await _call(daemon, "session/delete", session_id))["result"] == {}
        assert await _listed(holder) == []
