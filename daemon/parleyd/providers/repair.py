"""A conversation's history made valid for any provider before it is sent.

Every provider refuses a history whose tool calls and results do not pair up
(OpenAI: "tool_call_ids did not have response messages"; Anthropic: "tool_use
ids were found without tool_result blocks"), and a session can hold one: a
daemon killed between a call and its result, a result recorded for a call a
compaction summarised away, a model that reused a call id. Nothing here
changes what is stored: the log keeps what happened, and each request sends a
repaired copy.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from parleyd.providers.messages import (
    AssistantMessage,
    Message,
    Part,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)

NOT_EXECUTED = "Not executed: the conversation moved on before this call ran."


def repaired(messages: Iterable[Message]) -> tuple[Message, ...]:
    """`messages` with every tool call answered once, right after the response
    that made it; results of calls that are gone dropped; arguments that are
    not a JSON object sent as `{}`; empty messages left out; and a call id
    already used earlier renamed, with its result."""
    history: list[Message] = []
    used_ids: set[str] = set()
    # The calls of the latest response still waiting for a result: id -> call.
    waiting: dict[str, ToolCall] = {}
    renamed: dict[str, str] = {}
    for message in messages:
        match message:
            case ToolResultMessage(call_id=call_id):
                result = message
                if call_id in renamed:
                    result = msgspec.structs.replace(message, call_id=renamed[call_id])
                if waiting.pop(result.call_id, None) is not None:
                    history.append(result)
            case AssistantMessage():
                _answer(history, waiting)
                response, renamed = _response(message, used_ids)
                if response is not None:
                    history.append(response)
                    waiting = {call.id: call for call in response.tool_calls}
            case UserMessage(text=text, attachments=attachments):
                _answer(history, waiting)
                if text.strip() or attachments:
                    history.append(message)
    _answer(history, waiting)
    return tuple(history)


def for_provider(messages: tuple[Message, ...], provider: str) -> tuple[Message, ...]:
    """`messages` as `provider` can read them: thinking signed or encrypted by
    another provider (a session that fell back, or changed provider) goes as
    its text alone, and without text not at all: no provider accepts another's
    signatures, and a foreign payload is refused as a bad request."""
    return tuple(
        _readable_by(message, provider) if isinstance(message, AssistantMessage) else message
        for message in messages
    )


def _readable_by(message: AssistantMessage, provider: str) -> AssistantMessage:
    foreign = [
        isinstance(part, ThinkingPart) and part.origin not in (None, provider)
        for part in message.parts
    ]
    if not any(foreign):
        return message
    parts = [
        ThinkingPart(part.text) if is_foreign and isinstance(part, ThinkingPart) else part
        for part, is_foreign in zip(message.parts, foreign, strict=True)
    ]
    return AssistantMessage(parts=tuple(part for part in parts if _says_something(part)))


def _answer(history: list[Message], waiting: dict[str, ToolCall]) -> None:
    """Results for the calls still waiting, before the history moves on."""
    for call in waiting.values():
        history.append(ToolResultMessage(call.id, call.name, NOT_EXECUTED, is_error=True))
    waiting.clear()


def _response(
    message: AssistantMessage, used_ids: set[str]
) -> tuple[AssistantMessage | None, dict[str, str]]:
    """The response as it can be sent (None: it says nothing), and the call ids it renamed."""
    parts: list[Part] = []
    renamed: dict[str, str] = {}
    for part in message.parts:
        if isinstance(part, ToolCall):
            call_id = part.id
            if call_id in used_ids:
                call_id = renamed[part.id] = _fresh(call_id, used_ids)
            used_ids.add(call_id)
            arguments = part.arguments if part.arguments_object() is not None else "{}"
            if (call_id, arguments) != (part.id, part.arguments):
                parts.append(msgspec.structs.replace(part, id=call_id, arguments=arguments))
                continue
        elif not _says_something(part):
            continue
        parts.append(part)
    if not parts:
        return None, renamed
    if parts == list(message.parts):
        return message, renamed
    return AssistantMessage(parts=tuple(parts)), renamed


def _says_something(part: Part) -> bool:
    if isinstance(part, ToolCall):
        return True
    if isinstance(part, ThinkingPart):
        return bool(part.text or part.signature or part.redacted)
    return bool(part.text)


def _fresh(call_id: str, used_ids: set[str]) -> str:
    number = 2
    while f"{call_id}_{number}" in used_ids:
        number += 1
    return f"{call_id}_{number}"
