"""The demo's real path: Parley's OpenAI Chat provider talking to the scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

import msgspec
import pytest

from parleyd.offline.model_server import ScriptedModelServer
from parleyd.offline.script import MODEL_ID
from parleyd.providers.events import (
    Done,
    ProviderEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from parleyd.providers.messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
)
from parleyd.providers.openai_chat import OpenAIChatProvider

T = TypeVar("T")

READ_FILE = ToolSpec(
    name="read_file",
    description="Read a text file of the workspace.",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}},
)


@pytest.fixture
async def provider() -> AsyncIterator[OpenAIChatProvider]:
    async with ScriptedModelServer(pace=0) as model:
        chat = OpenAIChatProvider(model.base_url, api_key="not-needed")
        try:
            yield chat
        finally:
            await chat.aclose()


async def collect(
    provider: OpenAIChatProvider, messages: tuple[Message, ...]
) -> list[ProviderEvent]:
    request = ModelRequest(
        model=MODEL_ID, system="You are a coding agent.", messages=messages, tools=(READ_FILE,)
    )
    return [event async for event in provider.stream(request)]


def of_type(events: list[ProviderEvent], kind: type[T]) -> list[T]:
    return [event for event in events if isinstance(event, kind)]


async def test_thinking_text_tool_call_then_an_answer_from_the_result(
    provider: OpenAIChatProvider,
) -> None:
    question = UserMessage(text="Summarize README.md")
    events = await collect(provider, (question,))

    thinking = "".join(e.text for e in of_type(events, ThinkingDelta))
    text = "".join(e.text for e in of_type(events, TextDelta))
    assert thinking == "The user wants me to look at README.md. I'll read it first."
    assert "scripted offline model" in text
    (start,) = of_type(events, ToolCallStart)
    assert start.name == "read_file"
    (end,) = of_type(events, ToolCallEnd)
    assert msgspec.json.decode(end.arguments) == {"path": "README.md"}
    streamed = "".join(delta.delta for delta in of_type(events, ToolCallArgumentsDelta))
    assert streamed == end.arguments
    (usage,) = of_type(events, Usage)
    assert usage.input_tokens > 0 and usage.reasoning_tokens > 0
    assert events[-1] == Done(stop_reason="tool_use", raw_reason="tool_calls")

    history = (
        question,
        AssistantMessage(
            parts=(
                ThinkingPart(thinking),
                TextPart(text),
                ToolCall(id=end.call_id, name=end.name, arguments=end.arguments),
            )
        ),
        ToolResultMessage(
            call_id=end.call_id, name=end.name, content="# Parley\n\nAn agent daemon.\n"
        ),
    )
    answer = await collect(provider, history)
    answer_text = "".join(e.text for e in of_type(answer, TextDelta))
    assert '"Parley"' in answer_text and "**Lines:** 3" in answer_text
    assert of_type(answer, ToolCallStart) == []
    assert answer[-1] == Done(stop_reason="end_turn", raw_reason="stop")
