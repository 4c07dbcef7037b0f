"""A log written by Parley's first release (format 1) loads into the current
release through the real daemon, with the replay it had then."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from parleyd.store.log import read_log
from parleyd.store.records import TurnEnded
from tests.support.daemon import offline_env
from tests.support.fixtures import FIXTURES
from tests.support.raw_daemon import raw_daemon
from tests.support.updates import as_replayed

LOGS = FIXTURES / "logs"
# Written by `parleyd` 0.1.0 (format 1) in a four-turn offline session: a read,
# an allowed write, a declined command and a story cancelled midway; the
# replay beside it is what that release's `session/load` sent.
V1_LOG = LOGS / "v1-session.jsonl"
V1_REPLAY = LOGS / "v1-session.replay.json"


def _install(home: Path, lines: list[bytes]) -> str:
    session_id: str = json.loads(lines[0])["session_id"]
    folder = home / "sessions" / session_id
    folder.mkdir(parents=True)
    (folder / "log.jsonl").write_bytes(b"".join(lines))
    return session_id


async def _load(home: Path, session_id: str, workspace: Path) -> list[dict[str, Any]]:
    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        answer = await daemon.request(
            "session/load", {"sessionId": session_id, "cwd": str(workspace), "mcpServers": []}
        )
        assert answer["result"]["modes"]["currentModeId"] == "ask"
        replayed = [f["params"]["update"] for f in daemon.frames if f.get("method")]
        # The migrated history is valid for the model: the session goes on.
        more = await daemon.request(
            "session/prompt",
            {"sessionId": session_id, "prompt": [{"type": "text", "text": "Hello again"}]},
        )
        assert more["result"] == {"stopReason": "end_turn"}
    return replayed


async def test_a_format_1_log_replays_as_it_did(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "workspace"
    workspace.mkdir()
    session_id = _install(home, V1_LOG.read_bytes().splitlines(keepends=True))
    expected = json.loads(V1_REPLAY.read_text())["updates"]

    replayed = await _load(home, session_id, workspace)

    # What the first release replayed delta by delta now comes merged per part,
    # with what later releases added beside it: the title, more usage figures;
    # and of its usage updates, each turn's last, which a replay now sends alone.
    titles = [u for u in replayed if u["sessionUpdate"] == "session_info_update"]
    assert [u["title"] for u in titles] == ["Read README.md and summarize it"]
    replayed = [u for u in replayed if u not in titles]
    merged = as_replayed(_each_turns_last_usage_final(expected))
    assert sum(u["sessionUpdate"] == "usage_update" for u in merged) == 3
    assert len(replayed) == len(merged) < len(expected)
    for now, then in zip(replayed, merged, strict=True):
        assert _holds(now, then), f"{now} does not hold {then}"


def _each_turns_last_usage_final(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first release's updates, the last usage figures before each prompt
    marked as its turn's final ones (that release marked none)."""
    last_usage: dict[str, Any] | None = None
    for update in updates:
        if update["sessionUpdate"] == "usage_update":
            last_usage = update
        elif update["sessionUpdate"] == "user_message_chunk" and last_usage is not None:
            last_usage["_meta"]["parley"]["usage"]["turnEnded"] = True
            last_usage = None
    return updates


def _holds(now: Any, then: Any) -> bool:
    """`now` is `then` with keys added to its objects, nothing changed or removed."""
    if isinstance(then, dict):
        return isinstance(now, dict) and all(
            k in now and _holds(now[k], v) for k, v in then.items()
        )
    if isinstance(then, list):
        return isinstance(now, list) and len(now) == len(then) and all(map(_holds, now, then))
    return bool(now == then)


async def test_a_format_1_log_cut_inside_a_tool_call_is_closed_on_load(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "workspace"
    workspace.mkdir()
    lines = V1_LOG.read_bytes().splitlines(keepends=True)
    # Cut right after the response asking for the write: the daemon died
    # while the permission question was open.
    cut = next(
        i
        for i, line in enumerate(lines)
        if b'"type":"assistant"' in line and b'"write_file"' in line
    )
    session_id = _install(home, lines[: cut + 1])

    replayed = await _load(home, session_id, workspace)

    closed = [u for u in replayed if u.get("status") == "failed"]
    assert [u["toolCallId"] for u in closed] == ["call_scripted_3_0"]
    assert "Parley stopped" in closed[0]["content"][0]["content"]["text"]
    ends = [r for r in read_log(home / "sessions" / session_id).records if isinstance(r, TurnEnded)]
    assert [e.stop_reason for e in ends] == ["end_turn", "interrupted", "end_turn"]
