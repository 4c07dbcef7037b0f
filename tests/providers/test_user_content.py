"""Attachments an API cannot take reach the model as a note, in each provider's shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from parleyd.providers import anthropic, gemini, ollama, openai_chat, openai_responses
from parleyd.providers.messages import Attachment, ModelRequest, UserMessage

ZIP = Attachment("application/zip", "UEsDBA==", "file:///w/src.zip")
WAV = Attachment("audio/wav", "UklGRg==")
BMP = Attachment("image/bmp", "Qk0=")


def _request(*attached: Attachment) -> ModelRequest:
    message = UserMessage("Look.", attachments=attached)
    return ModelRequest(model="m", system="", messages=(message,))


def _note(attached: Attachment, api: str) -> str:
    return attached.unreadable(api)  # its wording: tests/session/test_user_input.py


Builder = Callable[[ModelRequest], dict[str, Any]]
CASES: list[tuple[str, Builder, Any]] = [
    (
        "openai",
        openai_chat.request_body,
        lambda body: body["messages"][-1]["content"],
    ),
    (
        "openai-responses",
        openai_responses.request_body,
        lambda body: body["input"][-1]["content"],
    ),
    (
        "anthropic",
        anthropic.request_body,
        lambda body: body["messages"][-1]["content"],
    ),
    ("gemini", gemini.request_body, lambda body: body["contents"][-1]["parts"]),
    ("ollama", ollama.request_body, lambda body: body["messages"][-1]),
]


@pytest.mark.parametrize(("provider", "build", "user_content"), CASES, ids=[c[0] for c in CASES])
def test_what_the_api_cannot_take_is_a_note_and_what_it_can_is_passed(
    provider: str, build: Builder, user_content: Callable[[dict[str, Any]], Any]
) -> None:
    content = user_content(build(_request(ZIP, WAV, BMP)))
    expected = {
        "openai": [
            {"type": "text", "text": _note(ZIP, "Chat Completions")},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}},
            {"type": "text", "text": "Look."},
        ],
        "openai-responses": [
            {"type": "input_text", "text": _note(ZIP, "Responses")},
            {"type": "input_text", "text": _note(WAV, "Responses")},
            {"type": "input_image", "image_url": "data:image/bmp;base64,Qk0="},
            {"type": "input_text", "text": "Look."},
        ],
        "anthropic": [
            {"type": "text", "text": _note(ZIP, "Anthropic Messages")},
            {"type": "text", "text": _note(WAV, "Anthropic Messages")},
            {"type": "text", "text": _note(BMP, "Anthropic Messages")},  # not one it reads
            {"type": "text", "text": "Look.", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
        ],
        "gemini": [
            {"text": _note(ZIP, "Gemini")},
            {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
            {"inlineData": {"mimeType": "image/bmp", "data": "Qk0="}},
            {"text": "Look."},
        ],
        "ollama": {
            "role": "user",
            "content": f"{_note(ZIP, 'Ollama')}\n\n{_note(WAV, 'Ollama')}\n\nLook.",
            "images": ["Qk0="],
        },
    }
    assert content == expected[provider]


def test_a_message_of_attachments_alone_sends_no_empty_text() -> None:
    message = UserMessage("", attachments=(Attachment("image/png", "iVBO"),))
    body = anthropic.request_body(ModelRequest(model="m", system="", messages=(message,)))
    assert [block["type"] for block in body["messages"][-1]["content"]] == ["image"]
