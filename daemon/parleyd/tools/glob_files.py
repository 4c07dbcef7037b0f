"""glob: the workspace's files whose paths match a pattern, as git sees them."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from msgspec import Meta

from .base import ToolContext, ToolError, ToolKind, ToolResult
from .builtin import WorkspaceTool
from .files import PathArgument
from .paths import Workspace
from .walk import matches, project_files


class GlobArguments(msgspec.Struct, forbid_unknown_fields=True):
    pattern: Annotated[
        str,
        Meta(
            min_length=1,
            description="'*.py' matches file names at any depth; a pattern with a '/' "
            "matches paths from `path`, '**' spanning folders ('src/**/*.ts')",
        ),
    ]
    path: PathArgument = "."
    max_results: Annotated[int, Meta(ge=1, le=5000)] = 500


class Glob(WorkspaceTool[GlobArguments]):
    name = "glob"
    description = (
        "Find the workspace's files by a glob pattern. Files git ignores (.gitignore) are "
        "left out, as are symlinks. Returns one path per line, relative to the workspace."
    )
    arguments_type = GlobArguments
    kind: ToolKind = "search"
    needs_permission = False

    def title(self, arguments: Mapping[str, Any]) -> str:
        return f"Find {arguments.get('pattern', '')} in {arguments.get('path', '.')}"

    async def execute(
        self, args: GlobArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        start = workspace.resolve(args.path)
        if not start.is_dir():
            raise ToolError(f"{workspace.relative(start)} is not a directory")
        # As search_text: a cancelled call returns at once, its worker stops soon after.
        stop = threading.Event()
        try:
            found, capped = await anyio.to_thread.run_sync(
                partial(_found, start, args, stop), abandon_on_cancel=True
            )
        finally:
            stop.set()
        where = workspace.relative(start)
        if not found:
            return ToolResult(f"No files match {args.pattern!r} in {where}")
        lines = [workspace.relative(file) for file in found]
        if capped:
            lines.append(
                f"[stopped at {args.max_results} files; narrow the pattern or the path, "
                "or raise max_results]"
            )
        return ToolResult(
            "\n".join(lines), locations=tuple(workspace.client_path(file) for file in found)
        )


def _found(start: Path, args: GlobArguments, stop: threading.Event) -> tuple[list[Path], bool]:
    found: list[Path] = []
    for file in project_files(start):
        if stop.is_set():
            break
        if matches(args.pattern, file.relative_to(start).as_posix()):
            if len(found) == args.max_results:
                return found, True
            found.append(file)
    return found, False
