"""Confine the paths a tool touches to the session's workspace: its `cwd`,
and the further roots a client may give it (ACP `additionalDirectories`).

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
class Root:
    """A folder as the client named it (`named`, shown back to the client), and
    with its own symlinks resolved (`real`, what paths are compared against)."""

    named: Path
    real: Path

    @classmethod
    def at(cls, folder: Path) -> Root:
        named = Path(os.path.normpath(Path(folder).absolute()))
        real = Path(os.path.realpath(named))
        if not real.is_dir():
            raise ToolError(f"the workspace {named} is not an existing directory")
        return cls(named, real)


@dataclass(frozen=True)
class Workspace:
    """The roots a session works in, `cwd` first: relative paths are relative
    to it, and a path anywhere else must be inside one of the others."""

    roots: tuple[Root, ...]

    @classmethod
    def at(cls, cwd: Path, additional: tuple[Path, ...] = ()) -> Workspace:
        return cls(tuple(Root.at(folder) for folder in (cwd, *additional)))

    @property
    def root(self) -> Path:
        """The session's `cwd`, as the client named it."""
        return self.roots[0].named

    @property
    def real_root(self) -> Path:
        """The session's `cwd`, its symlinks resolved."""
        return self.roots[0].real

    def resolve(self, raw: str) -> Path:
        """The real path `raw` names (relative to the root, or absolute), or a
        ToolError saying why it is refused. The path need not exist yet."""
        if "\0" in raw:
            raise ToolError(f"path {raw!r} contains a NUL character")
        # realpath applies `..` after the symlink before it, as the OS does.
        real = Path(os.path.realpath(self.root / raw))
        if self._root_of(real) is not None:
            return real
        named = Path(os.path.normpath(self.root / raw))
        where = ", ".join(str(root.named) for root in self.roots)
        reason = f"path {raw!r} is outside the workspace {where}"
        if any(named.is_relative_to(r.named) or named.is_relative_to(r.real) for r in self.roots):
            # The text stays inside; a symlink on the way leads out. Say where, or
            # the refusal of an innocent-looking path is a puzzle.
            reason += f": it leads through a symlink to {real}"
        raise ToolError(reason)

    def relative(self, real: Path) -> str:
        """How a resolved path is shown to the model: relative to `cwd`, and in
        full in another root (as the model is asked to give those)."""
        if real.is_relative_to(self.real_root):
            return real.relative_to(self.real_root).as_posix()
        return self.client_path(real).as_posix()

    def client_path(self, real: Path) -> Path:
        """The absolute path the client knows: under the root it named, even when
        that root is itself a symlink."""
        root = self._root_of(real)
        assert root is not None, f"{real} was not resolved in this workspace"
        return root.named / real.relative_to(root.real)

    def _root_of(self, real: Path) -> Root | None:
        # The innermost root that holds it: an additional root may lie inside `cwd`.
        holding = [root for root in self.roots if real.is_relative_to(root.real)]
        return max(holding, key=lambda root: len(root.real.parts), default=None)


def fs_error(action: str, shown: str, err: OSError) -> ToolError:
    """An OSError as the model should read it: what failed, on which workspace path,
    and the OS's reason, without the absolute path the errno text would carry."""
    return ToolError(f"cannot {action} {shown}: {err.strerror or err}")
