"""What a tool's result attached (an MCP tool's screenshot, its files) reaches
the model in each API's shape, and a kind the API cannot take as a note: the
whole request each provider posts for one history."""

from __future__ import annotations

from typing import Any

import pytest

from parleyd.providers.messages import (
    AssistantMessage,
    Attachment,
    ModelRequest,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from tests.support.providers_under_test import (
    ANTHROPIC,
    GEMINI,
    MODEL,
    OLLAMA,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    ProviderUnderTest,
)
from tests.support.replay_server import ReplayServer

PNG = Attachment("image/png", "iVBORw0KGgo=", "file:///w/page.png")
ZIP = Attachment("application/zip", "UEsDBA==", "file:///w/site.zip")
PNG_URL = "data:image/png;base64,iVBORw0KGgo="
CACHED = {"type": "ephemeral", "ttl": "5m"}

# Two calls of one response: a screenshot with its text, then an archive alone
# (no API here takes one), then what the user said after them.
HISTORY = ModelRequest(
    model=MODEL,
    system="",
    messages=(
        UserMessage("Show me the page."),
        AssistantMessage(
            parts=(ToolCall("call_1", "screenshot", "{}"), ToolCall("call_2", "download", "{}"))
        ),
        ToolResultMessage("call_1", "screenshot", "The page.", attachments=(PNG,)),
        ToolResultMessage("call_2", "download", "", attachments=(ZIP,)),
        UserMessage("And now?"),
    ),
)


def _note(attached: Attachment, api: str) -> str:
    return attached.unreadable(api)  # its wording: tests/session/test_user_input.py


def _chat_call(call_id: str, name: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


OPENAI_CHAT_BODY = {
    "model": MODEL,
    "messages": [
        {"role": "user", "content": "Show me the page."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_chat_call("call_1", "screenshot"), _chat_call("call_2", "download")],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "The page."},
        {"role": "tool", "tool_call_id": "call_2", "content": ""},
        # A `tool` message takes text only: after the run of results, one user
        # message with what each call attached.
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Attached to the result of the screenshot call call_1:"},
                {"type": "image_url", "image_url": {"url": PNG_URL}},
                {"type": "text", "text": "Attached to the result of the download call call_2:"},
                {"type": "text", "text": _note(ZIP, "Chat Completions")},
            ],
        },
        {"role": "user", "content": "And now?"},
    ],
    "stream": True,
    "stream_options": {"include_usage": True},
}

OPENAI_RESPONSES_BODY = {
    "model": MODEL,
    "input": [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Show me the page."}],
        },
        {"type": "function_call", "call_id": "call_1", "name": "screenshot", "arguments": "{}"},
        {"type": "function_call", "call_id": "call_2", "name": "download", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": [
                {"type": "input_text", "text": "The page."},
                {"type": "input_image", "image_url": PNG_URL},
            ],
        },
        {
            "type": "function_call_output",
            "call_id": "call_2",
            "output": [{"type": "input_text", "text": _note(ZIP, "Responses")}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "And now?"}],
        },
    ],
    "stream": True,
    "store": False,
}

ANTHROPIC_BODY = {
    "model": MODEL,
    "max_tokens": 8192,
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Show me the page.", "cache_control": CACHED}],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "screenshot", "input": {}},
                {"type": "tool_use", "id": "call_2", "name": "download", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_1",
                    "content": [
                        {"type": "text", "text": "The page."},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": "iVBORw0KGgo=",
                            },
                        },
                    ],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": _note(ZIP, "Anthropic Messages")}],
                },
                {"type": "text", "text": "And now?", "cache_control": CACHED},
            ],
        },
    ],
    "stream": True,
}

GEMINI_BODY = {
    "contents": [
        {"role": "user", "parts": [{"text": "Show me the page."}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "screenshot", "args": {}},
                    "thoughtSignature": "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I=",
                },
                {"functionCall": {"name": "download", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "screenshot", "response": {"output": "The page."}}},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"functionResponse": {"name": "download", "response": {"output": ""}}},
                {"text": _note(ZIP, "Gemini")},
                {"text": "And now?"},
            ],
        },
    ],
    "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
}


def _ollama_call(call_id: str, name: str) -> dict[str, Any]:
    return {"id": call_id, "function": {"name": name, "arguments": {}}}


OLLAMA_BODY = {
    "model": MODEL,
    "messages": [
        {"role": "user", "content": "Show me the page."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                _ollama_call("call_1", "screenshot"),
                _ollama_call("call_2", "download"),
            ],
        },
        {
            "role": "tool",
            "content": "The page.",
            "images": ["iVBORw0KGgo="],
            "tool_name": "screenshot",
            "tool_call_id": "call_1",
        },
        {
            "role": "tool",
            "content": _note(ZIP, "Ollama"),
            "tool_name": "download",
            "tool_call_id": "call_2",
        },
        {"role": "user", "content": "And now?"},
    ],
    "stream": True,
}


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        pytest.param(provider, body, id=provider.name)
        for provider, body in [
            (OPENAI_CHAT, OPENAI_CHAT_BODY),
            (OPENAI_RESPONSES, OPENAI_RESPONSES_BODY),
            (ANTHROPIC, ANTHROPIC_BODY),
            (GEMINI, GEMINI_BODY),
            (OLLAMA, OLLAMA_BODY),
        ]
    ],
)
async def test_a_results_attachments_follow_its_text_in_the_apis_shape(
    server: ReplayServer, provider: ProviderUnderTest, expected: dict[str, Any]
) -> None:
    server.enqueue_fixture(provider.text_answer)
    await provider.stream(provider.base_url(server), HISTORY)
    assert server.requests[-1].json == expected
