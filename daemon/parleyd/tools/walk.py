"""The workspace's files as its project sees them, for the tools that look
through many (`glob`, `search_text`): in a git work tree, what git does not
ignore; elsewhere, everything but the tooling folders.

Git itself decides what is ignored (`git ls-files --exclude-standard`: every
`.gitignore` on the way, `.git/info/exclude` and the user's global excludes),
so nested ignore files, negations and directory patterns mean exactly what
they mean to the user's own git. Symlinks are never followed: they may lead
out of the workspace or loop.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from .files import SKIPPED_DIRS

# Listing a large repository takes git a moment; one that takes longer than
# this is walked by hand instead.
_GIT_SECONDS = 10.0


def project_files(start: Path) -> Iterator[Path]:
    """The regular files under the directory `start`, sorted by path."""
    listed = _listed_by_git(start)
    candidates = sorted(listed) if listed is not None else _walked(start)
    for file in candidates:
        try:
            if stat.S_ISREG(file.lstat().st_mode):
                yield file
        except OSError:
            continue  # listed by git, since deleted


def _listed_by_git(start: Path) -> list[Path] | None:
    """The files git tracks or would track under `start`, or None outside a
    work tree (or without git)."""
    try:
        run = subprocess.run(
            [
                "git",
                "-C",
                str(start),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            timeout=_GIT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if run.returncode != 0:
        return None
    names = run.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    # Tracked and untracked-but-unignored can name a file twice (a merge in progress).
    return [start / name for name in dict.fromkeys(names) if name]


def _walked(start: Path) -> Iterator[Path]:
    for directory, dirnames, filenames in os.walk(start):
        dirnames[:] = sorted(name for name in dirnames if name not in SKIPPED_DIRS)
        for name in sorted(filenames):
            yield Path(directory, name)


def matches(pattern: str, relative: str) -> bool:
    """Whether a file's path (relative, with `/`) matches a glob pattern: one
    without a `/` is matched against the file's name, at any depth; one with
    a `/` against the whole path, where `*` and `?` stay within a folder and
    `**` spans any number of them (`src/**/*.py`)."""
    if "/" not in pattern:
        relative = relative.rsplit("/", 1)[-1]
    return _compiled(pattern).fullmatch(relative) is not None


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[" and (end := pattern.find("]", index + 2)) != -1:
            body = pattern[index + 1 : end]
            negated = body.startswith(("!", "^"))
            body = re.escape(body[1:] if negated else body).replace("\\-", "-")
            parts.append(f"[{'^' if negated else ''}{body}]")
            index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts), re.DOTALL)
