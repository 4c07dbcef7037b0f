"""What a client of `parleyd --listen tcp://` or `ws://` reads before it connects."""

from __future__ import annotations

import stat
from pathlib import Path


def token_in(file: Path) -> str:
    """The listener's token, from a file only its owner may read, in a folder
    only its owner may enter."""
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    return file.read_text().strip()
