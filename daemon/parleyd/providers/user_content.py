"""A user message's content in a provider's shape: its attachments first (as
Anthropic and Gemini advise for images), then its text.

Each provider says how its API takes an attachment, or that it takes none of
that kind; a model never silently misses a file: it reads a note instead."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from parleyd.providers.messages import Attachment, UserMessage

Block = dict[str, Any]


def user_blocks(
    message: UserMessage,
    *,
    provider: str,
    attachment: Callable[[Attachment], Block | None],
    text: Callable[[str], Block],
) -> list[Block]:
    """The message's blocks: `attachment` gives an attachment's block, or None
    when the API cannot take it; `text` wraps text (the message's own, and
    the note that stands for an attachment the API cannot take)."""
    blocks: list[Block] = []
    for attached in message.attachments:
        block = attachment(attached)
        blocks.append(text(attached.unreadable(provider)) if block is None else block)
    if message.text:
        blocks.append(text(message.text))
    return blocks
