"""Each provider's key and URL come from its own variables, for the daemon and for a session."""

from __future__ import annotations

from pathlib import Path

import pytest

from parleyd.config import (
    PROVIDER_SETUPS,
    ConfigError,
    Settings,
    load_settings,
    with_session_overrides,
)

ANTHROPIC_KEY = "sk-ant-test-0123456789"
OPENAI_KEY = "sk-openai-test-0123456789"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


def test_a_provider_reads_its_own_key_and_url(config_path: Path) -> None:
    settings = load_settings(
        {
            "PARLEY_CONFIG": str(config_path),
            "PARLEY_PROVIDER": "anthropic",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
            "OPENAI_API_KEY": OPENAI_KEY,
        }
    )
    assert (settings.api_key, settings.endpoint) == (ANTHROPIC_KEY, "http://127.0.0.1:9")
    assert settings.model_name == PROVIDER_SETUPS["anthropic"].model


def test_the_environment_url_beats_the_file_as_the_environment_beats_files(
    config_path: Path,
) -> None:
    config_path.write_text('provider = "ollama"\nbase_url = "http://127.0.0.1:1"\n')
    from_file = load_settings({"PARLEY_CONFIG": str(config_path)})
    assert from_file.endpoint == "http://127.0.0.1:1"
    from_env = load_settings(
        {"PARLEY_CONFIG": str(config_path), "OLLAMA_HOST": "http://127.0.0.1:2"}
    )
    assert from_env.endpoint == "http://127.0.0.1:2"


def test_gemini_takes_the_google_key_when_its_own_is_not_set(config_path: Path) -> None:
    environ = {"PARLEY_CONFIG": str(config_path), "PARLEY_PROVIDER": "gemini"}
    assert load_settings({**environ, "GOOGLE_API_KEY": "g-key"}).api_key == "g-key"
    both = load_settings({**environ, "GOOGLE_API_KEY": "g-key", "GEMINI_API_KEY": "gem-key"})
    assert both.api_key == "gem-key"


@pytest.mark.parametrize(
    ("provider", "named"),
    [
        ("openai", "OPENAI_API_KEY"),
        ("openai-responses", "OPENAI_API_KEY"),
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("gemini", r"GEMINI_API_KEY \(or GOOGLE_API_KEY\)"),
    ],
)
def test_a_missing_key_is_one_line_naming_what_to_set(provider: str, named: str) -> None:
    settings = load_settings({"PARLEY_CONFIG": "/nonexistent", "PARLEY_PROVIDER": provider})
    with pytest.raises(ConfigError, match=rf"^{named} is not set: export it") as caught:
        settings.require_credentials()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("provider", ["ollama", "offline"])
def test_providers_that_take_no_key_need_none(provider: str) -> None:
    load_settings(
        {"PARLEY_CONFIG": "/nonexistent", "PARLEY_PROVIDER": provider}
    ).require_credentials()


def test_a_session_that_picks_another_provider_gets_that_providers_key_and_url() -> None:
    daemon = load_settings(
        {
            "PARLEY_CONFIG": "/nonexistent",
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": "http://127.0.0.1:3/v1",
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
        }
    )
    session = with_session_overrides(daemon, {"provider": "anthropic"})
    assert (session.api_key, session.endpoint) == (ANTHROPIC_KEY, "https://api.anthropic.com")
    pointed = with_session_overrides(daemon, {"provider": "anthropic", "baseUrl": "http://h:4"})
    assert pointed.endpoint == "http://h:4"
    # Its own provider again: the daemon's settings, unchanged.
    assert with_session_overrides(daemon, {"provider": "openai"}) == daemon


def test_keys_stay_out_of_what_a_session_persists_and_of_repr() -> None:
    settings = Settings(
        provider="anthropic", api_key=ANTHROPIC_KEY, environment_keys={"anthropic": ANTHROPIC_KEY}
    )
    assert ANTHROPIC_KEY not in repr(settings)
    assert ANTHROPIC_KEY not in repr(settings.public())


@pytest.mark.parametrize(
    ("model", "base_url", "openai_api", "api"),
    [
        ("gpt-5-mini", None, "auto", "openai-responses"),  # OpenAI's own, a reasoning model
        ("o4-mini", "https://api.openai.com/v1/", "auto", "openai-responses"),
        ("codex-mini-latest", None, "auto", "openai-responses"),
        ("gpt-4o-mini", None, "auto", "openai"),  # no reasoning to keep
        ("gpt-5-mini", "http://127.0.0.1:8000/v1", "auto", "openai"),  # a compatible server
        ("gpt-5-mini", None, "chat", "openai"),
        ("qwen3", "http://127.0.0.1:8000/v1", "responses", "openai-responses"),
    ],
)
def test_provider_openai_calls_the_api_that_suits_the_model_and_server_unless_told(
    model: str, base_url: str | None, openai_api: str, api: str, config_path: Path
) -> None:
    environ = {
        "PARLEY_CONFIG": str(config_path),
        "PARLEY_MODEL": model,
        "PARLEY_OPENAI_API": openai_api,
        "OPENAI_API_KEY": OPENAI_KEY,
    }
    if base_url is not None:
        environ["OPENAI_BASE_URL"] = base_url
    assert load_settings(environ).api == api


def test_the_other_providers_speak_their_own_api_whatever_openai_api_says() -> None:
    for provider in ("anthropic", "openai-responses", "offline"):
        assert Settings(provider=provider, openai_api="chat").api == provider  # type: ignore[arg-type]


def test_an_unknown_openai_api_is_refused_with_the_choices(config_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown openai_api 'rest'; choose one of auto, chat"):
        load_settings({"PARLEY_CONFIG": str(config_path), "PARLEY_OPENAI_API": "rest"})
