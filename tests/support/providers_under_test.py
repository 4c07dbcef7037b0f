"""The five providers as the tests drive them against a `ReplayServer`: what each
is made from, where it posts, the variables its errors name, and the recorded
cases that belong to it.

    events = await OPENAI_CHAT.stream(OPENAI_CHAT.base_url(server))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from parleyd.providers.anthropic import AnthropicProvider
from parleyd.providers.base import Provider
from parleyd.providers.events import Done, ProviderEvent, StreamError
from parleyd.providers.gemini import GeminiProvider
from parleyd.providers.messages import ModelRequest, UserMessage
from parleyd.providers.ollama import OllamaProvider
from parleyd.providers.openai_chat import OpenAIChatProvider
from parleyd.providers.openai_responses import OpenAIResponsesProvider
from tests.support.replay_server import ReplayServer

MODEL = "test-model"
HELLO = ModelRequest(model=MODEL, system="", messages=(UserMessage("hi"),))


class ProviderClass(Protocol):
    def __call__(self, base_url: str, api_key: str | None, *, idle_timeout: float) -> Provider: ...


@dataclass(frozen=True)
class ProviderUnderTest:
    name: str  # the folder of its recorded cases, and its tests' id
    provider_class: ProviderClass
    base_path: str  # its base URL's path on the server: `/v1`
    endpoint: str  # the path it posts `HELLO` to
    api_key: str  # the key the tests give it
    key_variable: str  # named where the key is refused
    url_variable: str  # named where the server cannot be reached or has no such model
    documentation: str  # the site a written case's documentation page is on
    text_case: str  # a recorded answer that is all text

    @property
    def text_answer(self) -> str:
        """Its recorded text answer, as `load_case` and `enqueue_fixture` name it."""
        return f"{self.name}/{self.text_case}"

    def base_url(self, server: ReplayServer) -> str:
        return server.url + self.base_path

    def endpoint_url(self, server: ReplayServer) -> str:
        return server.url + self.endpoint

    async def stream(
        self, base_url: str, request: ModelRequest = HELLO, *, idle_timeout: float = 10.0
    ) -> list[ProviderEvent]:
        """Everything it streams for `request`, given the test key."""
        provider = self.provider_class(base_url, self.api_key, idle_timeout=idle_timeout)
        return await collected(provider, request)


async def collected(provider: Provider, request: ModelRequest) -> list[ProviderEvent]:
    """Everything `provider` streams for `request`; it is closed after."""
    try:
        return [event async for event in provider.stream(request)]
    finally:
        await provider.aclose()


def final_error(events: Sequence[ProviderEvent]) -> StreamError:
    """The error a stream that failed ended with (it never finished)."""
    assert isinstance(events[-1], StreamError), events
    assert not any(isinstance(event, Done) for event in events)
    return events[-1]


OPENAI_CHAT = ProviderUnderTest(
    name="openai_chat",
    provider_class=OpenAIChatProvider,
    base_path="/v1",
    endpoint="/v1/chat/completions",
    api_key="sk-test",
    key_variable="OPENAI_API_KEY",
    url_variable="OPENAI_BASE_URL",
    documentation="https://platform.openai.com/docs/",
    text_case="text_usage_chunk",
)
OPENAI_RESPONSES = ProviderUnderTest(
    name="openai_responses",
    provider_class=OpenAIResponsesProvider,
    base_path="/v1",
    endpoint="/v1/responses",
    api_key="sk-test",
    key_variable="OPENAI_API_KEY",
    url_variable="OPENAI_BASE_URL",
    documentation="https://platform.openai.com/docs/",
    text_case="text",
)
ANTHROPIC = ProviderUnderTest(
    name="anthropic",
    provider_class=AnthropicProvider,
    base_path="",
    endpoint="/v1/messages",
    api_key="sk-ant-test",
    key_variable="ANTHROPIC_API_KEY",
    url_variable="ANTHROPIC_BASE_URL",
    documentation="https://platform.claude.com/docs/",
    text_case="text",
)
GEMINI = ProviderUnderTest(
    name="gemini",
    provider_class=GeminiProvider,
    base_path="/v1beta",
    endpoint=f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
    api_key="gemini-test-key",
    key_variable="GEMINI_API_KEY",
    url_variable="GEMINI_BASE_URL",
    documentation="https://ai.google.dev/",
    text_case="text",
)
OLLAMA = ProviderUnderTest(
    name="ollama",
    provider_class=OllamaProvider,
    base_path="",
    endpoint="/api/chat",
    api_key="ollama-key",
    key_variable="OLLAMA_API_KEY",
    url_variable="OLLAMA_HOST",
    documentation="https://docs.ollama.com/",
    text_case="text",
)
EVERY_PROVIDER = (OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, GEMINI, OLLAMA)
