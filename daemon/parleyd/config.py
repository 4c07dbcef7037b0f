"""Settings, from least to most specific: built-in defaults, the TOML file in
the platformdirs config folder, environment variables, and a session's own
`session/new` `_meta.parley` settings.

API keys come from the environment only and are never written anywhere: not to
the session log, not to the index, not to a log line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

import platformdirs

from parley_protocol.mcp_servers import McpServerConfig
from parley_protocol.names import describe_unknown
from parleyd import mcp_servers
from parleyd.pricing import ModelPrice, PriceError, read_prices
from parleyd.redaction import register_provider_keys

ProviderName = Literal["openai", "openai-responses", "anthropic", "gemini", "ollama", "offline"]
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)


@dataclass(frozen=True)
class ProviderSetup:
    """What a provider is without settings, and where its environment says
    otherwise: the first of `key_variables` that is set holds its API key
    (none: it takes no key), and `url_variable` its base URL. A key its own
    service may do without is not `required`."""

    base_url: str
    model: str
    key_variables: tuple[str, ...] = ()
    url_variable: str | None = None
    key_required: bool = True


_OPENAI_URL = "https://api.openai.com/v1"
PROVIDER_SETUPS: Mapping[ProviderName, ProviderSetup] = {
    "openai": ProviderSetup(_OPENAI_URL, "gpt-4o-mini", ("OPENAI_API_KEY",), "OPENAI_BASE_URL"),
    "openai-responses": ProviderSetup(
        _OPENAI_URL, "gpt-5-mini", ("OPENAI_API_KEY",), "OPENAI_BASE_URL"
    ),
    "anthropic": ProviderSetup(
        "https://api.anthropic.com",
        "claude-sonnet-4-5",
        ("ANTHROPIC_API_KEY",),
        "ANTHROPIC_BASE_URL",
    ),
    "gemini": ProviderSetup(
        "https://generativelanguage.googleapis.com/v1beta",
        "gemini-2.5-flash",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        "GEMINI_BASE_URL",
    ),
    # A local server takes no key; ollama.com does (OLLAMA_API_KEY).
    "ollama": ProviderSetup(
        "http://127.0.0.1:11434", "qwen3", ("OLLAMA_API_KEY",), "OLLAMA_HOST", key_required=False
    ),
    # Its server is the daemon's own (ProviderHub starts it); no URL to set.
    "offline": ProviderSetup("", "parley-scripted"),
}
DEFAULT_CONTEXT_SIZE = 128_000
# What a `session/prompt` to a session whose turn is running gets: refused
# (SessionBusy), or queued to be the next prompt (see session/queue.py).
PromptWhileRunning = Literal["refuse", "queue"]
PROMPT_WHILE_RUNNING: tuple[PromptWhileRunning, ...] = ("refuse", "queue")
# What a turn does when the editor that has its session goes away, in a daemon
# that serves many editors: runs on, for the next editor to attach to, or
# pauses (a single-editor daemon always pauses: it exits with its editor).
WhenEditorLeaves = Literal["continue", "pause"]
WHEN_EDITOR_LEAVES: tuple[WhenEditorLeaves, ...] = ("continue", "pause")
# Which API provider `openai` speaks: Chat Completions, Responses, or the
# one that suits the model and the server (`Settings.speaks_responses`).
OpenAIApi = Literal["auto", "chat", "responses"]
OPENAI_APIS: tuple[OpenAIApi, ...] = get_args(OpenAIApi)
# OpenAI's reasoning models, whose reasoning goes back into the next call only
# through Responses (Chat Completions drops it between tool calls).
_REASONING_FAMILIES = re.compile(r"^(gpt-5|o\d|codex-)", re.IGNORECASE)
PromptCacheTtl = Literal["5m", "1h"]
PROMPT_CACHE_TTLS: tuple[PromptCacheTtl, ...] = get_args(PromptCacheTtl)
# A tool's default in `config.toml`'s `[permissions]` table (see tools/permission.py).
ToolPermission = Literal["ask", "allow", "deny"]
_PERMISSIONS_TABLE = "permissions"
_MCP_SERVERS_TABLE = "mcp_servers"
# Model name -> its prices, over the table Parley ships (prices.toml).
_PRICES_TABLE = "prices"


class ConfigError(Exception):
    """A setting is missing or wrong; the message says what to set and where."""


@dataclass(frozen=True)
class Settings:
    provider: ProviderName = "openai"
    model: str | None = None
    # Set (by a file, the provider's variable, or a session) or else the provider's own.
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    # Every provider's key and base URL the environment holds: what a session
    # that picks another provider than the daemon's uses.
    environment_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    environment_urls: Mapping[str, str] = field(default_factory=dict)
    context_size: int | None = None
    max_output_tokens: int | None = None
    idle_timeout: float = 120.0
    # How long a server that loads the model before it answers (Ollama) may
    # take to begin: Ollama's own limit on a load is 5 minutes.
    model_load_timeout: float = 300.0
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
    # Providers that take a call the session's own cannot ("provider" or
    # "provider:model"), in order, and how many tries each gets.
    fallback: tuple[str, ...] = ()
    model_attempts: int = 4
    # Tokens a model may think with before it answers, where the API takes a
    # budget (Anthropic, Gemini); None: the provider's default.
    thinking_budget: int | None = None
    openai_api: OpenAIApi = "auto"
    # How long Anthropic's prompt cache keeps what a call writes (an hour's
    # writes cost more, and pay off over slower sessions).
    prompt_cache_ttl: PromptCacheTtl = "5m"
    # How fast the built-in scripted model speaks: its delays between deltas
    # are multiplied by this (0: as fast as the socket allows).
    offline_pace: float = 1.0
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
    # config.toml's `[prices]`: what a model costs, before the shipped table says.
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    # config.toml's `[mcp_servers]`: started with every session, beside the client's.
    mcp_servers: tuple[McpServerConfig, ...] = ()
    # How long an MCP server may take to start and list its tools.
    mcp_start_timeout: float = 30.0
    when_editor_leaves: WhenEditorLeaves = "continue"
    # How long a permission question with no editor to ask waits for one to
    # attach before it counts as refused; 0 refuses at once.
    unattended_permission_seconds: float = 900.0

    @property
    def model_name(self) -> str:
        return self.model or PROVIDER_SETUPS[self.provider].model

    @property
    def api(self) -> ProviderName:
        """The API the session's calls speak: the provider's own, but for
        `openai`, whose calls go to Responses (`openai-responses`) as
        `openai_api` says, and left to `auto`, for OpenAI's reasoning models on
        OpenAI's own service (other servers mostly speak Chat Completions alone)."""
        if self.provider != "openai" or self.openai_api == "chat":
            return self.provider
        own_service = self.endpoint.rstrip("/") == _OPENAI_URL
        reasoning = _REASONING_FAMILIES.match(self.model_name) is not None
        if self.openai_api == "responses" or (own_service and reasoning):
            return "openai-responses"
        return "openai"

    def fallbacks(self) -> list[Settings]:
        """These settings for each provider of `fallback`, in order."""
        chain: list[Settings] = []
        for entry in self.fallback:
            name, _, model = entry.partition(":")
            provider = cast(ProviderName, name)
            chain.append(replace(_for_provider(self, provider, None), model=model or None))
        return chain

    @property
    def endpoint(self) -> str:
        """The base URL the provider's calls go to."""
        return self.base_url or PROVIDER_SETUPS[self.provider].base_url

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
        """A provider's own service needs its key; a server of the user's at
        another URL (a local OpenAI-compatible one, a proxy) may not."""
        setup = PROVIDER_SETUPS[self.provider]
        if self.api_key or not setup.key_required or not setup.key_variables:
            return
        if self.endpoint.rstrip("/") != setup.base_url:
            return
        key = " (or ".join(setup.key_variables) + ")" * (len(setup.key_variables) - 1)
        raise ConfigError(
            f"{key} is not set: export it in the environment that starts parleyd, "
            f"or set {setup.url_variable} to a server that needs no key, "
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
    "model_load_timeout": float,
    "max_model_calls_per_turn": int,
    "max_subagent_depth": int,
    "compact_at": float,
    "response_checkpoint_seconds": float,
    "status_interval_seconds": float,
    "prompt_while_running": str,
    "fallback": VariableNames,
    "model_attempts": int,
    "thinking_budget": int,
    "prompt_cache_ttl": str,
    "openai_api": str,
    "offline_pace": float,
    "shell_env_allow": VariableNames,
    "mcp_start_timeout": float,
    "when_editor_leaves": str,
    "unattended_permission_seconds": float,
}
_FILE_KEYS = {name: name for name in _CONVERTERS if name != "api_key"}
_ENV_KEYS = {
    "PARLEY_PROVIDER": "provider",
    "PARLEY_MODEL": "model",
    "PARLEY_SHELL_ENV_ALLOW": "shell_env_allow",
    "PARLEY_PROMPT_WHILE_RUNNING": "prompt_while_running",
    "PARLEY_FALLBACK": "fallback",
    "PARLEY_MODEL_ATTEMPTS": "model_attempts",
    "PARLEY_THINKING_BUDGET": "thinking_budget",
    "PARLEY_PROMPT_CACHE_TTL": "prompt_cache_ttl",
    "PARLEY_OPENAI_API": "openai_api",
    "PARLEY_MODEL_LOAD_TIMEOUT": "model_load_timeout",
    "PARLEY_OFFLINE_PACE": "offline_pace",
    "PARLEY_MAX_SUBAGENT_DEPTH": "max_subagent_depth",
    "PARLEY_COMPACT_AT": "compact_at",
    "PARLEY_RESPONSE_CHECKPOINT_SECONDS": "response_checkpoint_seconds",
    "PARLEY_STATUS_INTERVAL_SECONDS": "status_interval_seconds",
    "PARLEY_MCP_START_TIMEOUT": "mcp_start_timeout",
    "PARLEY_WHEN_EDITOR_LEAVES": "when_editor_leaves",
    "PARLEY_UNATTENDED_PERMISSION_SECONDS": "unattended_permission_seconds",
}
# The settings that take one of a few words.
_CHOICES: dict[str, tuple[str, ...]] = {
    "provider": PROVIDERS,
    "prompt_while_running": PROMPT_WHILE_RUNNING,
    "prompt_cache_ttl": PROMPT_CACHE_TTLS,
    "openai_api": OPENAI_APIS,
    "when_editor_leaves": WHEN_EDITOR_LEAVES,
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
    for entry in changes.get("fallback", ()):
        if entry.partition(":")[0] not in PROVIDERS:
            raise ConfigError(
                f"{origin}: unknown fallback provider {entry!r}; "
                f"choose among {', '.join(PROVIDERS)} (optionally provider:model)"
            )
    if changes.get("model_attempts", 1) < 1:
        raise ConfigError(f"{origin}: model_attempts must be at least 1")
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
            raise ConfigError(
                f"{path}: keys do not belong in files; set the provider's variable "
                "(OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY) instead"
            )
        tables = {_PERMISSIONS_TABLE: "", _PRICES_TABLE: "", _MCP_SERVERS_TABLE: ""}
        _refuse_unknown(document, {**_FILE_KEYS, **tables}, str(path))
        settings = _apply(settings, document, _FILE_KEYS, str(path))
        if _PERMISSIONS_TABLE in document:
            permissions = _tool_permissions(document[_PERMISSIONS_TABLE], str(path))
            settings = replace(settings, tool_permissions=permissions)
        if _PRICES_TABLE in document:
            try:
                prices = read_prices(document[_PRICES_TABLE], _PRICES_TABLE)
            except PriceError as exc:
                raise ConfigError(f"{path}: {exc}") from None
            settings = replace(settings, prices=prices)
        if _MCP_SERVERS_TABLE in document:
            try:
                servers = mcp_servers.from_config(document[_MCP_SERVERS_TABLE], str(path))
            except mcp_servers.ServerListError as exc:
                raise ConfigError(str(exc)) from None
            settings = replace(settings, mcp_servers=servers)
    register_provider_keys(environ)
    settings = _apply(settings, environ, _ENV_KEYS, "environment")
    keys: dict[str, str] = {}
    urls: dict[str, str] = {}
    for name, setup in PROVIDER_SETUPS.items():
        if key := next(filter(None, map(environ.get, setup.key_variables)), None):
            keys[name] = key
        if setup.url_variable and (url := environ.get(setup.url_variable)):
            urls[name] = url
    settings = replace(settings, environment_keys=keys, environment_urls=urls)
    return _for_provider(settings, settings.provider, settings.base_url)


def _for_provider(settings: Settings, provider: ProviderName, base_url: str | None) -> Settings:
    """`settings` for `provider`: its key, and its URL from the environment,
    which beats `base_url` (from a file) as the environment beats files."""
    return replace(
        settings,
        provider=provider,
        api_key=settings.environment_keys.get(provider),
        base_url=settings.environment_urls.get(provider, base_url),
    )


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
    chosen = _apply(settings, overrides, _SESSION_KEYS, "_meta.parley")
    if chosen.provider != settings.provider:
        # Another provider: its own key and URL, not the daemon's provider's.
        chosen = _for_provider(chosen, chosen.provider, overrides.get("baseUrl"))
    return chosen
