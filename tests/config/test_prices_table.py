"""`config.toml`'s `[prices]` table: read into the settings, pricing what the
shipped table does not (or otherwise), and refused by key when malformed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from parleyd.config import ConfigError, Settings, load_settings
from parleyd.pricing import ModelPrice, price_of
from parleyd.providers.events import Usage
from tests.support.daemon import PARLEYD, daemon_env

MILLION = 1_000_000


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


def _load(config_path: Path, text: str) -> Settings:
    config_path.write_text(text)
    return load_settings({"PARLEY_CONFIG": str(config_path)})


def test_the_file_prices_a_model_through_the_settings(config_path: Path) -> None:
    settings = _load(
        config_path,
        'model = "house-7b"\n'
        '[prices]\n"house-7b" = { input = 0.2, cached_input = 0.02, output = 0.8 }\n'
        '[prices."gpt-4.1"]\ninput = 1\noutput = 4\n',
    )
    assert settings.prices == {
        "house-7b": ModelPrice(
            input=0.2, output=0.8, cached_input=0.02, cache_write=0.2, cache_write_1h=0.2
        ),
        "gpt-4.1": ModelPrice(
            input=1.0, output=4.0, cached_input=1.0, cache_write=1.0, cache_write_1h=1.0
        ),
    }
    usage = Usage(input_tokens=MILLION, cached_input_tokens=MILLION // 2, output_tokens=MILLION)

    def priced(model: str) -> float | None:
        return price_of(model, usage, provider=settings.provider, overrides=settings.prices)

    assert priced(settings.model_name) == pytest.approx(0.5 * 0.2 + 0.5 * 0.02 + 0.8)
    # Over the shipped table (gpt-4.1: 2.00 input, 8.00 output), and beside it.
    assert priced("gpt-4.1") == pytest.approx(1.0 + 4.0)
    assert priced("gpt-4o") == pytest.approx(0.5 * 2.50 + 0.5 * 1.25 + 10.00)
    assert Settings().prices == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[prices."house-7b"]\ninput = 0.2\noutptu = 0.8\n',
            "prices.'house-7b': unknown key 'outptu' (did you mean 'output'?)",
        ),
        ('[prices."house-7b"]\ninput = 0.2\n', "prices.'house-7b' needs output"),
        (
            '[prices]\n"house-7b" = { input = "cheap", output = 1 }\n',
            "prices.'house-7b'.input must be a number of USD per million tokens, 0 or more, "
            "got 'cheap'",
        ),
        ('prices = "none"\n', "prices must be a table of models"),
        ('[price."house-7b"]\ninput = 1\n', "unknown setting 'price' (did you mean 'prices'?)"),
    ],
)
def test_a_bad_prices_table_is_refused_by_key(config_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(config_path, text)
    assert str(caught.value).startswith(f"{config_path}: {message}")


def test_parleyd_stops_on_a_bad_price_with_one_line(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text('[prices."house-7b"]\ninput = -1\noutput = 1\n')
    env = daemon_env(tmp_path / "home", PARLEY_CONFIG=str(config_path))
    run = subprocess.run(
        PARLEYD, env=env, input="", capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == 2
    assert run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line == (
        f"parleyd: {config_path}: prices.'house-7b'.input must be a number of USD per "
        "million tokens, 0 or more, got -1"
    )
