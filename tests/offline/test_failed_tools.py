"""What the scripted model says after a write, through the real daemon: a call the
user declined is reported as declined, a call the filesystem refused as a failure
with the system's reason."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from acp import text_block

from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.daemon import offline_env


def _parent_is_a_file(workspace: Path) -> str:
    (workspace / "blocked").write_text("a file, not a folder\n")
    return "Not a directory"


def _read_only_folder(workspace: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("file modes do not stop root from writing")
    folder = workspace / "blocked"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return "Permission denied"


async def _write_note(workspace: Path, home: Path, client: RecordingClient) -> str:
    """The scripted model's answer to a request to write blocked/NOTES.md."""
    async with acp_daemon(offline_env(home), client) as (connection, _):
        await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        response = await connection.prompt(
            session_id=session.session_id,
            prompt=[text_block('Write a note to blocked/NOTES.md saying "ship it"')],
        )
    assert response.stop_reason == "end_turn"
    last_update = [u for u in client.updates if u.session_update == "tool_call_update"][-1]
    assert last_update.status == "failed"
    return client.text()


@pytest.mark.parametrize("block", [_parent_is_a_file, _read_only_folder])
async def test_a_write_that_fails_is_reported_as_failed_with_its_reason(
    tmp_path: Path, block: Callable[[Path], str]
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    reason = block(workspace)
    client = RecordingClient(permission_answer="allow_once")
    try:
        answer = await _write_note(workspace, tmp_path / "home", client)
    finally:
        (workspace / "blocked").chmod(stat.S_IRWXU)
    assert len(client.permission_requests) == 1
    assert f"`write_file` failed: cannot write blocked/NOTES.md: {reason}." in answer
    assert "declined" not in answer


async def test_a_declined_write_is_reported_as_declined(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    client = RecordingClient(permission_answer="reject_once")
    answer = await _write_note(workspace, tmp_path / "home", client)
    assert "You declined the `write_file` call, so nothing was changed." in answer
    assert "failed" not in answer
    assert not (workspace / "blocked").exists()
