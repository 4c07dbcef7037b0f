"""`prompt_while_running`: what a `session/prompt` to a running session gets,
from `config.toml` or `PARLEY_PROMPT_WHILE_RUNNING`, and a word it does not take."""

from __future__ import annotations

from pathlib import Path

import pytest

from parleyd.config import ConfigError, load_settings


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


def test_prompts_while_running_are_refused_unless_set_to_queue(config_path: Path) -> None:
    environ = {"PARLEY_CONFIG": str(config_path)}
    assert load_settings(environ).prompt_while_running == "refuse"
    config_path.write_text('prompt_while_running = "queue"\n')
    assert load_settings(environ).prompt_while_running == "queue"
    overridden = {**environ, "PARLEY_PROMPT_WHILE_RUNNING": "refuse"}
    assert load_settings(overridden).prompt_while_running == "refuse"


@pytest.mark.parametrize(
    ("file", "variable", "origin"),
    [('prompt_while_running = "later"\n', None, "config.toml"), ("", "later", "environment")],
)
def test_a_word_it_does_not_take_is_refused_with_the_choices(
    config_path: Path, file: str, variable: str | None, origin: str
) -> None:
    config_path.write_text(file)
    environ = {"PARLEY_CONFIG": str(config_path)}
    if variable is not None:
        environ["PARLEY_PROMPT_WHILE_RUNNING"] = variable
    with pytest.raises(
        ConfigError,
        match=rf"{origin}: unknown prompt_while_running 'later'; choose one of refuse, queue",
    ):
        load_settings(environ)
