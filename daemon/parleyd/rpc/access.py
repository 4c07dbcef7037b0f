"""The token that admits a client to a connection any local process could open.

A TCP port on 127.0.0.1 is open to every process of every user on the machine,
and a client that gets in can approve its own `run_shell`. A TCP listener
therefore admits a connection only once its `initialize` presents the
listener's token at `_meta.parley.token`. The token is random and lives in a
file only its owner can read (0600, in a 0700 folder); the daemon prints the
file's path when it starts, and removes the file when it stops.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AccessToken:
    value: str
    file: Path

    @classmethod
    @contextlib.contextmanager
    def issued(cls, file: Path) -> Iterator[AccessToken]:
        """A new token in `file` (replacing any a past daemon left), removed on exit."""
        value = secrets.token_urlsafe(32)
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        file.unlink(missing_ok=True)
        # O_EXCL with the mode given at creation: the token is never readable by others,
        # not even between creating the file and writing it.
        descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(value + "\n")
        try:
            yield cls(value, file)
        finally:
            file.unlink(missing_ok=True)

    def admits(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode(errors="replace"), self.value.encode()
        )

    @property
    def how_to_present(self) -> str:
        return (
            "this parleyd listener admits only clients that present its token: send it in "
            f"initialize at _meta.parley.token (the token is in {self.file})"
        )
