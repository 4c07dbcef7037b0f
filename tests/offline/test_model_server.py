"""The scripted model over real HTTP, through httpx, as the openai_chat provider sees it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from parleyd.offline.model_server import ScriptedModelServer
from parleyd.offline.script import MODEL_ID, plan_reply

ROOT = Path(__file__).resolve().parents[2]
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("read_file", "write_file", "run_shell", "list_directory", "search_text")
]


def chat(prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL_ID,
        "messages": [{"role": "user", "content": prompt}],
        "tools": TOOLS,
        "stream": True,
        "stream_options": {"include_usage": True},
        **extra,
    }


@pytest.fixture
async def server() -> AsyncIterator[ScriptedModelServer]:
    async with ScriptedModelServer(pace=0) as model:
        yield model


@pytest.fixture
async def client(server: ScriptedModelServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        yield http


async def stream_events(client: httpx.AsyncClient, body: dict[str, Any]) -> list[Any]:
    """Every SSE data payload in order, decoded; `[DONE]` kept as the string."""
    async with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = (await response.aread()).decode()
    assert raw.endswith("\n\n")
    events = []
    for block in raw.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        payload = block.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else msgspec.json.decode(payload))
    return events


async def test_base_url_points_at_v1_on_loopback(server: ScriptedModelServer) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    assert server.base_url.endswith("/v1")


async def test_models_lists_the_scripted_model(client: httpx.AsyncClient) -> None:
    response = await client.get("/models")
    assert response.status_code == 200
    assert [model["id"] for model in response.json()["data"]] == [MODEL_ID]


async def test_stream_is_openai_shaped_with_thinking_text_tool_call_usage_and_done(
    client: httpx.AsyncClient,
) -> None:
    body = chat("Summarize README.md")
    expected = plan_reply(body)
    events = await stream_events(client, body)

    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL_ID for c in chunks)
    assert all(isinstance(c["created"], int) for c in chunks)

    *choice_chunks, usage_chunk = chunks
    deltas = [c["choices"][0]["delta"] for c in choice_chunks]
    assert deltas[0]["role"] == "assistant"
    assert all("role" not in d for d in deltas[1:])
    assert "".join(d.get("reasoning_content", "") for d in deltas) == expected.thinking_text
    assert "".join(d.get("content") or "" for d in deltas) == expected.text
    finishes = [c["choices"][0]["finish_reason"] for c in choice_chunks]
    assert finishes == [None] * (len(finishes) - 1) + ["tool_calls"]

    call_deltas = [call for d in deltas for call in d.get("tool_calls", ())]
    assert call_deltas[0]["id"] and call_deltas[0]["function"]["name"] == "read_file"
    assert all("id" not in call and "name" not in call["function"] for call in call_deltas[1:])
    assert len(call_deltas) > 2, "arguments arrive over several deltas"
    assert {call["index"] for call in call_deltas} == {0}
    arguments = "".join(call["function"]["arguments"] for call in call_deltas)
    assert msgspec.json.decode(arguments) == {"path": "README.md"}

    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_no_usage_chunk_unless_asked(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, chat("hello", stream_options=None))
    assert events[-1] == "[DONE]"
    assert all(event["choices"] for event in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


async def test_bench_streams_n_content_deltas(client: httpx.AsyncClient) -> None:
    events = await stream_events(client, chat("bench 300"))
    contents = [
        e["choices"][0]["delta"]["content"]
        for e in events[1:-1]
        if e["choices"] and e["choices"][0]["delta"].get("content")
    ]
    assert len(contents) == 300


async def test_bare_path_without_v1_works_too(server: ScriptedModelServer) -> None:
    root = server.base_url.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=root) as http:
        events = await stream_events(http, chat("hello"))
    assert events[-1] == "[DONE]"


async def test_non_streaming_request_gets_a_chat_completion(client: httpx.AsyncClient) -> None:
    response = await client.post("/chat/completions", json=chat("run `ls`", stream=False))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL_ID
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["reasoning_content"] and message["content"]
    (call,) = message["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "run_shell"
    assert msgspec.json.decode(call["function"]["arguments"]) == {"command": "ls"}
    assert body["usage"]["completion_tokens"] > 0


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"model": "x"}'])
async def test_bad_requests_get_an_openai_error(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        "/chat/completions", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/embeddings", json={})
    assert response.status_code == 404
    assert response.json()["error"]["message"]


async def test_client_hanging_up_mid_story_stops_the_stream() -> None:
    # Real pacing: the story takes several seconds, so an early end proves the
    # server noticed the disconnect rather than finishing the story.
    async with ScriptedModelServer(pace=1) as model, httpx.AsyncClient() as http:
        url = f"{model.base_url}/chat/completions"
        async with http.stream("POST", url, json=chat("tell me a long story")) as response:
            lines = 0
            async for line in response.aiter_lines():
                lines += bool(line)
                if lines == 10:
                    break
            assert model.active_streams == 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2
        # The server has no event for this; polling its counter is the test's only view.
        while model.active_streams and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        assert model.active_streams == 0


async def test_module_entry_point_prints_the_base_url() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("daemon", "protocol")),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parleyd.offline",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        assert process.stdout is not None
        base_url = (await asyncio.wait_for(process.stdout.readline(), 10)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{base_url}/models")
        assert response.json()["data"][0]["id"] == MODEL_ID
    finally:
        process.terminate()
        await process.wait()
