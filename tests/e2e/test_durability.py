"""What a session keeps when its storage is strained, in the real daemon driven
by the ACP Python SDK: a disk that fills mid-turn (ENOSPC injected at the file
layer by tests/support/enospc, without a hook in Parley), and a tool output too
long for a log line, kept as a blob and replayed whole."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import acp
import pytest
from acp import text_block
from acp.schema import RequestPermissionResponse

from parley_protocol.jsonrpc import ErrorCode
from parleyd.session.replay import INTERRUPTED_CALL
from parleyd.store.blobs import BLOB_THRESHOLD_CHARS, BLOBS_DIR
from parleyd.store.log import LOG_NAME, read_log
from parleyd.tools.files import MAX_READ_BYTES
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.daemon import offline_env
from tests.support.updates import as_replayed

ENOSPC_SITE = Path(__file__).parents[1] / "support" / "enospc"
COMMAND = "Run `echo hello`"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Durable\n\nWhat a session keeps.\n")
    return root


@dataclass(frozen=True)
class FullDisk:
    """The session store's disk, as a daemon started with `env` sees it."""

    flag: Path

    def env(self, home: Path) -> dict[str, str]:
        env = offline_env(home)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ENOSPC_SITE), env.get("PYTHONPATH")]))
        env["FULL_DISK_FLAG"] = str(self.flag)
        return env

    def fill(self, room: int) -> None:
        """From now on only `room` more bytes fit."""
        self.flag.write_text(str(room))

    def free(self) -> None:
        self.flag.unlink()


@pytest.fixture
def disk(tmp_path: Path) -> FullDisk:
    return FullDisk(tmp_path / "disk-is-full")


@dataclass
class FillingClient(RecordingClient):
    """Allows the command it is asked about, and the disk fills while it does:
    40 bytes are left, so the next record's line is cut off midway."""

    disk: FullDisk | None = None

    async def request_permission(
        self, session_id: str, tool_call: Any, options: list[Any], **kwargs: Any
    ) -> RequestPermissionResponse:
        assert self.disk is not None
        self.disk.fill(40)
        return await super().request_permission(session_id, tool_call, options, **kwargs)


async def _start(connection: acp.core.ClientSideConnection, workspace: Path) -> str:
    await connection.initialize(protocol_version=1)
    session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
    return session.session_id


async def _prompt(connection: acp.core.ClientSideConnection, session_id: str, text: str) -> str:
    response = await connection.prompt(session_id=session_id, prompt=[text_block(text)])
    return response.stop_reason


async def _fill_during_a_command(
    connection: acp.core.ClientSideConnection, session_id: str
) -> acp.RequestError:
    """The error of a turn during which the disk fills."""
    with pytest.raises(acp.RequestError) as failure:
        await _prompt(connection, session_id, COMMAND)
    assert failure.value.code == ErrorCode.INTERNAL_ERROR
    return failure.value


def _dumped(updates: list[Any]) -> list[dict[str, Any]]:
    return [update.model_dump(by_alias=True) for update in updates]


def _disk_full(session_id: str, log_path: Path) -> str:
    return (
        f"session {session_id}: could not append a record: {log_path}: "
        "the disk is full (No space left on device)"
    )


def _assert_history_up_to_the_failure(
    replay: list[dict[str, Any]], first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    """`replay` is the turn that completed as it streamed (`first`), then of the
    turn the disk stopped everything the client saw (`second`) up to the end of
    the command: live that said the turn failed, which the log could not take,
    so the replay closes the call as not finished."""
    assert replay[0]["content"]["text"] == "Summarize README.md"
    assert replay[1 : len(first) + 1] == first
    rest = replay[len(first) + 1 :]
    assert rest[0]["content"]["text"] == COMMAND
    *streamed, ended_live = second
    assert rest[1 : len(second)] == streamed
    assert ended_live["status"] == "failed"
    assert ended_live["content"][0]["content"]["text"].startswith("Not run: the turn failed")
    closed = rest[len(second)]
    assert (closed["toolCallId"], closed["status"]) == (ended_live["toolCallId"], "failed")
    assert closed["content"][0]["content"]["text"] == INTERRUPTED_CALL
    # Nothing of the prompt the full disk refused.
    assert all(u["sessionUpdate"] != "user_message_chunk" for u in rest[1:])


async def _load(
    connection: acp.core.ClientSideConnection, client: RecordingClient, session_id: str, cwd: Path
) -> list[dict[str, Any]]:
    """The updates `session/load` replays."""
    already = len(client.updates)
    await connection.load_session(session_id=session_id, cwd=str(cwd), mcp_servers=[])
    return _dumped(client.updates[already:])


async def test_a_disk_that_fills_mid_turn_loses_nothing_written_before_it(
    workspace: Path, home: Path, disk: FullDisk
) -> None:
    live = FillingClient(disk=disk)
    async with acp_daemon(disk.env(home), live) as (connection, process):
        session_id = await _start(connection, workspace)
        log_path = home / "sessions" / session_id / LOG_NAME
        assert await _prompt(connection, session_id, "Summarize README.md") == "end_turn"
        first_turn = len(live.updates)
        await _fill_during_a_command(connection, session_id)
        first = as_replayed(_dumped(live.updates[:first_turn]))
        second = as_replayed(_dumped(live.updates[first_turn:]))
        # The daemon goes on answering: a prompt while the disk is full fails at
        # its first record, and says so.
        with pytest.raises(acp.RequestError) as again:
            await _prompt(connection, session_id, "Hello")
        assert str(again.value) == _disk_full(session_id, log_path)
        # The line the disk cut off midway was undone: every line is whole.
        contents = read_log(log_path.parent)
        assert (contents.malformed_lines, contents.torn_bytes) == (0, 0)

        disk.free()
        replay = await _load(connection, live, session_id, workspace)
        _assert_history_up_to_the_failure(replay, first, second)
        assert process.returncode is None

    replayed = RecordingClient()
    async with acp_daemon(offline_env(home), replayed) as (connection, _):
        await connection.initialize(protocol_version=1)
        replay = await _load(connection, replayed, session_id, workspace)
        assert await _prompt(connection, session_id, "Hello") == "end_turn"
    _assert_history_up_to_the_failure(replay, first, second)


async def test_a_turn_the_full_disk_stops_says_why_and_ends_its_tool_call(
    workspace: Path, home: Path, disk: FullDisk
) -> None:
    live = FillingClient(disk=disk)
    async with acp_daemon(disk.env(home), live) as (connection, _):
        session_id = await _start(connection, workspace)
        failure = await _fill_during_a_command(connection, session_id)
    assert _disk_full(session_id, home / "sessions" / session_id / LOG_NAME) in str(failure)
    ends = [u.status for u in live.updates if u.session_update == "tool_call_update" and u.status]
    assert ends[-1] in ("completed", "failed")


async def test_a_long_tool_output_is_kept_as_a_blob_and_replayed_whole(
    workspace: Path, home: Path
) -> None:
    # run_shell keeps at most 32 KiB of a command's output, under the threshold,
    # so the long output is a file read whole.
    text = "".join(f"{n:04d} a line of a file too long for one log line\n" for n in range(1900))
    assert BLOB_THRESHOLD_CHARS < len(text) < MAX_READ_BYTES
    (workspace / "big.txt").write_text(text)
    live = RecordingClient()
    async with acp_daemon(offline_env(home), live) as (connection, _):
        session_id = await _start(connection, workspace)
        assert await _prompt(connection, session_id, "Read big.txt") == "end_turn"
    ended = [u for u in live.updates if u.session_update == "tool_call_update" and u.status]
    assert ended[-1].content[0].content.text == text

    folder = home / "sessions" / session_id
    assert [blob.read_text() for blob in (folder / BLOBS_DIR).iterdir()] == [text]
    assert (folder / LOG_NAME).stat().st_size < BLOB_THRESHOLD_CHARS

    replayed = RecordingClient()
    async with acp_daemon(offline_env(home), replayed) as (connection, _):
        await connection.initialize(protocol_version=1)
        await connection.load_session(session_id=session_id, cwd=str(workspace), mcp_servers=[])
    assert replayed.updates[0].content.text == "Read big.txt"
    assert _dumped(replayed.updates[1:]) == as_replayed(_dumped(live.updates))
