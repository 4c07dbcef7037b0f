"""Another process holding a lock on one of the store's files, for as long as a
test needs it held."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held_by_another_process(script: str, path: Path) -> Iterator[subprocess.Popen[str]]:
    """Run `script` (given `path` as argv[1]) until it prints "locked"; it holds
    the lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", script, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.communicate(timeout=10)
