"""session/list through the real daemon: a session shows up once it has had a
prompt, and stays listed after a restart that rebuilds the index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.daemon import offline_env
from tests.support.raw_daemon import RawDaemon, raw_daemon


async def _listed(daemon: RawDaemon) -> list[dict[str, Any]]:
    answer = await daemon.request("session/list", {})
    sessions: list[dict[str, Any]] = answer["result"]["sessions"]
    return sessions


async def test_a_session_is_listed_once_prompted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        # What CodeCompanion does: two sessions per chat, one of them prompted.
        created = [
            await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
            for _ in range(2)
        ]
        used = created[0]["result"]["sessionId"]
        assert await _listed(daemon) == []

        answer = await daemon.request(
            "session/prompt",
            {"sessionId": used, "prompt": [{"type": "text", "text": "Hello"}]},
        )
        assert answer["result"] == {"stopReason": "end_turn"}
        listed = await _listed(daemon)
        assert [(s["sessionId"], s["title"]) for s in listed] == [(used, "Hello")]

    # Rebuilt from the logs, the index still lists only the prompted session.
    for path in home.glob("index.sqlite*"):
        path.unlink()
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        assert [s["sessionId"] for s in await _listed(daemon)] == [used]


async def test_each_listed_session_says_what_it_is_doing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        created = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
        session_id = created["result"]["sessionId"]
        await daemon.start_prompt(session_id, "Tell me a long story", 70)
        await daemon.until(
            lambda f: (
                f.get("params", {}).get("update", {}).get("sessionUpdate") == "agent_message_chunk"
            )
        )
        (running,) = await _listed(daemon)
        assert running["_meta"]["parley"]["status"] == "running"
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
        )
        await daemon.until(lambda f: f.get("id") == 70)
        (idle,) = await _listed(daemon)
        assert idle["_meta"]["parley"]["status"] == "idle"
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        (saved,) = await _listed(daemon)
        assert saved["_meta"]["parley"]["status"] == "saved"
