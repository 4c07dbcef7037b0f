"""search_text: grep the workspace for a literal string or a regular expression."""

from __future__ import annotations

import re
import stat
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from msgspec import Meta

from .base import ToolContext, ToolError, ToolKind, ToolResult
from .builtin import WorkspaceTool
from .files import SKIPPED_DIRS, PathArgument, looks_binary
from .paths import Workspace
from .walk import matches, project_files

# Larger files are generated or data: slow to scan and rarely what the model wants.
MAX_SEARCHED_FILE_BYTES = 2 * 1024 * 1024
# A matching line of minified code would otherwise fill the result by itself.
MAX_SHOWN_LINE_CHARS = 300


class SearchTextArguments(msgspec.Struct, forbid_unknown_fields=True):
    pattern: Annotated[str, Meta(min_length=1, description="Text or regular expression")]
    regex: Annotated[bool, Meta(description="Treat pattern as a Python regular expression")] = False
    path: PathArgument = "."
    glob: Annotated[
        str,
        Meta(
            description="Only files matching this pattern: '*.py' matches file names, "
            "'src/*.py' (with a '/') paths relative to the workspace root"
        ),
    ] = ""
    case_sensitive: bool = True
    max_results: Annotated[int, Meta(ge=1, le=2000)] = 200


@dataclass
class _Found:
    lines: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    capped: bool = False


class SearchText(WorkspaceTool[SearchTextArguments]):
    name = "search_text"
    description = (
        "Search the workspace's text files for a string (or a regular expression with "
        "regex=true). Returns matching lines as `path:line: text`. Skips "
        f"{', '.join(sorted(SKIPPED_DIRS))}, symlinks, binary files and files over "
        f"{MAX_SEARCHED_FILE_BYTES // (1024 * 1024)} MB."
    )
    arguments_type = SearchTextArguments
    kind: ToolKind = "search"
    needs_permission = False

    def title(self, arguments: Mapping[str, Any]) -> str:
        return f"Search for {arguments.get('pattern', '')!r} in {arguments.get('path', '.')}"

    async def execute(
        self, args: SearchTextArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        try:
            matcher = re.compile(
                args.pattern if args.regex else re.escape(args.pattern),
                0 if args.case_sensitive else re.IGNORECASE,
            )
        except re.error as err:
            raise ToolError(f"invalid regular expression {args.pattern!r}: {err}") from None
        start = workspace.resolve(args.path)
        if not start.exists():
            raise ToolError(f"{workspace.relative(start)} does not exist")
        # On cancellation the task returns at once and the worker stops before its
        # next file: no event-loop stall, no orphan scan of a large tree.
        stop = threading.Event()
        try:
            found = await anyio.to_thread.run_sync(
                partial(_search, workspace, start, matcher, args, stop), abandon_on_cancel=True
            )
        finally:
            stop.set()
        if not found.lines:
            return ToolResult(f"No matches for {args.pattern!r} in {workspace.relative(start)}")
        if found.capped:
            found.lines.append(
                f"[stopped at {args.max_results} matches; narrow the search with path or "
                "glob, or raise max_results]"
            )
        return ToolResult(
            "\n".join(found.lines),
            locations=tuple(workspace.client_path(file) for file in found.files),
        )


def _search(
    workspace: Workspace,
    start: Path,
    matcher: re.Pattern[str],
    args: SearchTextArguments,
    stop: threading.Event,
) -> _Found:
    found = _Found()
    matches = 0
    for file in _files(workspace, start, args.glob):
        if stop.is_set():
            break
        text = _read_text(file)
        if text is None:
            continue
        shown = workspace.relative(file)
        hit = False
        for number, line in enumerate(text.split("\n"), 1):
            if not matcher.search(line):
                continue
            if matches == args.max_results:
                found.capped = True
                return found
            hit = True
            matches += 1
            found.lines.append(f"{shown}:{number}: {line.strip()[:MAX_SHOWN_LINE_CHARS]}")
        if hit:
            found.files.append(file)
    return found


def _files(workspace: Workspace, start: Path, glob: str) -> Iterator[Path]:
    """The project's files under `start` (see `walk.py`), filtered by `glob`
    (a path pattern from the workspace root)."""
    if not start.is_dir():
        yield start  # already resolved inside the workspace by the caller
        return
    for file in project_files(start):
        if not glob or matches(glob, workspace.relative(file)):
            yield file


def _read_text(file: Path) -> str | None:
    """The file's text, or None for what is not searched: symlinks, special and
    oversized files, binaries, unreadable files."""
    try:
        status = file.lstat()
        if not stat.S_ISREG(status.st_mode) or status.st_size > MAX_SEARCHED_FILE_BYTES:
            return None
        data = file.read_bytes()
    except OSError:
        return None
    if not data or looks_binary(data):
        return None
    text = data.decode("utf-8", errors="replace")
    # No phantom empty line after the final newline; `\r` of CRLF files not shown.
    return text.replace("\r\n", "\n").removesuffix("\n")
