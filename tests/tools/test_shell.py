from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from parleyd.tools import shell
from parleyd.tools.base import TerminalExit, TerminalOutput, ToolContext, ToolError
from parleyd.tools.environment import child_environment
from parleyd.tools.shell import TERMINAL_OUTPUT_BYTES, RunShell
from tests.support.processes import live_members, members_after_kill, needs_proc

pytestmark = needs_proc


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.first_line = asyncio.Event()

    async def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.first_line.set()


def ctx(root: Path, recorder: Recorder | None = None) -> ToolContext:
    if recorder is None:
        return ToolContext(cwd=root)
    return ToolContext(cwd=root, report_progress=recorder)


async def test_streams_merged_lines_in_order_and_ends_with_exit_code(tmp_path: Path) -> None:
    recorder = Recorder()
    command = "echo one; echo two >&2; printf 'three\\nfour'; echo ' more' >&2"
    result = await RunShell().run({"command": command}, ctx(tmp_path, recorder))
    assert recorder.lines == ["one\n", "two\n", "three\n", "four more\n"]
    assert result.output == "one\ntwo\nthree\nfour more\n[exit code 0]"
    assert not result.is_error


async def test_lines_arrive_while_the_command_runs(tmp_path: Path) -> None:
    recorder = Recorder()
    task = asyncio.create_task(
        RunShell().run({"command": "echo early; sleep 5; echo late"}, ctx(tmp_path, recorder))
    )
    await asyncio.wait_for(recorder.first_line.wait(), 3)
    assert recorder.lines == ["early\n"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_nonzero_exit_is_an_error_result(tmp_path: Path) -> None:
    result = await RunShell().run({"command": "echo oops; exit 3"}, ctx(tmp_path))
    assert result.is_error
    assert result.output == "oops\n[exit code 3]"
    silent = await RunShell().run({"command": "true"}, ctx(tmp_path))
    assert silent.output == "[no output]\n[exit code 0]"


async def test_runs_in_the_workspace_with_empty_stdin(tmp_path: Path) -> None:
    result = await RunShell().run({"command": "pwd; cat; echo done"}, ctx(tmp_path))
    assert result.output == f"{tmp_path}\ndone\n[exit code 0]"


def env_names(output: str) -> set[str]:
    return {line.split("=", 1)[0] for line in output.splitlines() if "=" in line}


@pytest.fixture
def secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-daemon-key-0123456789")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-test-0123456789")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-test-0123456789")
    monkeypatch.setenv("NPM_AUTH_TOKEN", "npm-test-0123456789")
    monkeypatch.setenv("KEYBOARD_LAYOUT", "dvorak")


@pytest.mark.usefixtures("secrets_in_environment")
async def test_the_command_inherits_no_key_or_token(tmp_path: Path) -> None:
    result = await RunShell().run({"command": "env"}, ctx(tmp_path))
    names = env_names(result.output)
    assert {"KEYBOARD_LAYOUT", "PATH", "HOME"} <= names
    assert not names & {"OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "NPM_AUTH_TOKEN"}
    assert "0123456789" not in result.output


@pytest.mark.usefixtures("secrets_in_environment")
async def test_allowed_variables_reach_the_command(tmp_path: Path) -> None:
    allowed = child_environment(allow=["GITHUB_TOKEN", "OPENAI_API_KEY"])
    result = await RunShell().run({"command": "env"}, ToolContext(tmp_path, environment=allowed))
    assert "GITHUB_TOKEN=ghp-test-0123456789" in result.output.splitlines()
    assert not env_names(result.output) & {"OPENAI_API_KEY", "NPM_AUTH_TOKEN"}


async def test_symlinked_workspace_is_the_named_cwd(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    result = await RunShell().run({"command": "pwd; ls"}, ctx(link))
    assert result.output.startswith(f"{link}\n")


async def test_timeout_kills_the_whole_group_quickly(tmp_path: Path) -> None:
    recorder = Recorder()
    started = time.monotonic()
    with pytest.raises(ToolError) as caught:
        await RunShell().run(
            {"command": "echo $$; sleep 30 & sleep 30", "timeout_seconds": 1},
            ctx(tmp_path, recorder),
        )
    assert time.monotonic() - started < 1 + shell.KILL_GRACE_SECONDS + 2
    pgid = int(recorder.lines[0])
    message = str(caught.value)
    assert message.startswith("command timed out after 1 s and was stopped")
    assert message.endswith(f"output so far:\n{pgid}\n")
    assert await members_after_kill(pgid) == []


async def test_cancellation_kills_the_group_and_propagates(tmp_path: Path) -> None:
    recorder = Recorder()
    task = asyncio.create_task(
        RunShell().run({"command": "echo $$; sleep 30 & sleep 30"}, ctx(tmp_path, recorder))
    )
    await asyncio.wait_for(recorder.first_line.wait(), 3)
    pgid = int(recorder.lines[0])
    for _ in range(100):  # the sleeps start just after the echo
        if len(live_members(pgid)) == 3:  # the shell and both sleeps
            break
        await asyncio.sleep(0.02)
    assert len(live_members(pgid)) == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await members_after_kill(pgid) == []


async def test_sigterm_ignoring_children_get_sigkill(tmp_path: Path) -> None:
    recorder = Recorder()
    command = "echo $$; trap '' TERM; sh -c 'trap \"\" TERM; sleep 30' & sleep 30"
    with pytest.raises(ToolError, match="timed out"):
        await RunShell().run({"command": command, "timeout_seconds": 1}, ctx(tmp_path, recorder))
    assert await members_after_kill(int(recorder.lines[0])) == []


async def test_background_process_holding_output_is_stopped_after_exit(tmp_path: Path) -> None:
    recorder = Recorder()
    started = time.monotonic()
    result = await RunShell().run({"command": "echo $$; sleep 30 &"}, ctx(tmp_path, recorder))
    assert time.monotonic() - started < shell.DRAIN_SECONDS + shell.KILL_GRACE_SECONDS + 2
    assert "kept the output open and were stopped" in result.output
    assert result.output.endswith("[exit code 0]")
    assert await members_after_kill(int(recorder.lines[0])) == []


async def test_background_process_with_redirected_output_survives(tmp_path: Path) -> None:
    recorder = Recorder()
    result = await RunShell().run(
        {"command": "echo $$; sleep 30 > /dev/null 2>&1 &"}, ctx(tmp_path, recorder)
    )
    pgid = int(recorder.lines[0])
    try:
        assert result.output == f"{pgid}\n[exit code 0]"
        assert len(live_members(pgid)) == 1
    finally:
        shell._signal_group(pgid, signal.SIGKILL)


async def test_long_output_keeps_head_and_tail(tmp_path: Path) -> None:
    result = await RunShell().run(
        {"command": "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done"},
        ctx(tmp_path),
    )
    assert result.output.startswith("line0\nline1\n")
    assert "line19999\n[exit code 0]" in result.output
    assert "lines (" in result.output and "of output cut ...]" in result.output
    assert len(result.output) < shell.HEAD_CHARS + shell.TAIL_CHARS + 200


async def test_output_without_newlines_still_streams_in_bounded_pieces(tmp_path: Path) -> None:
    recorder = Recorder()
    await RunShell().run(
        {"command": "head -c 20000 /dev/zero | tr '\\0' x"}, ctx(tmp_path, recorder)
    )
    assert "".join(recorder.lines) == "x" * 20000
    assert max(len(line) for line in recorder.lines) <= shell.MAX_LINE_CHARS


async def test_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"\$\.timeout_seconds"):
        await RunShell().run({"command": "true", "timeout_seconds": 1801}, ctx(tmp_path))
    with pytest.raises(ToolError, match="missing required field `command`"):
        await RunShell().run({}, ctx(tmp_path))


def test_title_and_metadata() -> None:
    assert RunShell.kind == "execute"
    assert RunShell.needs_permission
    assert RunShell().title({"command": "pytest -q"}) == "Run pytest -q"
    assert RunShell().title({"command": "a\nb"}) == "Run a…"
    assert len(RunShell().title({"command": "x" * 200})) == len("Run ") + 80


async def test_killed_shell_reports_the_signal(tmp_path: Path) -> None:
    result = await RunShell().run({"command": "kill -KILL $$"}, ctx(tmp_path))
    assert result.is_error
    assert result.output == "[no output]\n[exit code -9: killed by SIGKILL]"


class _Terminals:
    """An editor's terminals whose command never ends by itself."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.killed = asyncio.Event()

    async def create(self, command: str, args: list[str], cwd: Path, output_limit: int) -> str:
        self.asked.append(f"create {command} {args[-1]}")
        return "term_1"

    async def wait_for_exit(self, terminal_id: str) -> TerminalExit:
        self.asked.append("wait")
        await self.killed.wait()
        return TerminalExit(None, "SIGTERM")

    async def output(self, terminal_id: str) -> TerminalOutput:
        self.asked.append("output")
        return TerminalOutput("tick\n" * 3, truncated=True)

    async def kill(self, terminal_id: str) -> None:
        self.asked.append("kill")
        self.killed.set()

    async def release(self, terminal_id: str) -> None:
        self.asked.append("release")


async def test_a_command_in_the_editors_terminal_is_stopped_at_its_timeout(tmp_path: Path) -> None:
    terminals = _Terminals()
    shown: list[str] = []

    async def show(terminal_id: str) -> None:
        shown.append(terminal_id)

    context = ToolContext(cwd=tmp_path, terminals=terminals, show_terminal=show)
    with pytest.raises(ToolError) as failed:
        await RunShell().run({"command": "watch date", "timeout_seconds": 1}, context)
    assert terminals.asked == ["create /bin/sh watch date", "wait", "kill", "output", "release"]
    assert shown == ["term_1"]
    assert str(failed.value) == (
        "command timed out after 1 s and was stopped; output so far:\n"
        f"[the start of the output was cut; its last {TERMINAL_OUTPUT_BYTES} bytes]\n"
        "tick\ntick\ntick\n"
    )
