"""Compaction: when a conversation nears its model's context window, or the
provider says it is over it, the history before the current prompt (in a
conversation's first turn, a sub-agent's only one: before its latest step) is
summarised by the model, and the summary stands in for it in what the model
reads from then on. The records stay as they were: a load rebuilds the full
history, then applies each completed compaction at the point it happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from parleyd.providers.messages import (
    AssistantMessage,
    Attachment,
    Message,
    ModelRequest,
    ToolResultMessage,
    UserMessage,
)

SUMMARY_SYSTEM = (
    "You are compacting the history of a coding-agent conversation so that it can go on "
    "within the model's context window. Write the summary the agent will read instead of "
    "the messages above: the user's requests and preferences, decisions taken, files "
    "read or changed and what was found, commands run and their outcomes, and what is "
    "still open. Be specific (paths, names, numbers); leave out chit-chat."
)
SUMMARY_REQUEST = (
    "Write a summary of the conversation above for your own continuation, as described "
    "in the system prompt. Answer with the summary only."
)
SUMMARY_HEADING = "Summary of the earlier conversation (compacted):"


@dataclass(frozen=True)
class Split:
    """The history cut in two: what is summarised, what stays."""

    older: list[Message]
    kept: list[Message]


def split(history: list[Message]) -> Split | None:
    """The history cut at its latest user message, so the prompt being answered
    stays whole; when nothing but a summary precedes that message (the
    conversation's first turn), cut at the turn's latest response instead, so
    a long first turn, a sub-agent's only one, compacts its earlier steps.
    None when no cut leaves something a summary could replace."""
    prompt = _latest(history, UserMessage)
    if prompt:  # neither None nor the first message
        older = history[:prompt]
        if not (len(older) == 1 and _is_summary(older[0])):
            return Split(older=older, kept=history[prompt:])
    step = _latest(history, AssistantMessage)
    if step is None or not any(isinstance(m, AssistantMessage) for m in history[:step]):
        return None
    return Split(older=history[:step], kept=history[step:])


def whole(history: list[Message]) -> Split | None:
    """All the history, for a compaction the user asks for (`/compact`); None
    when there is nothing but a summary, or nothing at all."""
    if not history or (len(history) == 1 and _is_summary(history[0])):
        return None
    return Split(older=list(history), kept=[])


def _latest(history: list[Message], kind: type[Message]) -> int | None:
    return next((i for i in range(len(history) - 1, -1, -1) if isinstance(history[i], kind)), None)


def _is_summary(message: Message) -> bool:
    return isinstance(message, UserMessage) and message.text.startswith(SUMMARY_HEADING)


def summary_request(
    model: str, older: list[Message], max_output_tokens: int | None, focus: str = ""
) -> ModelRequest:
    """A request that asks the model, with no tools, for the summary of `older`;
    `focus`: what the user wants it to keep above all (`/compact <focus>`)."""
    asked = f"{SUMMARY_REQUEST} Above all, keep: {focus}" if focus else SUMMARY_REQUEST
    return ModelRequest(
        model=model,
        system=SUMMARY_SYSTEM,
        messages=(*older, UserMessage(text=asked)),
        tools=(),
        max_output_tokens=max_output_tokens,
    )


def compacted(summary: str, kept: list[Message]) -> list[Message]:
    """The history the model reads after a compaction."""
    return [UserMessage(text=f"{SUMMARY_HEADING}\n\n{summary}"), *kept]


# Providers count an image by its size in pixels, not bytes: Anthropic's
# largest come to about 1,600 tokens.
_IMAGE_CHARACTERS = 1_600 * 4


def _characters_of(attached: Attachment) -> int:
    """What an attachment weighs in a request, as characters of text would."""
    return _IMAGE_CHARACTERS if attached.is_image else len(attached.data) * 3 // 4


def estimate_tokens(history: list[Message], system: str) -> int:
    """Roughly the tokens of a request, at four characters a token."""
    characters = len(system)
    for message in history:
        match message:
            case (
                UserMessage(text=text, attachments=attachments)
                | ToolResultMessage(content=text, attachments=attachments)
            ):
                characters += len(text) + sum(map(_characters_of, attachments))
            case AssistantMessage():
                characters += len(message.text) + len(message.thinking)
                characters += sum(len(c.arguments) + len(c.name) for c in message.tool_calls)
    return -(-characters // 4)
