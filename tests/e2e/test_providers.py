"""A turn through the daemon for each provider, its recorded stream replayed on
loopback: what the editor is shown is what the provider's adapter reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from acp import text_block

from parleyd.config import ProviderName, Settings
from parleyd.providers.events import TextDelta, ThinkingDelta
from parleyd.providers.hub import ProviderHub
from parleyd.providers.messages import ModelRequest, UserMessage
from tests.support.acp_client import RecordingClient, acp_daemon
from tests.support.daemon import daemon_env
from tests.support.replay_server import ReplayServer


@dataclass(frozen=True)
class Case:
    provider: ProviderName
    fixture: str
    model: str
    # The environment variable that points the provider at the server, and
    # what it is set to (the server's URL plus this path).
    url_variable: str
    url_path: str
    key_variable: str | None


CASES = [
    Case("openai", "openai_chat/deepseek_reasoning_content", "deepseek-chat",
         "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY"),
    Case("openai-responses", "openai_responses/reasoning_summary", "o4-mini",
         "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY"),
    Case("anthropic", "anthropic/thinking_signature", "claude-sonnet-4-5",
         "ANTHROPIC_BASE_URL", "", "ANTHROPIC_API_KEY"),
    Case("gemini", "gemini/thought_parts", "gemini-2.5-flash",
         "GEMINI_BASE_URL", "", "GEMINI_API_KEY"),
    Case("ollama", "ollama/thinking", "qwen3", "OLLAMA_HOST", "", None),
]  # fmt: skip


@pytest.fixture
async def server() -> AsyncIterator[ReplayServer]:
    async with ReplayServer() as replay:
        yield replay


async def _read_by_the_adapter(case: Case, server: ReplayServer) -> tuple[str, str]:
    """(thinking, text) of the fixture, as the provider the hub builds reads
    it, in this process."""
    server.enqueue_fixture(case.fixture)
    base_url = server.url + case.url_path
    settings = Settings(provider=case.provider, model=case.model, base_url=base_url, api_key="k")
    hub = ProviderHub()
    provider = hub.provider_for(settings)
    request = ModelRequest(model=case.model, system="", messages=(UserMessage("hi"),))
    thinking, text = [], []
    try:
        async for event in provider.stream(request):
            if isinstance(event, ThinkingDelta):
                thinking.append(event.text)
            elif isinstance(event, TextDelta):
                text.append(event.text)
    finally:
        await provider.aclose()
        await hub.aclose()
    return "".join(thinking), "".join(text)


@pytest.mark.parametrize("case", CASES, ids=[case.provider for case in CASES])
async def test_a_turn_through_the_daemon_shows_what_the_provider_sent(
    case: Case, server: ReplayServer, home: Path, workspace: Path
) -> None:
    thinking, text = await _read_by_the_adapter(case, server)
    assert text  # every case answers in words
    server.enqueue_fixture(case.fixture)
    settings = {"PARLEY_PROVIDER": case.provider, "PARLEY_MODEL": case.model}
    settings[case.url_variable] = server.url + case.url_path
    if case.key_variable is not None:
        settings[case.key_variable] = "sk-test-not-a-real-key"
    client = RecordingClient()
    async with acp_daemon(daemon_env(home, **settings), client) as (connection, _):
        await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        answer = await connection.prompt(session_id=session.session_id, prompt=[text_block("hi")])
    assert answer.stop_reason == "end_turn"
    assert client.text() == text
    assert client.text("agent_thought_chunk") == thinking
    sent = server.requests[-1]
    assert sent.json.get("model", case.model) == case.model
    assert "sk-test-not-a-real-key" not in sent.path  # keys go in headers, never the URL
