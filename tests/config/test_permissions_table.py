"""`config.toml`'s `[permissions]` table: per-tool defaults, refused by name
when a tool is misspelt or a value is not one of ask, allow and deny."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from parleyd.config import ConfigError, Settings, load_settings
from parleyd.tools.registry import refuse_unknown_tools
from tests.support.daemon import PARLEYD, daemon_env


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


def _load(config_path: Path, text: str) -> Settings:
    """The settings as parleyd takes them at start-up, its tool names checked."""
    config_path.write_text(text)
    settings = load_settings({"PARLEY_CONFIG": str(config_path)})
    refuse_unknown_tools(settings.tool_permissions, str(config_path))
    return settings


def test_each_tool_may_ask_run_or_be_denied(config_path: Path) -> None:
    settings = _load(
        config_path,
        'model = "m"\n[permissions]\nread_file = "ask"\nrun_shell = "deny"\nwrite_file = "allow"\n',
    )
    assert settings.tool_permissions == {
        "read_file": "ask",
        "run_shell": "deny",
        "write_file": "allow",
    }
    assert settings.model == "m"
    assert Settings().tool_permissions == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[permissions]\nrun_shel = "deny"\n',
            "[permissions] names unknown tool 'run_shel' (did you mean 'run_shell'?); "
            "the tools are read_file, list_directory, search_text, write_file, edit_file, glob, "
            "update_plan, "
            "run_shell, "
            "subagent",
        ),
        (
            '[permissions]\nfly = "ask"\nreadfile = "ask"\n',
            "[permissions] names unknown tools 'fly', 'readfile' (did you mean 'read_file'?); "
            "the tools are read_file, list_directory, search_text, write_file, edit_file, glob, "
            "update_plan, "
            "run_shell, "
            "subagent",
        ),
        (
            '[permissions]\nrun_shell = "never"\n',
            'permissions.run_shell must be one of "ask", "allow", "deny", got \'never\'',
        ),
        (
            "[permissions]\nrun_shell = true\n",
            'permissions.run_shell must be one of "ask", "allow", "deny", got True',
        ),
        (
            'permissions = "deny"\n',
            'permissions must be a table of tool names, e.g. run_shell = "ask"',
        ),
        ('[permisions]\nrun_shell = "ask"\n', "unknown setting 'permisions' (did you mean"),
    ],
)
def test_a_bad_permissions_table_is_refused_by_name(
    config_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(config_path, text)
    assert str(caught.value).startswith(f"{config_path}: {message}")


def test_parleyd_stops_on_a_misspelt_tool_with_one_line(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text('[permissions]\nrun_shel = "deny"\n')
    env = daemon_env(tmp_path / "home", PARLEY_CONFIG=str(config_path))
    run = subprocess.run(
        PARLEYD, env=env, input="", capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == 2
    assert run.stdout == ""
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"parleyd: {config_path}: [permissions] names unknown tool 'run_shel'")
