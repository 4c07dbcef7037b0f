"""The commands this installation's console scripts are run by: `parleyd` for the
client to spawn, `parley` for a person to type into a plain shell."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def console_script(name: str) -> Path | None:
    """The console script `name` beside the running interpreter (a venv's bin/), if any."""
    script = Path(sys.executable).with_name(name)
    return script if script.is_file() and os.access(script, os.X_OK) else None


def daemon_command() -> list[str]:
    """`parleyd --standalone` next to the running interpreter (a daemon of this
    client's own, not the editors' shared one), else the same entry point through
    this interpreter."""
    script = console_script("parleyd")
    if script is not None:
        return [str(script), "--standalone"]
    return [sys.executable, "-c", "from parleyd.main import main; main()"]


def shared_daemon_command() -> list[str]:
    """`parleyd`, the shim that connects to the user's shared daemon (starting
    it if none runs), as an editor runs it."""
    script = console_script("parleyd")
    if script is not None:
        return [str(script)]
    return [sys.executable, "-m", "parleyd.shim"]


def parley_command() -> list[str]:
    """How to run this very `parley` from a plain shell: by its name when that finds
    this script on PATH (an activated venv), else by its absolute path, since
    `.venv/bin` is not on a plain shell's PATH."""
    script = console_script("parley")
    if script is None:
        return [sys.executable, "-m", "parley_client"]
    found = shutil.which("parley")
    if found is not None and Path(found).resolve() == script.resolve():
        return ["parley"]
    return [str(script.absolute())]
