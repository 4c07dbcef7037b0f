"""run_shell: run a command line in the workspace and stream its output.

The command runs as `/bin/sh -c` in a session (so a process group) of its own,
so that stopping it means stopping everything it started: a test runner's
workers, a `sleep 30 &`. Stopping is SIGTERM to the group, a grace period for
cleanup, then SIGKILL to whatever is left.

Where the client offers terminals (ACP `terminal/*`), the command runs in the
editor's instead, embedded in the call while it runs; the editor stops it on
timeout or cancel (`terminal/kill`), and the model reads what it printed.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, TypeVar

import anyio
import msgspec
from msgspec import Meta

from .base import EditorTerminals, TerminalOutput, ToolContext, ToolError, ToolKind, ToolResult
from .builtin import WorkspaceTool
from .paths import Workspace

MAX_TIMEOUT_SECONDS = 1800
# What the model reads back: the start (the command's setup, the first error)
# and the end (the summary, the exit status) of long outputs.
HEAD_CHARS = 16 * 1024
TAIL_CHARS = 16 * 1024
# A progress line never grows past this: output without newlines still streams.
MAX_LINE_CHARS = 8 * 1024
KILL_GRACE_SECONDS = 2.0
# After the shell exits, how long its output may still take to reach EOF.
DRAIN_SECONDS = 1.0
# Only matters once the output is held open past the shell's exit; the usual end
# of a command is its output's EOF, seen at once.
EXIT_POLL_SECONDS = 0.1
READ_CHUNK = 64 * 1024


class RunShellArguments(msgspec.Struct, forbid_unknown_fields=True):
    command: Annotated[str, Meta(min_length=1, description="A /bin/sh command line")]
    timeout_seconds: Annotated[
        int,
        Meta(
            ge=1,
            le=MAX_TIMEOUT_SECONDS,
            description="Stop the command (and everything it started) after this long",
        ),
    ] = 120


class _Output:
    """A command's output, kept whole up to HEAD_CHARS + TAIL_CHARS and as head and
    tail beyond that, so memory stays bounded however much the command prints."""

    def __init__(self) -> None:
        self._head: list[str] = []
        self._head_chars = 0
        self._tail: deque[str] = deque()
        self._tail_chars = 0
        self._cut_lines = 0
        self._cut_chars = 0

    def add(self, line: str) -> None:
        if not self._tail and self._head_chars + len(line) <= HEAD_CHARS:
            self._head.append(line)
            self._head_chars += len(line)
            return
        self._tail.append(line)
        self._tail_chars += len(line)
        while self._tail_chars > TAIL_CHARS:
            dropped = self._tail.popleft()
            self._tail_chars -= len(dropped)
            self._cut_lines += 1
            self._cut_chars += len(dropped)

    def render(self) -> str:
        head = "".join(self._head)
        if not self._cut_lines:
            return head
        cut = f"[... {self._cut_lines} lines ({self._cut_chars} characters) of output cut ...]\n"
        return head + cut + "".join(self._tail)


class _Capture:
    """Reads the merged stdout+stderr pipe to its end, line by line, into an _Output
    and (until the command is being stopped) to the client."""

    def __init__(self, report: Callable[[str], Awaitable[None]]) -> None:
        self.output = _Output()
        self.streaming = True
        self._report = report

    async def _emit(self, line: str) -> None:
        self.output.add(line)
        if self.streaming:
            await self._report(line)

    async def read(self, stream: asyncio.StreamReader) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while chunk := await stream.read(READ_CHUNK):
            *lines, pending = (pending + decoder.decode(chunk)).split("\n")
            for line in lines:
                await self._emit(line + "\n")
            while len(pending) > MAX_LINE_CHARS:
                await self._emit(pending[:MAX_LINE_CHARS])
                pending = pending[MAX_LINE_CHARS:]
        pending += decoder.decode(b"", final=True)
        if pending:
            await self._emit(pending)


class RunShell(WorkspaceTool[RunShellArguments]):
    name = "run_shell"
    description = (
        "Run a command with /bin/sh in the workspace root; stdin is empty. Returns the "
        "combined stdout and stderr (long output keeps its start and end) and the exit "
        "code. The command and every process it started are stopped at the timeout or "
        "on cancel; background processes that keep the output open are stopped when "
        "the command exits (redirect their output, `cmd > log 2>&1 &`, to keep them)."
    )
    arguments_type = RunShellArguments
    kind: ToolKind = "execute"
    needs_permission = True

    def title(self, arguments: Mapping[str, Any]) -> str:
        command = str(arguments.get("command", "")).strip()
        first_line = command.split("\n", 1)[0]
        if len(first_line) > 80 or first_line != command:
            first_line = first_line[:79] + "…"
        return f"Run {first_line}"

    async def describe(
        self, args: RunShellArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        return ToolResult(f"$ {args.command}\n(in {workspace.root})", locations=(workspace.root,))

    async def execute(
        self, args: RunShellArguments, workspace: Workspace, context: ToolContext
    ) -> ToolResult:
        if context.terminals is not None:
            return await _in_editor_terminal(args, workspace, context.terminals, context)
        # Nothing can answer a pager or a prompt: stdin is /dev/null. PWD makes `pwd`
        # print the workspace as the client named it, not the daemon's own cwd.
        env = {
            **context.environment,
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "PWD": str(workspace.root),
        }
        try:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                args.command,
                cwd=workspace.root,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as err:
            raise ToolError(f"cannot start /bin/sh: {err.strerror or err}") from None
        assert process.stdout is not None  # stdout=PIPE
        capture = _Capture(context.report_progress)
        reader = asyncio.create_task(capture.read(process.stdout))
        notes: list[str] = []
        try:
            async with asyncio.timeout(args.timeout_seconds):
                await _until_exit(process, reader)
                if reader.done():
                    reader.result()  # a failure to report progress surfaces here
                    returncode = await process.wait()
            if not reader.done():
                # Something the command left running still holds the output open:
                # nobody would read it, and it would block once the pipe fills.
                notes.append(
                    "[processes left running in the background kept the output open "
                    "and were stopped]"
                )
                await _stop(process, reader, capture)
                assert process.returncode is not None  # _until_exit saw the shell exit
                returncode = process.returncode
        except TimeoutError:
            await _stop(process, reader, capture)
            raise ToolError(
                f"command timed out after {args.timeout_seconds} s and was stopped; "
                f"output so far:\n{capture.output.render()}"
            ) from None
        except BaseException:
            await _stop(process, reader, capture)
            raise
        finally:
            reader.cancel()
        text = capture.output.render() or "[no output]\n"
        if not text.endswith("\n"):
            text += "\n"
        notes.append(_status(returncode))
        return ToolResult(text + "\n".join(notes), is_error=returncode != 0)


async def _until_exit(process: asyncio.subprocess.Process, reader: asyncio.Task[None]) -> None:
    """Until the shell has exited and its output ended, or DRAIN_SECONDS after its exit
    when something it left running holds the output open. Process.wait() cannot tell
    the two apart: on Python 3.11 it also waits for the pipe to close, whereas
    `returncode` is set as soon as the shell exits."""
    while process.returncode is None and not reader.done():
        await asyncio.wait({reader}, timeout=EXIT_POLL_SECONDS)
    if not reader.done():
        await asyncio.wait({reader}, timeout=DRAIN_SECONDS)


# What the editor keeps of a command's output for the model: its end, as the
# model reads a long output's start and end when the daemon runs it.
TERMINAL_OUTPUT_BYTES = HEAD_CHARS + TAIL_CHARS


async def _in_editor_terminal(
    args: RunShellArguments,
    workspace: Workspace,
    terminals: EditorTerminals,
    context: ToolContext,
) -> ToolResult:
    terminal = await terminals.create(
        "/bin/sh", ["-c", args.command], workspace.root, TERMINAL_OUTPUT_BYTES
    )
    try:
        await context.show_terminal(terminal)
        try:
            async with asyncio.timeout(args.timeout_seconds):
                ended = await terminals.wait_for_exit(terminal)
        except TimeoutError:
            await _stop_in_editor(terminals, terminal)
            output = await _shielded(terminals.output(terminal))
            raise ToolError(
                f"command timed out after {args.timeout_seconds} s and was stopped; "
                f"output so far:\n{_shown(output)}"
            ) from None
        except BaseException:
            await _stop_in_editor(terminals, terminal)
            raise
        output = await terminals.output(terminal)
    finally:
        with contextlib.suppress(ToolError):
            await _shielded(terminals.release(terminal))
    failed = ended.exit_code != 0
    status = (
        _status(ended.exit_code) if ended.exit_code is not None else f"[killed by {ended.signal}]"
    )
    return ToolResult(f"{_shown(output)}{status}", is_error=failed)


_T = TypeVar("_T")


async def _stop_in_editor(terminals: EditorTerminals, terminal: str) -> None:
    # An editor that cannot stop it (gone, say) leaves nothing more to do here.
    with contextlib.suppress(ToolError):
        await _shielded(terminals.kill(terminal))


async def _shielded(step: Awaitable[_T]) -> _T:
    """A step of stopping a command, which a cancel must not cut short."""
    with anyio.CancelScope(shield=True):
        done = await step
    return done


def _shown(output: TerminalOutput) -> str:
    text = output.text or "[no output]\n"
    if output.truncated:
        text = f"[the start of the output was cut; its last {TERMINAL_OUTPUT_BYTES} bytes]\n{text}"
    return text if text.endswith("\n") else f"{text}\n"


def _status(returncode: int) -> str:
    if returncode >= 0:
        return f"[exit code {returncode}]"
    try:
        killer = signal.Signals(-returncode).name
    except ValueError:  # a real-time signal has no name
        killer = f"signal {-returncode}"
    return f"[exit code {returncode}: killed by {killer}]"


async def _stop(
    process: asyncio.subprocess.Process, reader: asyncio.Task[None], capture: _Capture
) -> None:
    """Stop the command's whole process group. The grace period ends early once the
    shell has exited and the output reached EOF, i.e. nothing holding it is left."""
    capture.streaming = False  # the call is over for the client
    _signal_group(process.pid, signal.SIGTERM)
    try:
        # Shielded: under an anyio cancel scope, cancellation is re-delivered at every
        # await and would cut the grace period to nothing.
        with anyio.CancelScope(shield=True), anyio.move_on_after(KILL_GRACE_SECONDS):
            await process.wait()
            await asyncio.wait({reader})
    finally:
        _signal_group(process.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    # start_new_session made the shell the leader: its pid is the group id. No such
    # group: everything in it has exited already.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)
