"""The one exception the client raises for anything the daemon or the connection did."""

from __future__ import annotations

from typing import Any, Final

# Client-side only, never sent on the wire: the daemon exited or the connection
# closed before an answer came. Inside JSON-RPC's implementation-defined range,
# clear of the codes ACP and Parley assign (-32000 .. -32011).
DISCONNECTED: Final = -32099


class ParleyError(Exception):
    """A JSON-RPC error answer from the daemon, or a lost connection (`DISCONNECTED`)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ParleyError({self.code}, {self.message!r})"
