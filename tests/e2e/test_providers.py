"""A turn through the daemon for each provider, its recorded stream replayed on
loopback: what the editor is shown is what the provider's adapter reads."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from acp import (
    embedded_blob_resource,
    embedded_text_resource,
    image_block,
    resource_block,
    text_block,
)

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


def _environment(case: Case, server: ReplayServer, home: Path) -> dict[str, str]:
    """The daemon's environment for `case`, its provider pointed at `server`."""
    settings = {"PARLEY_PROVIDER": case.provider, "PARLEY_MODEL": case.model}
    settings[case.url_variable] = server.url + case.url_path
    if case.key_variable is not None:
        settings[case.key_variable] = "sk-test-not-a-real-key"
    return daemon_env(home, **settings)


@pytest.mark.parametrize("case", CASES, ids=[case.provider for case in CASES])
async def test_a_turn_through_the_daemon_shows_what_the_provider_sent(
    case: Case, server: ReplayServer, home: Path, workspace: Path
) -> None:
    thinking, text = await _read_by_the_adapter(case, server)
    assert text  # every case answers in words
    server.enqueue_fixture(case.fixture)
    client = RecordingClient()
    async with acp_daemon(_environment(case, server, home), client) as (connection, _):
        await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        answer = await connection.prompt(session_id=session.session_id, prompt=[text_block("hi")])
    assert answer.stop_reason == "end_turn"
    assert client.text() == text
    assert client.text("agent_thought_chunk") == thinking
    sent = server.requests[-1]
    assert sent.json.get("model", case.model) == case.model
    assert "sk-test-not-a-real-key" not in sent.path  # keys go in headers, never the URL


PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n not a whole image").decode()
PDF = base64.b64encode(b"%PDF-1.4 not a whole document").decode()
# The prompt's text, and the embedded source file's, as the model reads them.
PROMPT_TEXT = 'What do these show?\n\n<file uri="file:///w/app.py">\nprint(1)\n</file>'
PDF_NOTE = (
    "[attached: file:///w/report.pdf (application/pdf), "
    "which the Ollama API does not pass to the model]"
)
# What each provider's request carries of that prompt, in the API's own shape.
ATTACHED: dict[ProviderName, Any] = {
    "openai": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {
            "type": "file",
            "file": {"filename": "report.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
        },
        {"type": "text", "text": PROMPT_TEXT},
    ],
    "openai-responses": [
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        {
            "type": "input_file",
            "filename": "report.pdf",
            "file_data": f"data:application/pdf;base64,{PDF}",
        },
        {"type": "input_text", "text": PROMPT_TEXT},
    ],
    "anthropic": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "report.pdf",
        },
        {"type": "text", "text": PROMPT_TEXT},
    ],
    "gemini": [
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"inlineData": {"mimeType": "application/pdf", "data": PDF}},
        {"text": PROMPT_TEXT},
    ],
    "ollama": {"content": f"{PDF_NOTE}\n\n{PROMPT_TEXT}", "images": [PNG]},
}


def _user_content(provider: ProviderName, body: dict[str, Any]) -> Any:
    """What the request's last user message carries, where each API puts it."""
    match provider:
        case "openai":
            return body["messages"][-1]["content"]
        case "openai-responses":
            return body["input"][-1]["content"]
        case "anthropic":  # the prompt cache's mark is another test's concern
            return [
                {key: value for key, value in block.items() if key != "cache_control"}
                for block in body["messages"][-1]["content"]
            ]
        case "gemini":
            return body["contents"][-1]["parts"]
        case _:
            last = body["messages"][-1]
            return {"content": last["content"], "images": last.get("images")}


@pytest.mark.parametrize("case", CASES, ids=[case.provider for case in CASES])
async def test_images_and_files_the_editor_attaches_reach_the_model_in_its_api_shape(
    case: Case, server: ReplayServer, home: Path, workspace: Path
) -> None:
    prompt = [
        text_block("What do these show?"),
        image_block(PNG, "image/png"),
        resource_block(embedded_text_resource("file:///w/app.py", "print(1)")),
        resource_block(embedded_blob_resource("file:///w/report.pdf", PDF)),
    ]
    server.enqueue_fixture(case.fixture)
    server.enqueue_fixture(case.fixture)
    async with acp_daemon(_environment(case, server, home), RecordingClient()) as (connection, _):
        setup = await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        await connection.prompt(session_id=session.session_id, prompt=prompt)
        # The next call sends the history again: the attachments stay in it.
        await connection.prompt(session_id=session.session_id, prompt=[text_block("and?")])
    capabilities = setup.agent_capabilities.prompt_capabilities  # type: ignore[union-attr]
    assert capabilities.image and capabilities.embedded_context
    first, second = server.requests[-2:]
    assert _user_content(case.provider, first.json) == ATTACHED[case.provider]
    assert ATTACHED[case.provider] in _history_contents(case.provider, second.json)


def _history_contents(provider: ProviderName, body: dict[str, Any]) -> list[Any]:
    """What every message of the request carries, as `_user_content` reads the last."""
    key = {"openai-responses": "input", "gemini": "contents"}.get(provider, "messages")
    return [
        _user_content(provider, {**body, key: body[key][: index + 1]})
        for index in range(len(body[key]))
    ]


async def test_attachments_are_sent_again_after_the_daemon_restarts(
    server: ReplayServer, home: Path, workspace: Path
) -> None:
    (case,) = [case for case in CASES if case.provider == "anthropic"]
    environment = _environment(case, server, home)
    prompt = [text_block("What does this show?"), image_block(PNG, "image/png")]
    server.enqueue_fixture(case.fixture)
    async with acp_daemon(environment, RecordingClient()) as (connection, _):
        await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        await connection.prompt(session_id=session.session_id, prompt=prompt)
    server.enqueue_fixture(case.fixture)
    async with acp_daemon(environment, RecordingClient()) as (connection, _):
        await connection.initialize(protocol_version=1)
        await connection.load_session(
            session_id=session.session_id, cwd=str(workspace), mcp_servers=[]
        )
        await connection.prompt(session_id=session.session_id, prompt=[text_block("and?")])
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    first_turn = server.requests[-1].json["messages"][0]
    assert first_turn["content"][0] == image


async def test_provider_openai_told_to_speak_responses_calls_the_responses_api(
    server: ReplayServer, home: Path, workspace: Path
) -> None:
    (case,) = [case for case in CASES if case.provider == "openai-responses"]
    _, text = await _read_by_the_adapter(case, server)
    server.enqueue_fixture(case.fixture)
    environment = _environment(case, server, home)
    environment.update(PARLEY_PROVIDER="openai", PARLEY_OPENAI_API="responses")
    client = RecordingClient()
    async with acp_daemon(environment, client) as (connection, _):
        await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        answer = await connection.prompt(session_id=session.session_id, prompt=[text_block("hi")])
    assert answer.stop_reason == "end_turn"
    assert client.text() == text
    assert server.requests[-1].path == "/v1/responses"


async def test_the_daemon_waits_for_ollama_to_load_a_model_longer_than_any_silence(
    server: ReplayServer, home: Path, workspace: Path
) -> None:
    (case,) = [case for case in CASES if case.provider == "ollama"]
    environment = _environment(case, server, home)
    config = workspace / "config.toml"
    config.write_text("idle_timeout = 0.3\n")
    environment.update(PARLEY_CONFIG=str(config), PARLEY_MODEL_LOAD_TIMEOUT="30")
    server.enqueue_fixture(case.fixture, wait=1.0)  # the model loads
    async with acp_daemon(environment, RecordingClient()) as (connection, _):
        await connection.initialize(protocol_version=1)
        session = await connection.new_session(cwd=str(workspace), mcp_servers=[])
        answer = await connection.prompt(session_id=session.session_id, prompt=[text_block("hi")])
    assert answer.stop_reason == "end_turn"
    assert server.pending == 0  # answered by the first call, not a retry
