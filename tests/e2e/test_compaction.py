"""Compaction through the real daemon: a conversation near its context window
has its older history summarised by the model before the next call, and a
provider's context overflow is answered by compacting and asking again. The
records stay whole; clients that advertise `session.compaction` see
`compaction_update`s, others a thought with `_meta.parley.compaction`; a load
replays the same and the model goes on reading the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.support.daemon import offline_env, replay_env
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.replay_server import ReplayServer
from tests.support.updates import as_replayed

# A small window and an early threshold: the first prompt's history, tools
# and all, is enough to compact before the second.
SMALL_WINDOW = {"contextSize": 4000}
COMPACT_EARLY = {"PARLEY_COMPACT_AT": "0.3"}
SUMMARY_HEADING = "Summary of the earlier conversation (compacted):"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Compact\n\nAbout summaries.\n")
    return root


async def _session(daemon: RawDaemon, workspace: Path, capabilities: dict[str, Any]) -> str:
    await daemon.request("initialize", {"protocolVersion": 1, "clientCapabilities": capabilities})
    created = await daemon.request(
        "session/new",
        {"cwd": str(workspace), "mcpServers": [], "_meta": {"parley": SMALL_WINDOW}},
    )
    session_id: str = created["result"]["sessionId"]
    return session_id


async def _prompt(daemon: RawDaemon, session_id: str, text: str) -> None:
    answer = await daemon.request(
        "session/prompt", {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
    )
    assert answer["result"] == {"stopReason": "end_turn"}, answer


def _updates(daemon: RawDaemon) -> list[dict[str, Any]]:
    return [f["params"]["update"] for f in daemon.frames if f.get("method") == "session/update"]


def _compactions(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [u for u in updates if u["sessionUpdate"] == "compaction_update"]


async def test_near_the_window_the_history_is_summarised_and_a_load_keeps_it(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    env = {**offline_env(home), **COMPACT_EARLY}
    capabilities = {"session": {"compaction": {}}}
    async with raw_daemon(env) as daemon:
        session_id = await _session(daemon, workspace, capabilities)
        await _prompt(daemon, session_id, "Read README.md")
        assert _compactions(_updates(daemon)) == []
        await _prompt(daemon, session_id, "List the files")
        live = _updates(daemon)

    started, ended = _compactions(live)[:2]
    assert started["status"] == "in_progress"
    assert (ended["compactionId"], ended["status"]) == (started["compactionId"], "completed")
    summary = ended["summary"][0]["text"]
    assert "- The user asked: Read README.md" in summary and "`read_file`" in summary
    # The second prompt was answered after the compaction, from its tool's result.
    after = live[live.index(ended) :]
    assert any(
        u.get("title") == "List ." for u in after if u["sessionUpdate"] == "tool_call_update"
    )

    async with raw_daemon(env) as daemon:
        await daemon.request(
            "initialize", {"protocolVersion": 1, "clientCapabilities": capabilities}
        )
        await daemon.request(
            "session/load", {"sessionId": session_id, "cwd": str(workspace), "mcpServers": []}
        )
        replayed = _updates(daemon)
        replayed_prompts = [u for u in replayed if u["sessionUpdate"] == "user_message_chunk"]
        assert [u["content"]["text"] for u in replayed_prompts] == [
            "Read README.md",
            "List the files",
        ]
        assert as_replayed([u for u in replayed if u not in replayed_prompts]) == as_replayed(live)
        # The loaded conversation reads the summary, not the history it replaced:
        # the next compaction summarises the summary and what came after it.
        await _prompt(daemon, session_id, "Search for TODO")
        after_load = _updates(daemon)[len(replayed) :]
    again = [u for u in _compactions(after_load) if u["status"] == "completed"]
    assert again, "the loaded session compacts again near the window"
    text = again[0]["summary"][0]["text"]
    assert f"- The user asked: {SUMMARY_HEADING}" in text
    assert "- The user asked: List the files" in text


async def test_a_client_without_compaction_updates_reads_a_thought(
    tmp_path: Path, workspace: Path
) -> None:
    env = {**offline_env(tmp_path / "home"), **COMPACT_EARLY}
    async with raw_daemon(env) as daemon:
        session_id = await _session(daemon, workspace, {})
        await _prompt(daemon, session_id, "Read README.md")
        await _prompt(daemon, session_id, "List the files")
        updates = _updates(daemon)
    assert _compactions(updates) == []
    noted = [u for u in updates if "compaction" in u["_meta"]["parley"]]
    assert len(noted) == 1 and noted[0]["sessionUpdate"] == "agent_thought_chunk"
    described = noted[0]["_meta"]["parley"]["compaction"]
    assert described["status"] == "completed"
    assert "- The user asked: Read README.md" in described["summary"]


# OpenAI's documented error for a request over the model's window.
OVERFLOW = {
    "error": {
        "message": "This model's maximum context length is 128000 tokens. However, your "
        "messages resulted in 131072 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}


async def test_a_context_overflow_is_compacted_and_asked_again(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with ReplayServer() as provider:
        provider.enqueue_fixture("openai_chat/text_usage_chunk")  # the first prompt
        provider.enqueue(400, "application/json", msgspec.json.encode(OVERFLOW))
        provider.enqueue_fixture("openai_chat/text_usage_chunk")  # the summary
        provider.enqueue_fixture("openai_chat/text_usage_chunk")  # asked again
        async with raw_daemon(replay_env(home, provider.url)) as daemon:
            await daemon.request(
                "initialize",
                {"protocolVersion": 1, "clientCapabilities": {"session": {"compaction": {}}}},
            )
            created = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
            session_id = created["result"]["sessionId"]
            await _prompt(daemon, session_id, "first")
            await _prompt(daemon, session_id, "second")
            statuses = [u["status"] for u in _compactions(_updates(daemon))]
        overflowed, summary_request, retry = (r.json for r in provider.requests[1:])
    assert statuses == ["in_progress", "completed"]
    assert "tools" not in summary_request
    assert summary_request["messages"][-1]["content"].startswith("Write a summary")
    # Asked again with the summary in place of the first turn, the prompt kept.
    assert [m["role"] for m in overflowed["messages"]] == ["system", "user", "assistant", "user"]
    assert [m["role"] for m in retry["messages"]] == ["system", "user", "user"]
    assert retry["messages"][1]["content"].startswith(SUMMARY_HEADING)
    assert retry["messages"][2]["content"] == "second"
