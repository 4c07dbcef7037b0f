"""Whether a tool call may run: the session's permission policy.

The client is asked (ACP `session/request_permission`) only for tools that need
it, and only until the user answers "always" for that tool; those answers last
as long as the session. A scripted run decides up front with a PermissionMode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

from .base import Tool

# ACP's PermissionOptionKind.
PermissionOptionKind = Literal["allow_once", "allow_always", "reject_once", "reject_always"]


class PermissionMode(Enum):
    ASK = "ask"
    ALLOW_ALL = "allow_all"  # `--yes`
    DENY_ALL = "deny_all"


@dataclass(frozen=True)
class PermissionOption:
    """One answer offered to the user; the lead maps it onto ACP's PermissionOption."""

    option_id: str
    name: str
    kind: PermissionOptionKind


@dataclass(frozen=True)
class Decision:
    """`reason` says, for the model, why a call was not run (or how it was allowed).
    `lasting`: the answer holds for the tool until the session ends, and is
    stored with it."""

    allowed: bool
    reason: str
    lasting: bool = False


# The option ids are the kinds themselves: any id a client echoes back maps to
# its meaning without a lookup table that could drift.
OPTIONS: tuple[PermissionOption, ...] = (
    PermissionOption("allow_once", "Allow once", "allow_once"),
    PermissionOption("allow_always", "Always allow", "allow_always"),
    PermissionOption("reject_once", "Reject", "reject_once"),
    PermissionOption("reject_always", "Always reject", "reject_always"),
)


class PermissionPolicy:
    def __init__(self, mode: PermissionMode = PermissionMode.ASK) -> None:
        self.mode = mode
        self._remembered: dict[str, Decision] = {}

    def standing_decision(self, tool: Tool) -> Decision | None:
        """The decision that holds without asking, or None: ask the client."""
        if not tool.needs_permission:
            return Decision(True, f"{tool.name} needs no permission")
        if self.mode is PermissionMode.ALLOW_ALL:
            return Decision(True, "every tool call is allowed in this session")
        if self.mode is PermissionMode.DENY_ALL:
            return Decision(False, f"{tool.name} calls are denied in this session")
        return self._remembered.get(tool.name)

    def needs_asking(self, tool: Tool) -> bool:
        return self.standing_decision(tool) is None

    def options(self) -> tuple[PermissionOption, ...]:
        return OPTIONS

    def record(self, tool_name: str, option_id: str) -> Decision:
        """The user's answer. An id we did not offer counts as a rejection: running a
        command nobody clearly allowed is the one mistake not to make."""
        match option_id:
            case "allow_once":
                return Decision(True, "the user allowed this call")
            case "allow_always":
                return self.remember(tool_name, allowed=True)
            case "reject_always":
                return self.remember(tool_name, allowed=False)
            case _:
                return Decision(False, "the user rejected this call")

    def remember(self, tool_name: str, *, allowed: bool) -> Decision:
        """Answer every later call of this tool the same way, without asking."""
        verb = "allowed" if allowed else "rejected"
        decision = Decision(allowed, f"the user {verb} {tool_name} for this session", lasting=True)
        self._remembered[tool_name] = decision
        return decision
