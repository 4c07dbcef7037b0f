"""How an MCP server failed, for the client and the model to read."""

from __future__ import annotations


class ServerFailed(Exception):
    """A server would not start, or its connection broke: `reason` says how,
    `stderr` is the end of what a stdio server wrote there."""

    def __init__(self, reason: str, stderr: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stderr = stderr

    def __str__(self) -> str:
        return with_last_words(self.reason, self.stderr)


def with_last_words(said: str, stderr: str) -> str:
    """`said` and the last line a stdio server wrote to stderr, where it wrote one:
    most servers that die say why there."""
    last = stderr.splitlines()[-1] if stderr else ""
    return f"{said} (its last words: {last})" if last else said
