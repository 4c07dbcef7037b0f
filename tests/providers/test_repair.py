"""A history repaired before it is sent: every call answered once, right after it."""

from __future__ import annotations

from parleyd.providers.messages import (
    AssistantMessage,
    Attachment,
    Message,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from parleyd.providers.repair import NOT_EXECUTED, for_provider, repaired

READ = ToolCall(id="call_1", name="read_file", arguments='{"path": "a"}')
LIST = ToolCall(id="call_2", name="list_files", arguments="{}")
SCREENSHOT = Attachment("image/png", "iVBORw0KGgo=")


def test_a_valid_history_is_sent_as_it_is() -> None:
    history: list[Message] = [
        UserMessage("hi"),
        AssistantMessage(parts=(ThinkingPart("hm", signature="sig"), READ)),
        ToolResultMessage("call_1", "read_file", "text"),
        AssistantMessage(parts=(TextPart("done"),)),
    ]
    fixed = repaired(history)
    assert fixed == tuple(history)
    assert all(a is b for a, b in zip(fixed, history, strict=True))


def test_a_call_without_a_result_gets_one_before_the_history_moves_on() -> None:
    history: list[Message] = [
        UserMessage("hi"),
        AssistantMessage(parts=(READ, LIST)),
        ToolResultMessage("call_2", "list_files", "a b"),
        UserMessage("go on"),
    ]
    assert repaired(history) == (
        UserMessage("hi"),
        AssistantMessage(parts=(READ, LIST)),
        ToolResultMessage("call_2", "list_files", "a b"),
        ToolResultMessage("call_1", "read_file", NOT_EXECUTED, is_error=True),
        UserMessage("go on"),
    )
    # At the very end too: the daemon died between the call and its result.
    assert repaired(history[:2])[-2:] == (
        ToolResultMessage("call_1", "read_file", NOT_EXECUTED, is_error=True),
        ToolResultMessage("call_2", "list_files", NOT_EXECUTED, is_error=True),
    )


def test_results_whose_call_is_gone_and_second_results_are_dropped() -> None:
    history: list[Message] = [
        UserMessage("summary of earlier work"),
        ToolResultMessage("call_0", "read_file", "orphan"),
        AssistantMessage(parts=(READ,)),
        ToolResultMessage("call_1", "read_file", "text"),
        ToolResultMessage("call_1", "read_file", "again"),
    ]
    assert repaired(history) == (
        UserMessage("summary of earlier work"),
        AssistantMessage(parts=(READ,)),
        ToolResultMessage("call_1", "read_file", "text"),
    )


def test_arguments_that_are_not_a_json_object_are_sent_as_an_empty_one() -> None:
    broken = ToolCall(id="call_1", name="read_file", arguments='{"path": "a"')
    listed = ToolCall(id="call_2", name="read_file", arguments="[1]")
    history: list[Message] = [
        AssistantMessage(parts=(broken, listed)),
        ToolResultMessage("call_1", "read_file", "Error: arguments are not valid JSON"),
        ToolResultMessage("call_2", "read_file", "Error: arguments must be an object"),
    ]
    (response, *_) = repaired(history)
    assert isinstance(response, AssistantMessage)
    assert [call.arguments for call in response.tool_calls] == ["{}", "{}"]


def test_empty_messages_and_parts_are_left_out() -> None:
    history: list[Message] = [
        UserMessage("  "),
        AssistantMessage(parts=()),
        AssistantMessage(parts=(TextPart(""), ThinkingPart(""))),
        UserMessage("hi"),
        AssistantMessage(parts=(TextPart(""), ThinkingPart("", redacted="opaque"), TextPart("ok"))),
        UserMessage("", attachments=(SCREENSHOT,)),  # an image alone says something
    ]
    assert repaired(history) == (
        UserMessage("hi"),
        AssistantMessage(parts=(ThinkingPart("", redacted="opaque"), TextPart("ok"))),
        UserMessage("", attachments=(SCREENSHOT,)),
    )


def test_a_call_id_used_again_later_is_renamed_with_its_result() -> None:
    again = ToolCall(id="call_1", name="list_files", arguments="{}")
    history: list[Message] = [
        AssistantMessage(parts=(READ,)),
        ToolResultMessage("call_1", "read_file", "text"),
        AssistantMessage(parts=(again,)),
        ToolResultMessage("call_1", "list_files", "a b", attachments=(SCREENSHOT,)),
    ]
    fixed = repaired(history)
    assert fixed[2] == AssistantMessage(
        parts=(ToolCall(id="call_1_2", name="list_files", arguments="{}"),)
    )
    assert fixed[3] == ToolResultMessage("call_1_2", "list_files", "a b", attachments=(SCREENSHOT,))


def test_another_providers_signatures_and_payloads_are_not_sent() -> None:
    signed = ThinkingPart("I should read it.", signature="sig", origin="anthropic")
    sealed = ThinkingPart("", redacted="opaque", origin="anthropic")
    unknown = ThinkingPart("older", signature="kept")  # recorded before origins were
    history: tuple[Message, ...] = (
        UserMessage("hi"),
        AssistantMessage(parts=(signed, sealed, unknown, READ)),
    )
    assert for_provider(history, "anthropic") == history
    assert for_provider(history, "gemini") == (
        UserMessage("hi"),
        AssistantMessage(parts=(ThinkingPart("I should read it."), unknown, READ)),
    )
