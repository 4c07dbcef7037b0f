"""The file tools: read_file, list_directory, write_file.

Reading, listing and writing run in a worker thread, so a slow disk or network
mount never stalls the event loop that streams every other session's
notifications. Those calls are bounded (capped reads, one write) and are let
finish on cancellation: a write abandoned halfway is worse than one that lands a
moment late.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import anyio.to_thread
import msgspec
from msgspec import Meta

from .base import FileDiff, ToolContext, ToolError, ToolKind, ToolResult
from .builtin import WorkspaceTool
from .paths import Workspace, fs_error

# What the model gets from one read: enough for most source files, small enough
# that one call cannot flood the context window.
MAX_READ_BYTES = 256 * 1024
MAX_READ_LINES = 2000
MAX_LIST_ENTRIES = 1000
# Git's heuristic: text files have no NUL byte in their first 8 KiB.
SNIFF_BYTES = 8192
# Directories that are tooling, not the project: listed but never walked into.
SKIPPED_DIRS = frozenset({".git", "node_modules", ".venv"})
# Version-control internals are noise to the model even as a single entry.
HIDDEN_DIRS = frozenset({".git"})

PathArgument = Annotated[
    str,
    Meta(
        description="Path relative to the workspace root (or absolute, inside it or another "
        "folder of the session)"
    ),
]


def looks_binary(sample: bytes) -> bool:
    return b"\0" in sample[:SNIFF_BYTES]


def regular_file(
    real: Path, shown: str, action: str, *, missing_ok: bool = False
) -> os.stat_result | None:
    """The file's status, None if it is missing and may be; a ToolError for anything
    but a regular file (opening a FIFO would hang the tool)."""
    try:
        status = real.stat()
    except FileNotFoundError as err:
        if missing_ok:
            return None
        raise fs_error(action, shown, err) from None
    except OSError as err:
        raise fs_error(action, shown, err) from None
    if stat.S_ISDIR(status.st_mode):
        raise ToolError(f"cannot {action} {shown}: it is a directory, not a file")
    if not stat.S_ISREG(status.st_mode):
        raise ToolError(f"cannot {action} {shown}: it is not a regular file")
    return status


def count_lines(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """(line, was_cut) for each line, a line longer than `max_line_bytes` cut to
    that size: memory stays bounded even on a one-line minified bundle."""
    while line := stream.readline(max_line_bytes):
        cut = len(line) == max_line_bytes and not line.endswith(b"\n")
        if cut:
            while (rest := stream.readline(max_line_bytes)) and not rest.endswith(b"\n"):
                pass
        yield line, cut


async def _text_in_worker(
    workspace: Workspace, raw_path: str, produce: Callable[[Path, str], str]
) -> ToolResult:
    """What `produce` makes of one path of the workspace (given as the real path and
    as the model is shown it), with that path as the result's location."""
    real = workspace.resolve(raw_path)
    output = await anyio.to_thread.run_sync(produce, real, workspace.relative(real))
    return ToolResult(output, locations=(workspace.client_path(real),))


class ReadFileArguments(msgspec.Struct, forbid_unknown_fields=True):
    path: PathArgument
    offset: Annotated[int, Meta(ge=1, description="First line to read, counting from 1")] = 1
    limit: Annotated[
        int, Meta(ge=1, description=f"How many lines to read (at most {MAX_READ_LINES})")
    ] = MAX_READ_LINES


class ReadFile(WorkspaceTool[ReadFileArguments]):
    name = "read_file"
    description = (
        "Read a text file of the workspace. Returns its lines as they are, at most "
        f"{MAX_READ_LINES} lines or {MAX_READ_BYTES // 1024} KiB per call; when more "
        "follows, the result ends with the offset to continue from."
    )
    arguments_type = ReadFileArguments
    kind: ToolKind = "read"
    needs_permission = False

    def title(self, arguments: Mapping[str, Any]) -> str:
        return f"Read {arguments.get('path', '')}"

    async def execute(
        self, args: ReadFileArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        file = WorkspaceFile.at(workspace, args.path)
        if (text := await file.editor_text(context)) is not None:
            page = _page(io.BytesIO(text.encode("utf-8")), file.shown, args)
            return ToolResult(page, locations=(file.client_path,))
        return await _text_in_worker(workspace, args.path, partial(self._read, args=args))

    @staticmethod
    def _read(real: Path, shown: str, args: ReadFileArguments) -> str:
        regular_file(real, shown, "read")
        try:
            with real.open("rb") as stream:
                return _page(stream, shown, args)
        except OSError as err:
            raise fs_error("read", shown, err) from None


def _page(stream: BinaryIO, shown: str, args: ReadFileArguments) -> str:
    """The lines `args` asks for of a file's bytes, within the caps, and what follows."""
    if looks_binary(stream.read(SNIFF_BYTES)):
        raise ToolError(f"{shown} is a binary file; read_file only reads text")
    stream.seek(0)
    wanted = min(args.limit, MAX_READ_LINES)
    kept: list[bytes] = []
    size = 0
    cut_lines: list[int] = []
    total = last = 0
    more = False
    truncated_by = ""
    for total, (line, cut) in enumerate(_lines(stream, MAX_READ_BYTES), 1):
        if total < args.offset:
            continue
        if total - args.offset == wanted:
            more = True
            if wanted == MAX_READ_LINES:
                truncated_by = f"{MAX_READ_LINES} lines"
            break
        if size + len(line) > MAX_READ_BYTES:
            more = True
            truncated_by = f"{MAX_READ_BYTES // 1024} KiB"
            break
        kept.append(line + b"\n" if cut else line)
        size += len(line)
        last = total
        if cut:
            cut_lines.append(total)
    if not kept:
        if args.offset == 1:
            return "[empty file]"
        raise ToolError(f"offset {args.offset} is past the end of {shown} ({total} lines)")
    text = b"".join(kept).decode("utf-8", errors="replace")
    notices = [
        f"[line {n} is longer than {MAX_READ_BYTES // 1024} KiB; only its start is shown]"
        for n in cut_lines
    ]
    if more:
        reason = f"output truncated at {truncated_by}; " if truncated_by else ""
        notices.append(
            f"[{reason}showing lines {args.offset}-{last}; the file continues: "
            f"call read_file with offset={last + 1} to read further]"
        )
    if not notices:
        return text
    return text + ("" if text.endswith("\n") else "\n") + "\n".join(notices)


class ListDirectoryArguments(msgspec.Struct, forbid_unknown_fields=True):
    path: PathArgument = "."
    depth: Annotated[
        int, Meta(ge=1, le=5, description="How many levels to descend (1: entries only)")
    ] = 1


class ListDirectory(WorkspaceTool[ListDirectoryArguments]):
    name = "list_directory"
    description = (
        "List a directory of the workspace, sorted; directories end with '/', symlinks "
        "with '@' (not followed). Deeper levels appear as paths relative to the listed "
        f"directory. .git is left out; {', '.join(sorted(SKIPPED_DIRS - HIDDEN_DIRS))} "
        f"are shown but not descended into. At most {MAX_LIST_ENTRIES} entries."
    )
    arguments_type = ListDirectoryArguments
    kind: ToolKind = "read"
    needs_permission = False

    def title(self, arguments: Mapping[str, Any]) -> str:
        return f"List {arguments.get('path', '.')}"

    async def execute(
        self, args: ListDirectoryArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        return await _text_in_worker(workspace, args.path, partial(self._list, depth=args.depth))

    @staticmethod
    def _list(real: Path, shown: str, depth: int) -> str:
        if not real.is_dir():
            problem = "is not a directory" if real.exists() else "does not exist"
            raise ToolError(f"{shown} {problem}")
        try:
            level = _scan(real, ())
        except OSError as err:
            raise fs_error("list", shown, err) from None
        # Level by level, so that a capped listing still shows the whole top of the
        # tree rather than the first subdirectory in full.
        entries: list[tuple[tuple[str, ...], str]] = []
        capped = False
        for current_depth in range(1, depth + 1):
            below: list[tuple[tuple[str, ...], str]] = []
            for parts, suffix in level:
                if len(entries) == MAX_LIST_ENTRIES:
                    capped = True
                    break
                entries.append((parts, suffix))
                if suffix == "/" and current_depth < depth and parts[-1] not in SKIPPED_DIRS:
                    # An unreadable subdirectory is still listed, just not opened.
                    with contextlib.suppress(OSError):
                        below.extend(_scan(real.joinpath(*parts), parts))
            if capped or not below:
                break
            level = below
        if not entries:
            return "[empty directory]"
        lines = ["/".join(parts) + suffix for parts, suffix in sorted(entries)]
        if capped:
            lines.append(
                f"[listing stopped at {MAX_LIST_ENTRIES} entries; "
                "list a subdirectory or use a smaller depth]"
            )
        return "\n".join(lines)


def _scan(directory: Path, parts: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    """The entries of one directory as (path parts, suffix), sorted by name."""
    found = []
    with os.scandir(directory) as scan:
        for entry in scan:
            if entry.name in HIDDEN_DIRS:
                continue
            if entry.is_symlink():
                suffix = "@"
            elif entry.is_dir():
                suffix = "/"
            else:
                suffix = ""
            found.append(((*parts, entry.name), suffix))
    return sorted(found)


class WriteFileArguments(msgspec.Struct, forbid_unknown_fields=True):
    path: PathArgument
    content: Annotated[str, Meta(description="The file's complete new content")]


class WriteFile(WorkspaceTool[WriteFileArguments]):
    name = "write_file"
    description = (
        "Create or overwrite a file of the workspace with the given content, creating "
        "missing parent directories. The whole file is replaced at once."
    )
    arguments_type = WriteFileArguments
    kind: ToolKind = "edit"
    needs_permission = True

    def title(self, arguments: Mapping[str, Any]) -> str:
        return f"Write {arguments.get('path', '')}"

    async def describe(
        self, args: WriteFileArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        file = WorkspaceFile.at(workspace, args.path)
        old_text = await file.text(context)
        return ToolResult("", locations=(file.client_path,), diff=file.diff(old_text, args.content))

    async def execute(
        self, args: WriteFileArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        file = WorkspaceFile.at(workspace, args.path)
        old_text = await file.text(context)
        if old_text == args.content:
            return ToolResult(f"{file.shown} already had this content; nothing changed")
        await file.replace(args.content, context)
        lines = count_lines(args.content)
        verb = "Created" if old_text is None else "Wrote"
        return ToolResult(
            f"{verb} {file.shown} ({lines} line{'' if lines == 1 else 's'})",
            locations=(file.client_path,),
            diff=file.diff(old_text, args.content),
        )


@dataclass(frozen=True)
class WorkspaceFile:
    """A file of the workspace as the tools that change it see it: its text is
    what the user sees, the editor's buffer where the client reads files for
    the agent (unsaved changes included), else the disk's."""

    real: Path
    shown: str
    client_path: Path

    @classmethod
    def at(cls, workspace: Workspace, raw_path: str) -> WorkspaceFile:
        real = workspace.resolve(raw_path)
        return cls(real, workspace.relative(real), workspace.client_path(real))

    async def text(self, context: ToolContext) -> str | None:
        """Its text, None if there is no such file."""
        if (text := await self.editor_text(context)) is not None:
            return text
        _, text = await anyio.to_thread.run_sync(partial(current_file, self.real, self.shown))
        return text

    async def editor_text(self, context: ToolContext) -> str | None:
        """Its text in the editor, where the client reads files and can open this
        one; None sends the caller to the disk."""
        editor = context.editor
        if editor is None or not editor.can_read:
            return None
        try:
            return await editor.read_text(self.client_path)
        except ToolError:
            return None

    async def replace(self, content: str, context: ToolContext) -> None:
        """Make `content` its text: in the editor where the client writes files,
        else on the disk, atomically."""
        editor = context.editor
        if editor is not None and editor.can_write:
            await editor.write_text(self.client_path, content)
        else:
            await anyio.to_thread.run_sync(
                partial(write_atomically, self.real, self.shown, content)
            )

    def diff(self, old_text: str | None, new_text: str) -> FileDiff:
        return FileDiff(self.client_path, old_text, new_text)


def current_file(real: Path, shown: str) -> tuple[int | None, str | None]:
    """The mode and text a write would replace; (None, None) for a new file."""
    status = regular_file(real, shown, "write", missing_ok=True)
    if status is None:
        return None, None
    try:
        return stat.S_IMODE(status.st_mode), real.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        raise fs_error("write", shown, err) from None


def write_atomically(real: Path, shown: str, content: str) -> str | None:
    """Replace the file's content atomically (a reader sees the old file or the new
    one, never half of it) and return the previous text, None for a new file."""
    # An existing file keeps its mode (an executable script stays executable).
    existing_mode, old_text = current_file(real, shown)
    if old_text == content:
        return old_text
    mode = 0o666 if existing_mode is None else existing_mode  # the umask applies to new files
    temporary = real.with_name(f".{real.name}.{secrets.token_hex(4)}.tmp")
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(content.encode("utf-8"))
                stream.flush()
                os.fsync(stream.fileno())
            if existing_mode is not None:
                temporary.chmod(mode)  # os.open's mode went through the umask
            temporary.replace(real)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as err:
        raise fs_error("write", shown, err) from None
    return old_text
