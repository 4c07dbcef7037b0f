"""Settings, from least to most specific: built-in defaults, the TOML file in
the platformdirs config folder, environment variables, and a session's own
`session/new` `_meta.parley` settings.

API keys come from the environment only and are never written anywhere: not to
the session log, not to the index, not to a log line.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

import platformdirs

from parley_protocol.names import describe_unknown
from parleyd.redaction import register_provider_keys

ProviderName = Literal["openai", "offline"]
PROVIDERS: tuple[ProviderName, ...] = ("openai", "offline")
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = {"openai": "gpt-4o-mini", "offline": "parley-scripted"}
DEFAULT_CONTEXT_SIZE = 128_000
# What a `session/prompt` to a session whose turn is running gets: refused
# (SessionBusy), or queued to be the next prompt (see session/queue.py).
PromptWhileRunning = Literal["refuse", "queue"]
PROMPT_WHILE_RUNNING: tuple[PromptWhileRunning, ...] = ("refuse", "queue")
# A tool's default in `config.toml`'s `[permissions]` table (see tools/permission.py).
ToolPermission = Literal["ask", "allow", "deny"]
_PERMISSIONS_TABLE = "permissions"


class ConfigError(Exception):
    """A setting is missing or wrong; the message says what to set and where."""


@dataclass(frozen=True)
class Settings:
    provider: ProviderName = "openai"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    context_size: int | None = None
    max_output_tokens: int | None = None
    idle_timeout: float = 120.0
    max_model_calls_per_turn: int = 50
    # How deep sub-agents may nest: the root conversation is depth 0, and a
    # conversation at this depth gets no `subagent` tool.
    max_subagent_depth: int = 3
    # The share of the context window at which a conversation's older history
    # is summarised before the next model call.
    compact_at: float = 0.8
    # How often a response still streaming is written to the log: the most of
    # it a daemon killed mid-response can lose.
    response_checkpoint_seconds: float = 1.0
    # After this long without a word from a model, and as often while it stays
    # silent, the client is told the daemon waits for it; 0 tells nothing.
    status_interval_seconds: float = 5.0
    # A `session/prompt` while a turn runs: refused, or answered once the
    # turns queued before it and its own have run.
    prompt_while_running: PromptWhileRunning = "refuse"
    # Secret-looking variables that commands the model runs may still inherit.
    shell_env_allow: tuple[str, ...] = ()
    # Tool name -> whether its calls ask, run or are refused, before a session's
    # mode and "always" answers have their say.
    tool_permissions: Mapping[str, ToolPermission] = field(default_factory=dict)

    @property
    def model_name(self) -> str:
        return self.model or DEFAULT_MODEL[self.provider]

    def public(self) -> dict[str, Any]:
        """What may be persisted with a session: everything but the key."""
        return {
            "provider": self.provider,
            "model": self.model_name,
            "baseUrl": self.base_url,
            "contextSize": self.context_size,
            "maxOutputTokens": self.max_output_tokens,
        }

    def require_credentials(self) -> None:
        """OpenAI itself needs a key; local OpenAI-compatible servers usually do not."""
        if self.provider != "openai" or self.api_key:
            return
        if (self.base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/") == OPENAI_DEFAULT_BASE_URL:
            raise ConfigError(
                "OPENAI_API_KEY is not set: export it in the environment that starts parleyd, "
                "or set OPENAI_BASE_URL to an OpenAI-compatible server that needs no key, "
                "or use PARLEY_PROVIDER=offline for the built-in scripted model"
            )


def data_home() -> Path:
    """Where sessions live: PARLEY_HOME, else the platform's user data folder."""
    override = os.environ.get("PARLEY_HOME")
    return Path(override).expanduser() if override else Path(platformdirs.user_data_dir("parley"))


def config_file(environ: Mapping[str, str] | None = None) -> Path:
    override = (os.environ if environ is None else environ).get("PARLEY_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("parley")) / "config.toml"


class VariableNames(tuple[str, ...]):
    """Names of environment variables: a TOML array of strings, or comma-separated
    text (the environment's way to hold a list)."""

    def __new__(cls, value: str | list[str]) -> VariableNames:
        names = value.split(",") if isinstance(value, str) else value
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise TypeError(f"not a list of names: {value!r}")
        return super().__new__(cls, (name.strip() for name in names if name.strip()))


# Each setting's type, for values that arrive as text (environment) or loosely
# typed (TOML, JSON).
_CONVERTERS: dict[str, type] = {
    "provider": str,
    "model": str,
    "base_url": str,
    "api_key": str,
    "context_size": int,
    "max_output_tokens": int,
    "idle_timeout": float,
    "max_model_calls_per_turn": int,
    "max_subagent_depth": int,
    "compact_at": float,
    "response_checkpoint_seconds": float,
    "status_interval_seconds": float,
    "prompt_while_running": str,
    "shell_env_allow": VariableNames,
}
_FILE_KEYS = {name: name for name in _CONVERTERS if name != "api_key"}
_ENV_KEYS = {
    "PARLEY_PROVIDER": "provider",
    "PARLEY_MODEL": "model",
    "OPENAI_BASE_URL": "base_url",
    "OPENAI_API_KEY": "api_key",
    "PARLEY_SHELL_ENV_ALLOW": "shell_env_allow",
    "PARLEY_PROMPT_WHILE_RUNNING": "prompt_while_running",
    "PARLEY_MAX_SUBAGENT_DEPTH": "max_subagent_depth",
    "PARLEY_COMPACT_AT": "compact_at",
    "PARLEY_RESPONSE_CHECKPOINT_SECONDS": "response_checkpoint_seconds",
    "PARLEY_STATUS_INTERVAL_SECONDS": "status_interval_seconds",
}
# The settings that take one of a few words.
_CHOICES: dict[str, tuple[str, ...]] = {
    "provider": PROVIDERS,
    "prompt_while_running": PROMPT_WHILE_RUNNING,
}
# session/new `_meta.parley` keys (camelCase, as on the wire).
_SESSION_KEYS = {
    "provider": "provider",
    "model": "model",
    "baseUrl": "base_url",
    "contextSize": "context_size",
    "maxOutputTokens": "max_output_tokens",
}


def _refuse_unknown(values: Mapping[str, Any], keys: Mapping[str, str], origin: str) -> None:
    """A misspelt setting that silently does nothing is worse than an error naming it."""
    unknown = [key for key in values if key not in keys]
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(f"{origin}: unknown setting{plural} {describe_unknown(unknown, keys)}")


def _apply(
    settings: Settings, values: Mapping[str, Any], keys: Mapping[str, str], origin: str
) -> Settings:
    changes: dict[str, Any] = {}
    for key, attribute in keys.items():
        value = values.get(key)
        if value is None or value == "":
            continue
        convert = _CONVERTERS[attribute]
        # bool is an int to Python, and containers convert to nonsense strings.
        # A fraction for a whole number would be silently truncated by int().
        fraction = convert is int and isinstance(value, float) and not value.is_integer()
        if (isinstance(value, bool | dict | list) and convert is not VariableNames) or fraction:
            raise ConfigError(f"{origin}: {key} must be a {convert.__name__}, got {value!r}")
        try:
            changes[attribute] = convert(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{origin}: {key} must be a {convert.__name__}, got {value!r}"
            ) from None
    for attribute, choices in _CHOICES.items():
        chosen = changes.get(attribute)
        if chosen is not None and chosen not in choices:
            raise ConfigError(
                f"{origin}: unknown {attribute} {chosen!r}; choose one of {', '.join(choices)}"
            )
    return replace(settings, **changes)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Defaults <- config file <- environment."""
    environ = os.environ if environ is None else environ
    settings = Settings()
    path = config_file(environ)
    if path.exists():
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        if "api_key" in document:
            raise ConfigError(f"{path}: keys do not belong in files; set OPENAI_API_KEY instead")
        _refuse_unknown(document, {**_FILE_KEYS, _PERMISSIONS_TABLE: ""}, str(path))
        settings = _apply(settings, document, _FILE_KEYS, str(path))
        if _PERMISSIONS_TABLE in document:
            permissions = _tool_permissions(document[_PERMISSIONS_TABLE], str(path))
            settings = replace(settings, tool_permissions=permissions)
    register_provider_keys(environ)
    return _apply(settings, environ, _ENV_KEYS, "environment")


def _tool_permissions(table: Any, origin: str) -> dict[str, ToolPermission]:
    """The `[permissions]` table: tool names, each `ask`, `allow` or `deny`
    (the names are the tools' to check: `tools.registry.refuse_unknown_tools`)."""
    if not isinstance(table, dict):
        raise ConfigError(
            f'{origin}: permissions must be a table of tool names, e.g. run_shell = "ask"'
        )
    return {
        name: _tool_permission(value, f"{origin}: permissions.{name}")
        for name, value in table.items()
    }


def _tool_permission(value: Any, where: str) -> ToolPermission:
    choices = get_args(ToolPermission)
    if value in choices:
        return cast(ToolPermission, value)
    listed = ", ".join(f'"{choice}"' for choice in choices)
    raise ConfigError(f"{where} must be one of {listed}, got {value!r}")


def with_session_overrides(settings: Settings, overrides: Mapping[str, Any] | None) -> Settings:
    """Apply a session's `_meta.parley` settings on top of the daemon's."""
    if not overrides:
        return settings
    _refuse_unknown(overrides, _SESSION_KEYS, "_meta.parley")
    return _apply(settings, overrides, _SESSION_KEYS, "_meta.parley")
