from __future__ import annotations

from pathlib import Path

import pytest

from parleyd.config import ConfigError, load_settings
from parleyd.tools.environment import child_environment, looks_secret


@pytest.mark.parametrize(
    "name",
    [
        "OPENAI_API_KEY",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN",
        "NPM_AUTH_TOKEN",
        "NPM_CONFIG__AUTH",
        "SSH_AUTH_SOCK",
        "DB_PASSWORD",
        "PGPASSWORD",
        "MYSQL_ROOT_PASSWD",
        "GPG_PASSPHRASE",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SENDGRID_APIKEY",
        "CLIENT_SECRETS",
        "HF_TOKEN2",
        "github_token",
        "githubToken",
        "apiKey",
    ],
)
def test_names_that_say_they_hold_a_credential(name: str) -> None:
    assert looks_secret(name)


@pytest.mark.parametrize(
    "name",
    [
        "KEYBOARD_LAYOUT",
        "MONKEY",
        "GIT_AUTHOR_NAME",
        "AUTHOR",
        "TOKENIZERS_PARALLELISM",
        "PASSAGE",
        "PWD",
        "OLDPWD",
        "PATH",
        "HOME",
        "LANG",
        "XAUTHORITY",
        "SECRETARY",
    ],
)
def test_ordinary_names(name: str) -> None:
    assert not looks_secret(name)


def test_the_child_environment_keeps_ordinary_and_allowed_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-test")
    monkeypatch.setenv("NPM_AUTH_TOKEN", "npm-test")
    monkeypatch.setenv("KEYBOARD_LAYOUT", "dvorak")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    environment = child_environment(allow=["GITHUB_TOKEN", "ANTHROPIC_API_KEY"])
    assert environment["GITHUB_TOKEN"] == "ghp-test"
    assert environment["KEYBOARD_LAYOUT"] == "dvorak"
    assert "NPM_AUTH_TOKEN" not in environment
    # A provider key the daemon reads never passes, allowed or not.
    assert "ANTHROPIC_API_KEY" not in environment


def test_the_allow_list_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('shell_env_allow = ["GITHUB_TOKEN", "SSH_AUTH_SOCK"]\n')
    from_file = load_settings({"PARLEY_CONFIG": str(config)})
    assert from_file.shell_env_allow == ("GITHUB_TOKEN", "SSH_AUTH_SOCK")
    from_environment = load_settings(
        {"PARLEY_CONFIG": str(config), "PARLEY_SHELL_ENV_ALLOW": "NPM_TOKEN, HF_TOKEN,"}
    )
    assert from_environment.shell_env_allow == ("NPM_TOKEN", "HF_TOKEN")


@pytest.mark.parametrize("value", ["5", "true", "[1, 2]", '{ name = "GITHUB_TOKEN" }'])
def test_an_allow_list_that_is_not_names_is_refused(tmp_path: Path, value: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f"shell_env_allow = {value}\n")
    with pytest.raises(ConfigError, match="shell_env_allow"):
        load_settings({"PARLEY_CONFIG": str(config)})
