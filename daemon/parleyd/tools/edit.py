"""edit_file: change a file by replacing exact spans of it, not by rewriting it.

A model that rewrites a whole file to change one line spends the file's length
in output tokens and may drop what it did not mean to touch. Each edit names
the text it replaces, which must stand exactly once in the file (or the edit
says `replace_all`), so a stale or vague edit fails with an error that says
where it matched, instead of landing in the wrong place. The edits of one call
apply in order, each to what the ones before it left, and land together or
not at all, in one atomic write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from .base import ToolContext, ToolError, ToolKind, ToolResult
from .builtin import WorkspaceTool
from .files import PathArgument, WorkspaceFile
from .paths import Workspace

# An ambiguous edit names this many of the lines its text stands at.
SHOWN_MATCHES = 10


class Edit(msgspec.Struct, forbid_unknown_fields=True):
    old_text: Annotated[
        str,
        Meta(
            min_length=1,
            description="The exact text to replace, whitespace and indentation included, "
            "as it stands after the edits before this one",
        ),
    ]
    new_text: Annotated[str, Meta(description="What replaces it")]
    replace_all: Annotated[
        bool, Meta(description="Replace every occurrence instead of one unique span")
    ] = False


class EditFileArguments(msgspec.Struct, forbid_unknown_fields=True):
    path: PathArgument
    edits: Annotated[
        list[Edit],
        Meta(min_length=1, description="Applied in order; either all of them land or none"),
    ]


class EditFile(WorkspaceTool[EditFileArguments]):
    name = "edit_file"
    description = (
        "Change an existing file of the workspace by replacing exact text: each edit's "
        "old_text must occur exactly once in the file (include enough surrounding lines "
        "to make it unique) unless replace_all is set. Several edits apply in order, "
        "all or none. Read the file first; use write_file to create a file."
    )
    arguments_type = EditFileArguments
    kind: ToolKind = "edit"
    needs_permission = True

    def title(self, arguments: Mapping[str, Any]) -> str:
        return f"Edit {arguments.get('path', '')}"

    async def describe(
        self, args: EditFileArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        file = WorkspaceFile.at(workspace, args.path)
        old_text, new_text = await _edited(file, args.edits, context)
        return ToolResult("", locations=(file.client_path,), diff=file.diff(old_text, new_text))

    async def execute(
        self, args: EditFileArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        file = WorkspaceFile.at(workspace, args.path)
        old_text, new_text = await _edited(file, args.edits, context)
        if new_text == old_text:
            return ToolResult(
                f"the edits leave {file.shown} as it was; nothing changed",
                locations=(file.client_path,),
            )
        await file.replace(new_text, context)
        count = len(args.edits)
        return ToolResult(
            f"Edited {file.shown} ({count} edit{'' if count == 1 else 's'})",
            locations=(file.client_path,),
            diff=file.diff(old_text, new_text),
        )


async def _edited(file: WorkspaceFile, edits: list[Edit], context: ToolContext) -> tuple[str, str]:
    """The file's text, and what the edits make of it (a ToolError if one cannot apply)."""
    old_text = await file.text(context)
    if old_text is None:
        raise ToolError(f"{file.shown} does not exist; create it with write_file")
    return old_text, apply_edits(old_text, edits, file.shown)


def apply_edits(text: str, edits: list[Edit], shown: str) -> str:
    # Models write "\n"; a file with CRLF line endings keeps its own.
    crlf = "\r\n" in text
    for number, edit in enumerate(edits, 1):
        old, new = edit.old_text, edit.new_text
        if crlf:
            old, new = _crlf(old), _crlf(new)
        where = f"edit {number}" if len(edits) > 1 else "the edit"
        count = text.count(old)
        if count == 0:
            raise ToolError(
                f"{where}: old_text does not occur in {shown}; read the file again and "
                "quote it exactly, whitespace included"
                + (" (as the edits before it left it)" if number > 1 else "")
            )
        if count > 1 and not edit.replace_all:
            raise ToolError(
                f"{where}: old_text occurs {count} times in {shown}, at lines "
                f"{_lines_of(text, old)}; include more of the surrounding lines to make it "
                "unique, or set replace_all to replace every one"
            )
        text = text.replace(old, new)
    return text


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def _lines_of(text: str, span: str) -> str:
    """The line numbers `span` starts at in `text`, the first `SHOWN_MATCHES` of them."""
    lines: list[int] = []
    start = text.find(span)
    line = 1
    scanned = 0
    while start != -1 and len(lines) < SHOWN_MATCHES:
        line += text.count("\n", scanned, start)
        scanned = start
        lines.append(line)
        start = text.find(span, start + len(span))
    shown = ", ".join(map(str, lines))
    total = text.count(span)
    return shown if total <= SHOWN_MATCHES else f"{shown}, ... ({total - SHOWN_MATCHES} more)"
