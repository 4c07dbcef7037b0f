"""Confine the paths a tool touches to the session's workspace.

Every built-in resolves its path arguments here, so "inside the workspace" means
one thing everywhere: the real path, after the OS has followed every symlink and
`..`, lies under the real workspace root. Checking the text of the path alone is
not enough (`link/secret` may lead anywhere), and the final component counts too,
even when it is a dangling symlink a write would create a file through.

What is checked is the path at the time of the call; a process racing the tool to
swap a directory for a symlink is outside what this guards against.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .base import ToolError


@dataclass(frozen=True)
class Workspace:
    """`root` is the workspace as the client named it (shown back to the client);
    `real_root` the same directory with its own symlinks resolved (what paths are
    compared against)."""

    root: Path
    real_root: Path

    @classmethod
    def at(cls, cwd: Path) -> Workspace:
        root = Path(os.path.normpath(Path(cwd).absolute()))
        real_root = Path(os.path.realpath(root))
        if not real_root.is_dir():
            raise ToolError(f"the workspace {root} is not an existing directory")
        return cls(root, real_root)

    def resolve(self, raw: str) -> Path:
        """The real path `raw` names (relative to the root, or absolute), or a
        ToolError saying why it is refused. The path need not exist yet."""
        if "\0" in raw:
            raise ToolError(f"path {raw!r} contains a NUL character")
        # realpath applies `..` after the symlink before it, as the OS does.
        real = Path(os.path.realpath(self.root / raw))
        if real.is_relative_to(self.real_root):
            return real
        named = Path(os.path.normpath(self.root / raw))
        reason = f"path {raw!r} is outside the workspace {self.root}"
        if named.is_relative_to(self.root) or named.is_relative_to(self.real_root):
            # The text stays inside; a symlink on the way leads out. Say where, or
            # the refusal of an innocent-looking path is a puzzle.
            reason += f": it leads through a symlink to {real}"
        raise ToolError(reason)

    def relative(self, real: Path) -> str:
        """How a resolved path is shown to the model: relative to the workspace."""
        return real.relative_to(self.real_root).as_posix()

    def client_path(self, real: Path) -> Path:
        """The absolute path the client knows: under the root it named, even when
        that root is itself a symlink."""
        return self.root / real.relative_to(self.real_root)


def fs_error(action: str, shown: str, err: OSError) -> ToolError:
    """An OSError as the model should read it: what failed, on which workspace path,
    and the OS's reason, without the absolute path the errno text would carry."""
    return ToolError(f"cannot {action} {shown}: {err.strerror or err}")
