"""Whether a tool call may run: the session's permission policy.

A session has a mode (an ACP session mode, switched with `session/set_mode`),
the user's "always" answers, and the per-tool defaults of `config.toml`. A call
is decided by the first of these rules that applies:

1. Read only refuses every call that could change something (a tool that needs
   permission, or whose kind edits, deletes, moves or executes), before any
   answer or default can allow it.
2. An "always" answer of this session: for a tool that runs commands, the one
   for the command's prefix (see `command_prefix.py`), then one for the tool.
3. The tool's default: its entry in `config.toml`'s `[permissions]` (`allow`,
   `deny` or `ask`), else its own: a tool that needs permission asks, the
   others run.
4. A call that still asks is the mode's to settle: full auto runs it, accept
   edits runs file changes, and otherwise the user is asked.

So a deny, configured or answered, holds in every mode, and an allow in every
mode but read only.

Read only refuses calls rather than taking tools away from the model: the tool
list of every request stays the same across modes (a switch mid-session keeps
the provider's prompt cache, and a sub-agent's `tools` mean the same in every
mode), and the refusal tells the model why, so it can ask the user for another
mode instead of working around a tool gone missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from parley_protocol.names import describe_unknown
from parleyd.config import ToolPermission

from .base import Tool, ToolKind
from .command_prefix import command_prefix

# ACP's PermissionOptionKind.
PermissionOptionKind = Literal["allow_once", "allow_always", "reject_once", "reject_always"]

DECLINED = "The user declined this tool call."
READ_ONLY_REFUSAL = (
    "Refused without asking: the session is in read-only mode, which allows no file "
    "changes and no commands. The user can switch the session to another mode to allow them."
)

FILE_CHANGES: frozenset[ToolKind] = frozenset({"edit", "delete", "move"})
_CHANGES: frozenset[ToolKind] = FILE_CHANGES | {"execute"}


class PermissionMode(Enum):
    """The session's modes; each value is its ACP session mode id."""

    ASK = "ask"
    ACCEPT_EDITS = "accept_edits"
    READ_ONLY = "read_only"
    FULL_AUTO = "full_auto"


# What the editor's mode picker shows: a name and a description.
MODE_DESCRIPTIONS: Mapping[PermissionMode, tuple[str, str]] = {
    PermissionMode.ASK: ("Ask", "Ask before each file change and each command."),
    PermissionMode.ACCEPT_EDITS: (
        "Accept edits",
        "Change files in the workspace without asking; still ask before each command.",
    ),
    PermissionMode.READ_ONLY: (
        "Read only",
        "Read and search only: file changes and commands are refused without asking.",
    ),
    PermissionMode.FULL_AUTO: (
        "Full auto",
        "Run every tool call without asking, except those you denied.",
    ),
}


def mode_named(mode_id: str) -> PermissionMode:
    """The mode with this id; a ValueError naming the ids there are."""
    try:
        return PermissionMode(mode_id)
    except ValueError:
        ids = [mode.value for mode in PermissionMode]
        raise ValueError(
            f"unknown mode {describe_unknown([mode_id], ids)}; the modes are {', '.join(ids)}"
        ) from None


@dataclass(frozen=True)
class PermissionOption:
    """One answer offered to the user; the agent maps it onto ACP's PermissionOption.
    The ids are the kinds themselves: any id a client echoes back maps to its
    meaning without a lookup table that could drift."""

    option_id: PermissionOptionKind
    name: str
    kind: PermissionOptionKind


@dataclass(frozen=True)
class Scope:
    """What an "always" answer covers: every call of `tool`, or, for a tool that
    runs commands, the commands with `command_prefix`."""

    tool: str
    command_prefix: str | None = None


@dataclass(frozen=True)
class Decision:
    """Whether the call runs. `reason`, when it does not, says why, for the
    model. `lasting`: the user's answer holds for this scope from now on, and
    is stored with the session."""

    allowed: bool
    reason: str = ""
    lasting: Scope | None = None


ALLOWED = Decision(True)
_ALLOW_ONCE = PermissionOption("allow_once", "Allow once", "allow_once")
_REJECT_ONCE = PermissionOption("reject_once", "Reject", "reject_once")


class PermissionPolicy:
    def __init__(
        self,
        mode: PermissionMode = PermissionMode.ASK,
        defaults: Mapping[str, ToolPermission] | None = None,
        remembered: Mapping[Scope, bool] | None = None,
    ) -> None:
        self.mode = mode
        self._defaults = dict(defaults or {})
        self._remembered = dict(remembered or {})

    def decide(self, tool: Tool, arguments: Mapping[str, Any]) -> Decision | None:
        """The decision that holds without asking, or None: ask the user."""
        if self.mode is PermissionMode.READ_ONLY and (
            tool.needs_permission or tool.kind in _CHANGES
        ):
            return Decision(False, READ_ONLY_REFUSAL)
        for scope in (_command_scope(tool, arguments), Scope(tool.name)):
            if scope is not None and scope in self._remembered:
                return ALLOWED if self._remembered[scope] else Decision(False, DECLINED)
        default = self._defaults.get(tool.name, "ask" if tool.needs_permission else "allow")
        if default == "deny":
            return Decision(
                False, f"Refused without asking: the user's configuration denies {tool.name}."
            )
        if (
            default == "allow"
            or self.mode is PermissionMode.FULL_AUTO
            or (self.mode is PermissionMode.ACCEPT_EDITS and tool.kind in FILE_CHANGES)
        ):
            return ALLOWED
        return None

    def options(self, tool: Tool, arguments: Mapping[str, Any]) -> tuple[PermissionOption, ...]:
        """The answers offered for this call: once, and always for its scope
        when it has one (`Always allow `git status``)."""
        scope = _scope(tool, arguments)
        if scope is None:
            return (_ALLOW_ONCE, _REJECT_ONCE)
        covered = "" if scope.command_prefix is None else f" `{scope.command_prefix}`"
        return (
            _ALLOW_ONCE,
            PermissionOption("allow_always", f"Always allow{covered}", "allow_always"),
            _REJECT_ONCE,
            PermissionOption("reject_always", f"Always reject{covered}", "reject_always"),
        )

    def answer(self, tool: Tool, arguments: Mapping[str, Any], option_id: str) -> Decision:
        """The user's answer, remembered if it is an "always". An id we did not
        offer counts as a rejection: running a command nobody clearly allowed is
        the one mistake not to make."""
        match option_id:
            case "allow_once":
                return ALLOWED
            case "allow_always" | "reject_always" if scope := _scope(tool, arguments):
                allowed = option_id == "allow_always"
                self._remembered[scope] = allowed
                return Decision(allowed, "" if allowed else DECLINED, lasting=scope)
        return Decision(False, DECLINED)


def _scope(tool: Tool, arguments: Mapping[str, Any]) -> Scope | None:
    """What an "always" answer about this call would cover; None if nothing
    wider than the call itself can be named (a command without a prefix)."""
    if tool.kind == "execute":
        return _command_scope(tool, arguments)
    return Scope(tool.name)


def _command_scope(tool: Tool, arguments: Mapping[str, Any]) -> Scope | None:
    command = arguments.get("command")
    if tool.kind != "execute" or not isinstance(command, str):
        return None
    prefix = command_prefix(command)
    return None if prefix is None else Scope(tool.name, prefix)
