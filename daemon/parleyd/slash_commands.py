"""Parley's slash commands: advertised to the client once a session is open
(`available_commands_update`) and run when a prompt is one, instead of a turn.

A command does what the matching request does (`/mode` as `session/set_mode`,
`/budget` as `_parley/session/setBudget`), so what it changes is recorded and
replayed the same way; the command itself is not the model's business and
never reaches its history. `/compact` runs a turn of its own, whose one step
is the compaction a turn makes near the context window's end."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from parley_protocol.acp import (
    AvailableCommand,
    ContentBlock,
    TextContent,
    UnstructuredCommandInput,
)
from parley_protocol.parley import Budget
from parleyd.session.errors import InvalidValue
from parleyd.tools.permission import MODE_DESCRIPTIONS, mode_named

MODE = "mode"
BUDGET = "budget"
COMPACT = "compact"
COMMANDS = (
    AvailableCommand(
        name=COMPACT,
        description="Summarise the conversation so far, to free its context window",
        input=UnstructuredCommandInput(hint="what the summary should keep, if anything"),
    ),
    AvailableCommand(
        name=MODE,
        description="Switch the session's permission mode",
        input=UnstructuredCommandInput(hint="ask, accept_edits, read_only or full_auto"),
    ),
    AvailableCommand(
        name=BUDGET,
        description="Set what the session may spend: US dollars, model responses, seconds",
        input=UnstructuredCommandInput(hint="cost=2 responses=50 seconds=600, or none"),
    ),
)
_NAMES = frozenset(command.name for command in COMMANDS)
LIMITS = ("cost", "responses", "seconds")


@dataclass(frozen=True)
class SlashCommand:
    name: str
    argument: str


def slash_command(prompt: list[ContentBlock]) -> SlashCommand | None:
    """The command a prompt is: one text block `/name argument`, of a command
    Parley has. Anything else, an unknown `/word` too, is a prompt for the model."""
    if len(prompt) != 1 or not isinstance(prompt[0], TextContent):
        return None
    text = prompt[0].text.strip()
    if not text.startswith("/"):
        return None
    name, _, argument = text[1:].partition(" ")
    return SlashCommand(name, argument.strip()) if name in _NAMES else None


def confirmation(command: SlashCommand) -> str | None:
    """What the user is told a command did, once it did it: a client that shows
    no mode or budget still shows this. `/compact` tells of itself as it runs."""
    match command.name:
        case "mode":
            return f"Permission mode: {MODE_DESCRIPTIONS[mode_named(command.argument)][0]}."
        case "budget":
            limits = budget_limits(command.argument)
            said = []
            if limits.cost is not None:
                said.append(f"${limits.cost:g}")
            if limits.responses is not None:
                said.append(f"{limits.responses} model response{'s' * (limits.responses != 1)}")
            if limits.seconds is not None:
                said.append(f"{limits.seconds:g} s")
            return f"Budget: at most {', '.join(said)}." if said else "Budget: no limits."
    return None


def budget_limits(argument: str) -> Budget:
    """`/budget`'s argument as limits: `cost=2 responses=50 seconds=600` (any of
    them; a limit not named is lifted), or `none`, which lifts them all."""
    usage = f"/budget takes {' '.join(f'{name}=N' for name in LIMITS)} (any of them) or none"
    if argument.lower() == "none":
        return Budget()
    if not argument:
        raise InvalidValue(f"{usage}; got nothing")
    limits: dict[str, str] = {}
    for word in argument.split():
        name, equals, value = word.partition("=")
        if name not in LIMITS or not equals:
            raise InvalidValue(f"{usage}; got {word!r}")
        limits[name] = value
    try:
        # The request's own type checks the numbers, as `setBudget` does.
        return msgspec.convert(limits, Budget, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidValue(f"{usage}; {exc}") from None
