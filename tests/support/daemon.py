"""Spawning the real daemon for end-to-end tests, isolated from the machine's
own Parley config, data and keys."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

# The daemon exactly as an editor starts it, with the test run's interpreter.
PARLEYD = (sys.executable, "-m", "parleyd.main")


# The scripted model at a quarter of its delays: its pace is for a person
# watching, and a test still sees a stream long enough to cancel or pause in
# the middle of. A test that needs the model's own pace sets PARLEY_OFFLINE_PACE.
TEST_PACE = "0.25"
# Parley's own settings and every provider's: a test must not reach a real one.
_INHERITED_NOT = ("PARLEY_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_API_KEY", "OLLAMA_")


def daemon_env(home: Path, **settings: str) -> dict[str, str]:
    """An environment for parleyd: data in `home`, no config file, no inherited
    provider settings or keys; `settings` adds PARLEY_* and provider variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_INHERITED_NOT)}
    env["PARLEY_HOME"] = str(home)
    env["PARLEY_CONFIG"] = str(home / "no-config.toml")
    env["PARLEY_OFFLINE_PACE"] = TEST_PACE
    env.update(settings)
    return env


def offline_env(home: Path) -> dict[str, str]:
    return daemon_env(home, PARLEY_PROVIDER="offline")


def replay_env(home: Path, base_url: str, model: str = "gpt-4o-mini") -> Mapping[str, str]:
    """parleyd pointed at a loopback replay server speaking OpenAI Chat Completions."""
    return daemon_env(
        home,
        PARLEY_PROVIDER="openai",
        OPENAI_BASE_URL=f"{base_url}/v1",
        OPENAI_API_KEY="sk-test-not-a-real-key",
        PARLEY_MODEL=model,
    )
