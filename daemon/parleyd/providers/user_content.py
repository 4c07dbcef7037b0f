"""A message's content in a provider's shape. A user message: its attachments
first (as Anthropic and Gemini advise for images), then its text. A tool
result: its text, then what it attached, as the tool gave them.

Each provider says how its API takes an attachment, or that it takes none of
that kind; a model never silently misses a file: it reads a note instead."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from parleyd.providers.messages import Attachment, ToolResultMessage, UserMessage

Block = dict[str, Any]


@dataclass(frozen=True)
class ContentShape:
    """How one API takes content: `attachment` gives an attachment's block, or
    None when the API cannot take it; `text` wraps text (a message's own, and
    the note that stands for an attachment the API cannot take, which names
    the API as `provider`)."""

    provider: str
    attachment: Callable[[Attachment], Block | None]
    text: Callable[[str], Block]

    def user(self, message: UserMessage) -> list[Block]:
        return [*self.attached(message.attachments), *self._texts(message.text)]

    def tool_result(self, result: ToolResultMessage) -> list[Block]:
        return [*self._texts(result.content), *self.attached(result.attachments)]

    def attached(self, attachments: tuple[Attachment, ...]) -> list[Block]:
        """Each attachment's block, or the note that stands for it."""
        blocks: list[Block] = []
        for attached in attachments:
            block = self.attachment(attached)
            blocks.append(self.text(attached.unreadable(self.provider)) if block is None else block)
        return blocks

    def _texts(self, text: str) -> list[Block]:
        # APIs refuse an empty text block: a message of attachments alone has none.
        return [self.text(text)] if text else []
