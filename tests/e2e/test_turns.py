"""Turn endings over the raw wire: every way to cancel (repeated, with a
disconnect, of one tool call), a pending permission request and what it shows,
"always" answers across loads, stop reasons from real recorded streams, and a
daemon killed mid-turn."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from parleyd.session.replay import INTERRUPTED_CALL
from tests.support.daemon import offline_env, replay_env
from tests.support.raw_daemon import RawDaemon, raw_daemon
from tests.support.replay_server import ReplayServer
from tests.support.transcripts import session_notes
from tests.support.updates import as_replayed


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "README.md").write_text("# Turns\n\nAbout turns.\n")
    return root


async def _new_session(daemon: RawDaemon, workspace: Path) -> str:
    await daemon.initialize()
    return await daemon.new_session(workspace)


async def _load(daemon: RawDaemon, session_id: str, workspace: Path) -> dict[str, Any]:
    await daemon.initialize()
    return await daemon.load_session(session_id, workspace)


async def _prompt(daemon: RawDaemon, session_id: str, text: str) -> dict[str, Any]:
    """Run a prompt to its answer."""
    prompt = {"sessionId": session_id, "prompt": [{"type": "text", "text": text}]}
    return await daemon.request("session/prompt", prompt)


async def _answer(daemon: RawDaemon, ask: dict[str, Any], option_id: str) -> None:
    """Answer a permission request with one of its options."""
    outcome = {"outcome": "selected", "optionId": option_id}
    await daemon.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"outcome": outcome}})


def _is_chunk(frame: dict[str, Any]) -> bool:
    update = frame.get("params", {}).get("update", {})
    return update.get("sessionUpdate") == "agent_message_chunk"


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("session/cancel", lambda session, request: {"sessionId": session}),
        ("$/cancel_request", lambda session, request: {"requestId": request}),
        ("$/cancelRequest", lambda session, request: {"id": request}),
    ],
)
async def test_every_cancel_ends_the_prompt_with_cancelled(
    tmp_path: Path, workspace: Path, method: str, params: Any
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        session_id = await _new_session(daemon, workspace)
        await daemon.start_prompt(session_id, "Tell me a long story", 50)
        await daemon.until(_is_chunk)
        await daemon.send({"jsonrpc": "2.0", "method": method, "params": params(session_id, 50)})
        answer = await daemon.until(lambda frame: frame.get("id") == 50)
        assert answer["result"] == {"stopReason": "cancelled"}


async def test_cancel_while_permission_is_pending(tmp_path: Path, workspace: Path) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        session_id = await _new_session(daemon, workspace)
        await daemon.start_prompt(session_id, 'Write a note saying "later"', 60)
        ask = await daemon.until(lambda f: f.get("method") == "session/request_permission")
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
        )
        # The daemon withdraws its question, then answers the prompt.
        withdrawn = await daemon.until(lambda f: f.get("method") == "$/cancel_request")
        assert withdrawn["params"] == {"requestId": ask["id"]}
        answer = await daemon.until(lambda frame: frame.get("id") == 60)
        assert answer["result"] == {"stopReason": "cancelled"}
        # ACP still has the client answer the withdrawn request; that is harmless.
        await daemon.send(
            {"jsonrpc": "2.0", "id": ask["id"], "error": {"code": -32800, "message": "cancelled"}}
        )
        assert not (workspace / "NOTES.md").exists()
        again = await _prompt(daemon, session_id, "Hi")
        assert again["result"] == {"stopReason": "end_turn"}


@pytest.mark.parametrize(
    ("case", "stop_reason"),
    [
        ("openai_chat/finish_reason_length", "max_tokens"),
        ("openai_chat/refusal", "refusal"),
        ("openai_chat/text_usage_chunk", "end_turn"),
    ],
)
async def test_stop_reasons_from_recorded_streams(
    tmp_path: Path, workspace: Path, case: str, stop_reason: str
) -> None:
    async with ReplayServer() as provider:
        provider.enqueue_fixture(case)
        async with raw_daemon(replay_env(tmp_path / "home", provider.url)) as daemon:
            session_id = await _new_session(daemon, workspace)
            answer = await _prompt(daemon, session_id, "go")
        sent = provider.requests[0].json
    assert answer["result"] == {"stopReason": stop_reason}
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][-1] == {"role": "user", "content": "go"}
    assert {tool["function"]["name"] for tool in sent["tools"]} >= {"read_file", "run_shell"}


async def test_a_killed_daemon_keeps_the_response_it_was_streaming(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    # Every delta checkpointed before the client sees it: the replay must hold
    # all the client saw of the response cut short.
    env = {**offline_env(home), "PARLEY_RESPONSE_CHECKPOINT_SECONDS": "0"}
    async with raw_daemon(env) as daemon:
        session_id = await _new_session(daemon, workspace)
        done = await _prompt(daemon, session_id, "Summarize README.md")
        assert done["result"] == {"stopReason": "end_turn"}
        live = [note["update"] for note in session_notes(daemon.frames)]
        await daemon.start_prompt(session_id, "Tell me a long story", 70)
        for _ in range(10):
            await daemon.until(_is_chunk)
        seen = [note["update"] for note in session_notes(daemon.frames)][len(live) :]
        daemon.process.send_signal(signal.SIGKILL)
        await daemon.process.wait()

    async with raw_daemon(offline_env(home)) as daemon:
        await daemon.initialize()
        await daemon.send(
            {
                "jsonrpc": "2.0",
                "id": 80,
                "method": "session/load",
                "params": {"sessionId": session_id, "cwd": str(workspace), "mcpServers": []},
            }
        )
        loaded = await daemon.until(lambda frame: frame.get("id") == 80)
        assert loaded["result"]["modes"]["currentModeId"] == "ask"
        replayed = [note["update"] for note in session_notes(daemon.frames)]
        # The completed turn comes back as it streamed; the killed one, its
        # prompt, then its thinking and story as far as the client saw them at least.
        expected = as_replayed(live)
        assert replayed[1 : len(expected) + 1] == expected
        prompt, *cut_short, closing = replayed[len(expected) + 1 :]
        assert prompt["content"]["text"] == "Tell me a long story"
        assert [u["sessionUpdate"] for u in cut_short] == [
            "agent_thought_chunk",
            "agent_message_chunk",
        ]
        for shown, kept in zip(as_replayed(seen), cut_short, strict=True):
            assert kept["messageId"] == shown["messageId"]
            assert kept["content"]["text"].startswith(shown["content"]["text"])
        # Closed on load, the killed turn ends with its figures, as live turns do.
        assert closing["sessionUpdate"] == "usage_update"
        # The model is given what was said, cut short, and goes on.
        again = await _prompt(daemon, session_id, "Hi")
        assert again["result"] == {"stopReason": "end_turn"}
    responses = [r for r in _log_records(home, session_id) if r["type"] == "response"]
    assert responses[-2]["interrupted"] and responses[-2]["message_id"] == seen[0]["messageId"]


async def test_session_settings_reach_the_provider_and_keys_never_reach_disk(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with ReplayServer() as provider:
        env = replay_env(home, provider.url)
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        async with raw_daemon(env) as daemon:
            await daemon.initialize()
            refused = await daemon.request(
                "session/new",
                {
                    "cwd": str(workspace),
                    "mcpServers": [],
                    "_meta": {"parley": {"apiKey": "sk-over-the-wire"}},
                },
            )
            assert refused["error"]["code"] == -32602
            assert "apiKey" in refused["error"]["message"]
            created = await daemon.request(
                "session/new",
                {
                    "cwd": str(workspace),
                    "mcpServers": [],
                    "_meta": {"parley": {"model": "gpt-4.1-mini", "maxOutputTokens": 77}},
                },
            )
            session_id = created["result"]["sessionId"]
            await _prompt(daemon, session_id, "go")
        sent = provider.requests[0]
    assert sent.json["model"] == "gpt-4.1-mini"
    assert sent.json["max_completion_tokens"] == 77
    assert sent.headers["authorization"] == f"Bearer {env['OPENAI_API_KEY']}"
    for path in home.rglob("*"):
        if path.is_file():
            assert env["OPENAI_API_KEY"].encode() not in path.read_bytes(), path


def _log_records(home: Path, session_id: str) -> list[dict[str, Any]]:
    log = home / "sessions" / session_id / "log.jsonl"
    return [json.loads(line) for line in log.read_bytes().splitlines()]


def _turn_endings(home: Path, session_id: str) -> list[str]:
    return [r["stop_reason"] for r in _log_records(home, session_id) if r["type"] == "turn_end"]


def _updates(daemon: RawDaemon, **wanted: Any) -> list[dict[str, Any]]:
    """Every `session/update` received so far whose fields have the `wanted` values."""
    return [
        note["update"]
        for note in session_notes(daemon.frames)
        if all(note["update"].get(key) == value for key, value in wanted.items())
    ]


@pytest.mark.parametrize(
    "cancels",
    [
        [("session/cancel", "session")] * 3,
        [("session/cancel", "session"), ("$/cancel_request", "request")],
        [("$/cancelRequest", "request"), ("session/cancel", "session")] * 2,
    ],
    ids=["three-session-cancels", "cancel-and-cancel-request", "interleaved"],
)
async def test_repeated_cancels_end_the_turn_once_with_everything_recorded(
    tmp_path: Path, workspace: Path, cancels: list[tuple[str, str]]
) -> None:
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _new_session(daemon, workspace)
        await daemon.start_prompt(session_id, "Tell me a long story", 50)
        for _ in range(5):
            await daemon.until(_is_chunk)
        for method, target in cancels:
            key = {"$/cancel_request": "requestId", "$/cancelRequest": "id"}.get(method)
            params = {"sessionId": session_id} if target == "session" else {key: 50}
            await daemon.send({"jsonrpc": "2.0", "method": method, "params": params})
        answer = await daemon.until(lambda frame: frame.get("id") == 50)
        assert answer["result"] == {"stopReason": "cancelled"}
        streamed = "".join(
            f["params"]["update"]["content"]["text"] for f in daemon.frames if _is_chunk(f)
        )
        again = await _prompt(daemon, session_id, "Hi")
        assert again["result"] == {"stopReason": "end_turn"}
    records = _log_records(home, session_id)
    ends = [r for r in records if r["type"] == "turn_end"]
    assert [e["stop_reason"] for e in ends] == ["cancelled", "end_turn"]
    story = next(r for r in records if r["type"] == "response")
    # The partial answer is kept whole: what the client saw, in the turn it belongs to.
    texts = [p["text"] for p in story["message"]["parts"] if p["type"] == "text"]
    assert streamed.startswith("".join(texts)) and texts
    assert story["interrupted"] is True and story["turn"] == ends[0]["turn"]


async def test_cancel_then_disconnect_still_records_the_turn_end(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _new_session(daemon, workspace)
        await daemon.start_prompt(session_id, "Tell me a long story", 50)
        await daemon.until(_is_chunk)
        await daemon.send(
            {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session_id}}
        )
        assert daemon.process.stdin is not None
        daemon.process.stdin.close()
        assert await asyncio.wait_for(daemon.process.wait(), 30) == 0
    assert _turn_endings(home, session_id) == ["cancelled"]


async def test_a_daemon_killed_inside_a_tool_call_closes_it_on_load(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _new_session(daemon, workspace)
        await daemon.start_prompt(session_id, 'Write a note saying "later"', 60)
        ask = await daemon.until(lambda f: f.get("method") == "session/request_permission")
        daemon.process.send_signal(signal.SIGKILL)
        await daemon.process.wait()
    call_id = ask["params"]["toolCall"]["toolCallId"]

    async with raw_daemon(offline_env(home)) as daemon:
        loaded = await _load(daemon, session_id, workspace)
        assert loaded["result"]["modes"]["currentModeId"] == "ask"
        # Announced, then closed: never left pending.
        (call,) = _updates(daemon, toolCallId=call_id)
        assert (call["sessionUpdate"], call["title"], call["status"]) == (
            "tool_call",
            ask["params"]["toolCall"]["title"],
            "failed",
        )
        assert call["content"][0]["content"]["text"] == INTERRUPTED_CALL
        again = await _prompt(daemon, session_id, "Hi")
        assert again["result"] == {"stopReason": "end_turn"}
    assert _turn_endings(home, session_id) == ["interrupted", "end_turn"]


async def test_allow_always_holds_after_the_session_is_loaded_again(
    tmp_path: Path, workspace: Path
) -> None:
    home = tmp_path / "home"
    async with raw_daemon(offline_env(home)) as daemon:
        session_id = await _new_session(daemon, workspace)
        await daemon.start_prompt(session_id, "Run `ls` please", 60)
        ask = await daemon.until(lambda f: f.get("method") == "session/request_permission")
        await _answer(daemon, ask, "allow_always")
        answer = await daemon.until(lambda frame: frame.get("id") == 60)
        assert answer["result"] == {"stopReason": "end_turn"}

    async with raw_daemon(offline_env(home)) as daemon:
        await _load(daemon, session_id, workspace)
        again = await _prompt(daemon, session_id, "Run `ls` again")
        assert again["result"] == {"stopReason": "end_turn"}
        methods = {f.get("method") for f in daemon.frames}
        assert "session/request_permission" not in methods
        finished = _updates(daemon, status="completed")
        assert finished and "README.md" in finished[-1]["rawOutput"]["output"]


async def test_one_tool_call_is_cancelled_and_the_turn_goes_on(
    tmp_path: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        session_id = await _new_session(daemon, workspace)
        capabilities = daemon.frames[0]["result"]["agentCapabilities"]["_meta"]["parley"]
        assert "_parley/toolCall/cancel" in capabilities["methods"]
        await daemon.start_prompt(session_id, "Run `sleep 30` please", 60)
        ask = await daemon.until(lambda f: f.get("method") == "session/request_permission")
        call_id = ask["params"]["toolCall"]["toolCallId"]
        await _answer(daemon, ask, "allow_once")
        await daemon.until(
            lambda f: f.get("params", {}).get("update", {}).get("status") == "in_progress"
        )
        cancelled = await daemon.request(
            "_parley/toolCall/cancel", {"sessionId": session_id, "toolCallId": call_id}
        )
        assert cancelled["result"] == {}
        answer = await daemon.until(lambda frame: frame.get("id") == 60)
        assert answer["result"] == {"stopReason": "end_turn"}
        closed = _updates(daemon, toolCallId=call_id)[-1]
        assert closed["status"] == "failed"
        unknown = await daemon.request(
            "_parley/toolCall/cancel", {"sessionId": session_id, "toolCallId": call_id}
        )
        assert unknown["error"]["code"] == -32002


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Write a note to README.md saying hello", "diff"),
        ('Replace "About turns." with "All about turns." in README.md', "edit"),
        ("Run `ls` please", "command"),
    ],
)
async def test_a_permission_request_shows_what_it_asks_to_allow(
    tmp_path: Path, workspace: Path, prompt: str, expected: str
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        session_id = await _new_session(daemon, workspace)
        await daemon.start_prompt(session_id, prompt, 60)
        ask = await daemon.until(lambda f: f.get("method") == "session/request_permission")
        await _answer(daemon, ask, "reject_once")
        await daemon.until(lambda frame: frame.get("id") == 60)
    call = ask["params"]["toolCall"]
    (content,) = call["content"]
    if expected in ("diff", "edit"):
        # The file as it is and as it would be: what CodeCompanion shows as a diff.
        assert content["type"] == "diff"
        assert content["path"] == str(workspace / "README.md")
        assert content["oldText"] == "# Turns\n\nAbout turns.\n"
        assert content["newText"] == (
            "# Turns\n\nAll about turns.\n" if expected == "edit" else call["rawInput"]["content"]
        )
        assert call["locations"] == [{"path": str(workspace / "README.md")}]
    else:
        assert content["content"]["text"] == f"$ ls\n(in {workspace})"
        assert call["locations"] == [{"path": str(workspace)}]
    # Asking changed nothing.
    assert (workspace / "README.md").read_text() == "# Turns\n\nAbout turns.\n"


async def test_a_permission_question_the_client_cancels_is_not_a_refusal(
    tmp_path: Path, workspace: Path
) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        session_id = await _new_session(daemon, workspace)
        await daemon.start_prompt(session_id, 'Write a note saying "later"', 60)
        ask = await daemon.until(lambda f: f.get("method") == "session/request_permission")
        await daemon.send(
            {"jsonrpc": "2.0", "id": ask["id"], "result": {"outcome": {"outcome": "cancelled"}}}
        )
        answer = await daemon.until(lambda frame: frame.get("id") == 60)
        assert answer["result"] == {"stopReason": "end_turn"}
    call_id = ask["params"]["toolCall"]["toolCallId"]
    closed = _updates(daemon, toolCallId=call_id)[-1]
    assert closed["status"] == "failed"
    assert "withdrawn" in closed["rawOutput"]["output"]
    assert "declined" not in closed["rawOutput"]["output"]
    assert not (workspace / "NOTES.md").exists()
