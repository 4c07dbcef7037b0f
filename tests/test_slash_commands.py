"""What a prompt must be to be a slash command, and /budget's argument."""

from __future__ import annotations

import pytest

from parley_protocol.acp import ImageContent, TextContent
from parley_protocol.parley import Budget
from parleyd.session.errors import InvalidValue
from parleyd.slash_commands import SlashCommand, budget_limits, confirmation, slash_command


def test_a_command_is_one_text_block_naming_one_of_parleys() -> None:
    assert slash_command([TextContent(text="  /mode  read_only ")]) == SlashCommand(
        "mode", "read_only"
    )
    assert slash_command([TextContent(text="/budget")]) == SlashCommand("budget", "")
    assert slash_command([TextContent(text="/deploy now")]) is None  # not Parley's: the model's
    assert slash_command([TextContent(text="mode /read_only")]) is None
    image = ImageContent(data="aW1n", mime_type="image/png")
    assert slash_command([TextContent(text="/mode ask"), image]) is None


def test_budget_limits_name_any_of_the_three_and_none_lifts_them() -> None:
    assert budget_limits("cost=2.5 responses=50") == Budget(cost=2.5, responses=50)
    assert budget_limits("seconds=600") == Budget(seconds=600)
    assert budget_limits("none") == Budget()


@pytest.mark.parametrize(
    ("argument", "said"),
    [
        ("", "got nothing"),
        ("lots", "got 'lots'"),
        ("tokens=5", "got 'tokens=5'"),
        ("cost=free", "cost"),
        ("responses=0", "responses"),
        ("responses=1.5", "responses"),
    ],
)
def test_a_wrong_budget_says_what_it_takes(argument: str, said: str) -> None:
    with pytest.raises(InvalidValue) as failed:
        budget_limits(argument)
    assert str(failed.value).startswith("/budget takes cost=N responses=N seconds=N")
    assert said in str(failed.value)


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (SlashCommand("mode", "full_auto"), "Permission mode: Full auto."),
        (SlashCommand("budget", "cost=2.5 responses=1"), "Budget: at most $2.5, 1 model response."),
        (
            SlashCommand("budget", "responses=50 seconds=600"),
            "Budget: at most 50 model responses, 600 s.",
        ),
        (SlashCommand("budget", "none"), "Budget: no limits."),
        (SlashCommand("compact", ""), None),
    ],
)
def test_a_command_that_changes_a_setting_says_what_it_set(
    command: SlashCommand, said: str | None
) -> None:
    assert confirmation(command) == said
