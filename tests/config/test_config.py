"""Settings layers (defaults <- file <- environment <- session), their errors,
and keeping the API key out of everything that gets written or shown."""

from __future__ import annotations

import subprocess
from pathlib import Path

import platformdirs
import pytest

from parley_protocol.jsonrpc import ErrorCode
from parleyd.config import (
    ConfigError,
    Settings,
    data_home,
    load_settings,
    with_session_overrides,
)
from tests.support.daemon import PARLEYD, daemon_env, offline_env
from tests.support.raw_daemon import raw_daemon

SECRET = "sk-test-do-not-print"


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """Where the tests' PARLEY_CONFIG points; not written until a test does."""
    return tmp_path / "config.toml"


def test_defaults_without_file_or_environment(config_path: Path) -> None:
    settings = load_settings({"PARLEY_CONFIG": str(config_path)})
    assert settings == Settings()
    assert (settings.provider, settings.model_name) == ("openai", "gpt-4o-mini")
    assert (settings.base_url, settings.api_key, settings.context_size) == (None, None, None)
    assert settings.idle_timeout == 120.0
    assert settings.max_model_calls_per_turn == 50
    assert Settings(provider="offline").model_name == "parley-scripted"


def test_file_then_environment_then_session(config_path: Path) -> None:
    config_path.write_text(
        'provider = "offline"\n'
        'model = "file-model"\n'
        "context_size = 1000\n"
        "max_output_tokens = 200\n"
        "idle_timeout = 5\n"
        "max_model_calls_per_turn = 3\n"
    )
    from_file = load_settings({"PARLEY_CONFIG": str(config_path)})
    assert from_file == Settings(
        provider="offline",
        model="file-model",
        context_size=1000,
        max_output_tokens=200,
        idle_timeout=5.0,
        max_model_calls_per_turn=3,
    )

    environ = {
        "PARLEY_CONFIG": str(config_path),
        "PARLEY_PROVIDER": "openai",
        "PARLEY_MODEL": "env-model",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "OPENAI_API_KEY": SECRET,
    }
    from_env = load_settings(environ)
    assert (from_env.provider, from_env.model, from_env.base_url, from_env.api_key) == (
        "openai",
        "env-model",
        "http://127.0.0.1:9/v1",
        SECRET,
    )
    assert (from_env.context_size, from_env.idle_timeout) == (1000, 5.0)

    session = with_session_overrides(
        from_env, {"model": "session-model", "contextSize": 2000, "baseUrl": None}
    )
    assert (session.model, session.context_size) == ("session-model", 2000)
    # An override given as null leaves the daemon's value alone.
    assert (session.base_url, session.api_key) == ("http://127.0.0.1:9/v1", SECRET)
    assert with_session_overrides(from_env, None) is from_env
    assert with_session_overrides(from_env, {}) is from_env


def test_empty_environment_values_do_not_override(config_path: Path) -> None:
    config_path.write_text('model = "file-model"\n')
    assert (
        load_settings(
            {"PARLEY_CONFIG": str(config_path), "PARLEY_MODEL": "", "PARLEY_PROVIDER": ""}
        ).model
        == "file-model"
    )


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('context_size = "lots"', "context_size"),
        ("idle_timeout = true", "idle_timeout"),
        ('model = ["a", "b"]', "model"),
        ("max_output_tokens = { n = 1 }", "max_output_tokens"),
    ],
)
def test_bad_type_in_the_file_names_key_and_file(config_path: Path, line: str, key: str) -> None:
    config_path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=key) as caught:
        load_settings({"PARLEY_CONFIG": str(config_path)})
    assert str(config_path) in str(caught.value)


def test_a_fraction_for_an_integer_setting_is_refused(config_path: Path) -> None:
    config_path.write_text("context_size = 1.5\n")
    with pytest.raises(ConfigError, match="context_size"):
        load_settings({"PARLEY_CONFIG": str(config_path)})


def test_unreadable_toml_is_a_config_error(config_path: Path) -> None:
    config_path.write_text("model = \n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"PARLEY_CONFIG": str(config_path)})


def test_bad_value_in_the_environment_names_key_and_origin(config_path: Path) -> None:
    # Every environment setting is text, so the one that can be wrong is the provider.
    with pytest.raises(ConfigError, match=r"^environment: unknown provider 'claude'"):
        load_settings({"PARLEY_CONFIG": str(config_path), "PARLEY_PROVIDER": "claude"})


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"contextSize": "big"}, "contextSize"),
        ({"maxOutputTokens": True}, "maxOutputTokens"),
        ({"model": {"name": "x"}}, "model"),
    ],
)
def test_bad_type_in_session_overrides_names_key_and_origin(
    overrides: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^_meta\.parley: {key} must be"):
        with_session_overrides(Settings(), overrides)


def test_unknown_session_settings_are_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        with_session_overrides(Settings(), {"temperature": 0.2, "modle": "m", "model": "m"})
    assert str(caught.value) == (
        "_meta.parley: unknown settings 'temperature', 'modle' (did you mean 'model'?)"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('modle = "m"', "unknown setting 'modle' (did you mean 'model'?)"),
        ("idle_timout = 5", "unknown setting 'idle_timout' (did you mean 'idle_timeout'?)"),
        # Spelt as on the wire: the file's own spelling is suggested.
        (
            "maxOutputTokens = 5",
            "unknown setting 'maxOutputTokens' (did you mean 'max_output_tokens'?)",
        ),
        ("temperature = 0.2", "unknown setting 'temperature'"),
    ],
)
def test_unknown_file_setting_is_refused_with_the_closest_one(
    config_path: Path, line: str, message: str
) -> None:
    config_path.write_text('model = "m"\n' + line + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"PARLEY_CONFIG": str(config_path)})
    assert str(caught.value) == f"{config_path}: {message}"


def test_every_unknown_file_setting_is_named_in_one_line(config_path: Path) -> None:
    config_path.write_text('modle = "m"\nidle_timout = 5\nprovider = "offline"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings({"PARLEY_CONFIG": str(config_path)})
    assert str(caught.value) == (
        f"{config_path}: unknown settings 'modle' (did you mean 'model'?), "
        "'idle_timout' (did you mean 'idle_timeout'?)"
    )


def test_parleyd_stops_on_a_misspelt_setting_with_one_line(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text('provider = "offline"\nmodle = "m"\n')
    env = daemon_env(tmp_path / "home", PARLEY_CONFIG=str(config_path))
    run = subprocess.run(
        PARLEYD, env=env, input="", capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"parleyd: {config_path}: unknown setting 'modle' (did you mean 'model'?)"
    ]


async def test_a_misspelt_session_setting_is_refused_with_the_closest_one(tmp_path: Path) -> None:
    async with raw_daemon(offline_env(tmp_path / "home")) as daemon:
        await daemon.initialize()
        params = {"cwd": str(tmp_path), "mcpServers": [], "_meta": {"parley": {"modle": "m"}}}
        answer = await daemon.request("session/new", params)
        assert answer["error"]["code"] == ErrorCode.INVALID_PARAMS
        assert (
            "unknown field `modle` (did you mean `model`?) - at `_meta.parley`"
            in (answer["error"]["message"])
        )
        # The daemon is still there for a corrected request.
        params["_meta"] = {"parley": {"model": "m"}}
        assert "sessionId" in (await daemon.request("session/new", params))["result"]


def test_unknown_provider_in_the_file_is_refused_with_the_choices(config_path: Path) -> None:
    config_path.write_text('provider = "llama"\n')
    with pytest.raises(
        ConfigError,
        match=r"unknown provider 'llama'; choose one of openai, openai-responses, anthropic, "
        r"gemini, ollama, offline",
    ):
        load_settings({"PARLEY_CONFIG": str(config_path)})


def test_unknown_provider_in_session_overrides_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^_meta\.parley: unknown provider 'bard'"):
        with_session_overrides(Settings(), {"provider": "bard"})


def test_api_key_in_the_file_is_refused_without_echoing_it(config_path: Path) -> None:
    config_path.write_text(f'api_key = "{SECRET}"\n')
    with pytest.raises(ConfigError, match="OPENAI_API_KEY") as caught:
        load_settings({"PARLEY_CONFIG": str(config_path)})
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "base_url", [None, "https://api.openai.com/v1", "https://api.openai.com/v1/"]
)
def test_openai_without_key_on_its_own_url_needs_credentials(base_url: str | None) -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        Settings(provider="openai", base_url=base_url).require_credentials()


@pytest.mark.parametrize(
    "settings",
    [
        Settings(provider="openai", api_key=SECRET),
        Settings(provider="openai", base_url="http://127.0.0.1:11434/v1"),
        Settings(provider="offline"),
    ],
    ids=["key", "custom-url", "offline"],
)
def test_credentials_not_needed(settings: Settings) -> None:
    settings.require_credentials()


def test_the_key_never_shows(config_path: Path) -> None:
    settings = load_settings(
        {"PARLEY_CONFIG": str(config_path), "OPENAI_API_KEY": SECRET, "PARLEY_MODEL": "m"}
    )
    public = settings.public()
    assert SECRET not in repr(public)
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert public == {
        "provider": "openai",
        "model": "m",
        "baseUrl": None,
        "contextSize": None,
        "maxOutputTokens": None,
    }
    # A loaded session re-applies what it stored: public() speaks the override keys.
    assert with_session_overrides(Settings(provider="offline"), public) == Settings(model="m")


def test_data_home_honours_parley_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PARLEY_HOME", "~/elsewhere")
    assert data_home() == tmp_path / "elsewhere"
    monkeypatch.delenv("PARLEY_HOME")
    assert data_home() == Path(platformdirs.user_data_dir("parley"))
