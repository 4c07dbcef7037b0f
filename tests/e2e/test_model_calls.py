"""A model call that fails is tried again, or handed to a fallback provider,
and the client is told each time, through the real daemon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.chat_streams import text_stream
from tests.support.daemon import replay_env
from tests.support.raw_daemon import raw_daemon
from tests.support.replay_server import ReplayServer

OVERLOADED = b'{"error": {"message": "the model is overloaded", "type": "server_error"}}'


def _told(frames: list[dict[str, Any]], what: str) -> list[dict[str, Any]]:
    """The `_meta.parley.<what>` of every session/update that carries one."""
    return [
        meta[what]
        for frame in frames
        if frame.get("method") == "session/update"
        and what in (meta := frame["params"]["update"].get("_meta", {}).get("parley", {}))
    ]


async def _prompt(daemon: Any, workspace: Path) -> dict[str, Any]:
    await daemon.initialize()
    session = await daemon.request("session/new", {"cwd": str(workspace), "mcpServers": []})
    prompt = [{"type": "text", "text": "hi"}]
    return await daemon.request(
        "session/prompt", {"sessionId": session["result"]["sessionId"], "prompt": prompt}
    )


async def test_a_failed_call_is_tried_again_and_the_client_told(
    tmp_path: Path, workspace: Path
) -> None:
    async with ReplayServer() as provider:
        provider.enqueue(503, "application/json", OVERLOADED, headers={"retry-after": "0"})
        provider.enqueue_fixture("openai_chat/text_usage_chunk")
        async with raw_daemon(replay_env(tmp_path / "home", provider.url)) as daemon:
            answer = await _prompt(daemon, workspace)
            frames = daemon.frames
    assert answer["result"]["stopReason"] == "end_turn"
    (retry,) = _told(frames, "retry")
    assert (retry["attempt"], retry["attempts"], retry["delaySeconds"]) == (2, 4, 0.0)
    assert retry["reason"]["status"] == 503
    assert retry["reason"]["message"].endswith("the model is overloaded")
    assert len(provider.requests) == 2


async def test_a_provider_that_refuses_its_key_hands_the_call_to_the_fallback(
    tmp_path: Path, workspace: Path
) -> None:
    async with ReplayServer() as provider:
        provider.enqueue(401, "application/json", b'{"error": {"message": "Incorrect API key"}}')
        env = {**replay_env(tmp_path / "home", provider.url), "PARLEY_FALLBACK": "offline"}
        async with raw_daemon(env) as daemon:
            answer = await _prompt(daemon, workspace)
            frames = daemon.frames
    assert answer["result"]["stopReason"] == "end_turn"
    (handed,) = _told(frames, "fallback")
    assert (handed["provider"], handed["model"]) == ("offline", "parley-scripted")
    assert handed["reason"]["kind"] == "auth"
    assert "OPENAI_API_KEY" in handed["reason"]["message"]
    spoken = [
        frame["params"]["update"]["content"]["text"]
        for frame in frames
        if frame.get("method") == "session/update"
        and frame["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
    ]
    assert "".join(spoken)  # the offline model answered
    assert len(provider.requests) == 1


async def test_a_refusal_beside_a_call_ends_the_turn_and_the_call_never_runs(
    tmp_path: Path, workspace: Path
) -> None:
    write = {"path": "x.txt", "content": "written"}
    call = {"index": 0, "id": "call_w", "type": "function"}
    call["function"] = {"name": "write_file", "arguments": json.dumps(write)}
    chunks = [
        {"choices": [{"index": 0, "delta": {"refusal": "I won't write that."}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    body = b"".join(b"data: %b\n\n" % json.dumps(chunk).encode() for chunk in chunks)
    async with ReplayServer() as provider:
        provider.enqueue(200, "text/event-stream", body + b"data: [DONE]\n\n")
        provider.enqueue(200, "text/event-stream", text_stream("Understood."))
        env = {**replay_env(tmp_path / "home", provider.url), "PARLEY_PROVIDER": "openai"}
        async with raw_daemon(env) as daemon:
            answer = await _prompt(daemon, workspace)
            session_id = daemon.frames[1]["result"]["sessionId"]
            again = {"sessionId": session_id, "prompt": [{"type": "text", "text": "ok"}]}
            assert (await daemon.request("session/prompt", again))["result"] == {
                "stopReason": "end_turn"
            }
            frames = daemon.frames
    assert answer["result"]["stopReason"] == "refusal"
    assert not (workspace / "x.txt").exists()
    assert not [f for f in frames if f.get("method") == "session/request_permission"]
    statuses = [
        update["status"]
        for frame in frames
        if frame.get("method") == "session/update"
        and (update := frame["params"]["update"]).get("toolCallId") == "call_w"
        and "status" in update
    ]
    assert statuses[-1] == "failed"  # closed with the turn, not left pending
    result = provider.requests[-1].json["messages"][-2]
    assert (result["role"], result["tool_call_id"]) == ("tool", "call_w")
    assert result["content"] == "Not run: the model refused to go on."
