"""Compaction through the real daemon: a conversation near its context window
has its older history summarised by the model before the next call, and a
provider's context overflow is answered by compacting and asking again; a
sub-agent's conversation compacts its own history, its parent's left whole. The
records stay whole; clients that advertise `session.compaction` see
`compaction_update`s, others a thought with `_meta.parley.compaction`; a load
replays the same and the model goes on reading the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.support.chat_streams import text_stream
from tests.support.daemon import offline_env, replay_env
from tests.support.fixtures import load_case
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.replay_server import ReplayServer
from tests.support.transcripts import conversation_of, per_conversation, session_notes
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
    return [note["update"] for note in session_notes(daemon.frames)]


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


# A child that reads three files a response at a time: near its window before
# its second and third reads, it has its own earlier reads to summarise.
CHILD_TASK = "Read a.md, b.md and c.md one by one"


def _conversations_compacting(notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation of each compaction update, in order."""
    return [
        conversation_of(note["update"])
        for note in notes
        if note["update"]["sessionUpdate"] == "compaction_update"
    ]


async def test_a_child_near_its_window_compacts_its_own_history_and_a_load_keeps_it(
    tmp_path: Path, workspace: Path
) -> None:
    for name in "abc":
        (workspace / f"{name}.md").write_text(f"# File {name}\n")
    env = {**offline_env(tmp_path / "home"), **COMPACT_EARLY}
    capabilities = {"session": {"compaction": {}}}
    async with raw_daemon(env) as daemon:
        session_id = await _session(daemon, workspace, capabilities)
        await _prompt(daemon, session_id, f'Delegate "{CHILD_TASK}"')
        live = session_notes(daemon.frames)

    # Only the child compacted, twice: its turn is the one with earlier steps.
    compacting = _conversations_compacting(live)
    assert [c["depth"] for c in compacting] == [1] * 4
    child = compacting[0]
    assert compacting == [child] * 4
    child_updates = per_conversation(live)[child["id"]]
    ended = [u for u in _compactions(child_updates) if u["status"] == "completed"]
    first, second = (u["summary"][0]["text"] for u in ended)
    assert f"- The user asked: {CHILD_TASK}" in first and "`read_file`" in first
    # The child's next summary request read the first summary in place of the
    # task and the reads it replaced; the read after it went on from it.
    assert f"- The user asked: {SUMMARY_HEADING}" in second and CHILD_TASK not in second
    after_first = child_updates[child_updates.index(ended[0]) :]
    assert any(u.get("title") == "Read c.md" for u in after_first)

    async with raw_daemon(env) as daemon:
        await daemon.request(
            "initialize", {"protocolVersion": 1, "clientCapabilities": capabilities}
        )
        await daemon.load_session(session_id, workspace)
        replayed = session_notes(daemon.frames)
        assert _conversations_compacting(replayed) == [child] * 4
        assert per_conversation(replayed) == per_conversation(live)
        await _prompt(daemon, session_id, "List the files")
        after_load = session_notes(daemon.frames)[len(replayed) :]
    # The root's own history was whole: its first compaction summarises its turn.
    root = [n["update"] for n in after_load if conversation_of(n["update"])["depth"] == 0]
    (summary,) = [u["summary"][0]["text"] for u in _compactions(root) if u["status"] == "completed"]
    assert f'- The user asked: Delegate "{CHILD_TASK}"' in summary
    assert "`subagent`" in summary and SUMMARY_HEADING not in summary


def _enqueue_tool_call(
    provider: ReplayServer, call_id: str, name: str, argument: str, value: str
) -> None:
    """OpenAI's recorded stream of one tool call, `get_capital` with
    `{"country": "UK"}`, made the call `call_id` to `name` with `{argument: value}`."""
    recorded = load_case("openai_chat/tool_call")
    body = recorded.body
    for theirs, ours in (
        ("call_ZR5UUuTt3pf61kjwAJIYdVMj", call_id),
        ('"name":"get_capital"', f'"name":"{name}"'),
        ('"arguments":"country"', f'"arguments":"{argument}"'),
        ('"arguments":"UK"', f'"arguments":"{value}"'),
    ):
        assert body.count(theirs.encode()) == 1, theirs
        body = body.replace(theirs.encode(), ours.encode())
    provider.enqueue(recorded.status, recorded.content_type, body)


def _call_ids(request: dict[str, Any]) -> set[str]:
    """The tool calls a Chat Completions request shows the model, with their results."""
    ids: set[str] = set()
    for message in request["messages"]:
        ids.update(call["id"] for call in message.get("tool_calls") or ())
        if message["role"] == "tool":
            ids.add(message["tool_call_id"])
    return ids


async def test_a_child_whose_request_overflows_compacts_its_own_history(
    tmp_path: Path, workspace: Path
) -> None:
    async with ReplayServer() as provider:
        _enqueue_tool_call(provider, "call_child", "subagent", "task", "Read README.md twice")
        for step in ("call_step_1", "call_step_2"):
            _enqueue_tool_call(provider, step, "read_file", "path", "README.md")
        provider.enqueue(400, "application/json", msgspec.json.encode(OVERFLOW))
        provider.enqueue_fixture("openai_chat/text_usage_chunk")  # the child's summary
        provider.enqueue_fixture("openai_chat/text_usage_chunk")  # the child, asked again
        provider.enqueue_fixture("openai_chat/text_usage_chunk")  # the root's answer
        async with raw_daemon(replay_env(tmp_path / "home", provider.url)) as daemon:
            await daemon.request(
                "initialize",
                {"protocolVersion": 1, "clientCapabilities": {"session": {"compaction": {}}}},
            )
            session_id = await daemon.new_session(workspace)
            await _prompt(daemon, session_id, "Delegate it")
            notes = session_notes(daemon.frames)

    compacting = _conversations_compacting(notes)
    assert [c["depth"] for c in compacting] == [1, 1]
    statuses = [u["status"] for u in _compactions([n["update"] for n in notes])]
    assert statuses == ["in_progress", "completed"]
    assert provider.pending == 0
    overflowed, summary_request, retry, root_again = (r.json for r in provider.requests[3:])
    # The child's own history was summarised, and asked again it reads the
    # summary and its latest step, not the step the summary replaced.
    assert summary_request["messages"][1]["content"] == "Read README.md twice"
    assert _call_ids(overflowed) == {"call_step_1", "call_step_2"}
    assert _call_ids(retry) == {"call_step_2"}
    assert any(m["content"].startswith(SUMMARY_HEADING) for m in _user_messages(retry))
    # The root's history is its own, whole.
    assert _call_ids(root_again) == {"call_child"}
    assert not any(m["content"].startswith(SUMMARY_HEADING) for m in _user_messages(root_again))


def _user_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in request["messages"] if m["role"] == "user"]


async def test_slash_compact_summarises_the_whole_history_when_asked(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    capabilities = {"session": {"compaction": {}}}
    async with ReplayServer() as provider:
        for said in ("Hello.", "The user greeted me.", "Still here."):
            provider.enqueue(200, "text/event-stream", text_stream(said))
        async with raw_daemon(replay_env(home, provider.url)) as daemon:
            session_id = await _session(daemon, workspace, capabilities)
            compact = {"type": "text", "text": "/compact keep the greeting"}
            params = {"sessionId": session_id, "prompt": [compact]}
            refused = await daemon.request("session/prompt", params)
            await _prompt(daemon, session_id, "Hi")
            compacted = await daemon.request("session/prompt", params)
            await _prompt(daemon, session_id, "Are you there?")
            live = _updates(daemon)
        async with raw_daemon(replay_env(home, provider.url)) as daemon:
            await daemon.request(
                "initialize", {"protocolVersion": 1, "clientCapabilities": capabilities}
            )
            load = {"sessionId": session_id, "cwd": str(workspace), "mcpServers": []}
            await daemon.request("session/load", load)
            replayed = _updates(daemon)
        _, summary_call, after = provider.requests
    assert refused["error"]["code"] == -32602
    assert refused["error"]["message"].endswith("has nothing to compact yet")
    assert compacted["result"] == {"stopReason": "end_turn"}
    # The whole history went to the model, with what to keep; no tools.
    asked = summary_call.json["messages"]
    assert [m["role"] for m in asked] == ["system", "user", "assistant", "user"]
    assert asked[-1]["content"].endswith("Above all, keep: keep the greeting")
    assert "tools" not in summary_call.json
    # From then on the model reads the summary in place of the history.
    texts = [m["content"] for m in after.json["messages"][1:]]
    assert texts == [f"{SUMMARY_HEADING}\n\nThe user greeted me.", "Are you there?"]
    started, ended = _compactions(live)
    assert (started["status"], ended["status"]) == ("in_progress", "completed")
    assert ended["summary"] == [{"type": "text", "text": "The user greeted me."}]
    # The command is no prompt: the replay shows the two prompts alone.
    users = [u["content"]["text"] for u in replayed if u["sessionUpdate"] == "user_message_chunk"]
    assert users == ["Hi", "Are you there?"]
    assert _compactions(replayed)[-1]["status"] == "completed"
