"""The contract between the agent loop and every tool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..providers.messages import Attachment
from .environment import child_environment

# ACP's ToolKind: lets clients pick an icon and a treatment for the call.
ToolKind = Literal["read", "edit", "delete", "move", "search", "execute", "think", "fetch", "other"]


class ToolError(Exception):
    """A failure the model should read (bad arguments, path outside the workspace,
    missing file...). Its message becomes the tool result, marked as an error."""


@dataclass(frozen=True)
class FileDiff:
    """What a write changed, for the client's diff view (`old_text` None: a new file)."""

    path: Path
    old_text: str | None
    new_text: str


PlanPriority = Literal["high", "medium", "low"]
PlanStatus = Literal["pending", "in_progress", "completed"]


@dataclass(frozen=True)
class PlanStep:
    """One entry of the model's plan, as ACP's `plan` update shows it."""

    content: str
    priority: PlanPriority
    status: PlanStatus


@dataclass(frozen=True)
class ToolResult:
    """`output` is what the model reads back, with `attachments` (the images,
    audio and files an MCP tool returns), which the client is shown too; the
    rest is for the client's display."""

    output: str
    is_error: bool = False
    locations: tuple[Path, ...] = ()
    diff: FileDiff | None = None
    # The user stopped the work; `output` says what it had done.
    cancelled: bool = False
    # The conversation's plan from now on, whole (the `update_plan` tool).
    plan: tuple[PlanStep, ...] | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class ChildTask:
    """What a `subagent` call asks of a child conversation."""

    task: str
    title: str
    role: str | None = None
    tools: tuple[str, ...] | None = None
    # The child's budget: US dollars, model responses, seconds (None: no limit).
    cost: float | None = None
    responses: int | None = None
    seconds: float | None = None


class ChildRunner(Protocol):
    async def run_child(self, task: ChildTask) -> ToolResult:
        """Run a child conversation to its end; its answer, or what it has and
        why it stopped."""
        ...


class EditorFiles(Protocol):
    """Files as the user's editor has them (ACP's client file system), where the
    client offers it: a read sees unsaved changes, a write lands in the buffer.
    Each raises ToolError when the editor cannot; the paths are absolute."""

    can_read: bool
    can_write: bool

    async def read_text(self, path: Path) -> str: ...

    async def write_text(self, path: Path, content: str) -> None: ...


@dataclass(frozen=True)
class TerminalExit:
    """How a command in the editor's terminal ended: its code, or the signal."""

    exit_code: int | None
    signal: str | None


@dataclass(frozen=True)
class TerminalOutput:
    text: str
    # The editor kept only the end of it.
    truncated: bool


class EditorTerminals(Protocol):
    """Commands run in the user's editor (ACP's client terminals), where the
    client offers them: the user watches the command run where they work.
    Each raises ToolError when the editor cannot."""

    async def create(self, command: str, args: list[str], cwd: Path, output_limit: int) -> str:
        """Start the command; its terminal's id."""
        ...

    async def wait_for_exit(self, terminal_id: str) -> TerminalExit: ...

    async def output(self, terminal_id: str) -> TerminalOutput: ...

    async def kill(self, terminal_id: str) -> None: ...

    async def release(self, terminal_id: str) -> None: ...


@dataclass(frozen=True)
class ToolContext:
    """What a running tool may know. `cwd` is the session's workspace root: every
    path a tool touches must resolve inside it. `report_progress` streams partial
    output (a shell command's lines) to the client while the tool runs.
    `environment` is what a process the tool starts inherits: by default the
    daemon's own without its secrets, and without the user's allow list.
    `children` starts sub-conversations; None where there may be none (too deep).
    `editor` reads and writes files through the client; None: the disk.
    `terminals` runs commands in the client's terminals; None: the daemon runs
    them. `show_terminal` embeds one of those terminals in the running call."""

    cwd: Path
    additional_roots: tuple[Path, ...] = ()
    report_progress: Callable[[str], Awaitable[None]] = field(default=lambda _text: _noop())
    environment: Mapping[str, str] = field(default_factory=child_environment)
    children: ChildRunner | None = None
    editor: EditorFiles | None = None
    terminals: EditorTerminals | None = None
    show_terminal: Callable[[str], Awaitable[None]] = field(default=lambda _id: _noop())


async def _noop() -> None:
    return None


class Tool(Protocol):
    name: str
    description: str
    # JSON Schema of the arguments object, sent to the model as is.
    parameters: Mapping[str, Any]
    kind: ToolKind
    # Whether the client must allow each call (session/request_permission).
    needs_permission: bool

    def title(self, arguments: Mapping[str, Any]) -> str:
        """A short human title for the call, e.g. `Read src/main.py`."""
        ...

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        """Run the call. Raise ToolError for failures the model should see;
        cancellation arrives as asyncio.CancelledError and must stop the work."""
        ...

    async def preview(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        """What the call would do, shown to the user who is asked to allow it
        (a write's diff, a command and where it runs). Changes nothing; a
        ToolError means the call would fail, and it is asked about as it is."""
        ...
