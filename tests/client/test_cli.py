"""The `parley` CLI as a user runs it, stdout a pipe (plain output), real daemon."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.daemon import offline_env

PARLEY = Path(sys.executable).with_name("parley")
SESSION_LINE = re.compile(r"^\[session\] (sess_\w+)$", re.MULTILINE)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    (folder / "README.md").write_text("# Harbour\n\nA small sample project.\n")
    return folder


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return offline_env(tmp_path / "home")


def parley(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PARLEY), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def shell(command: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`command` typed into a shell, as a person would paste it."""
    return subprocess.run(
        command,
        shell=True,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def on_terminal(argv: list[str], *, cwd: Path, env: dict[str, str]) -> str:
    """What `argv` shows with a terminal for its stdout, without the ANSI styling."""
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=terminal, stderr=subprocess.PIPE
    ) as process:
        os.close(terminal)
        shown = bytearray()
        while select.select([controller], [], [], 30)[0]:
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its end of the terminal
                break
            if not data:
                break
            shown += data
        os.close(controller)
        assert process.wait(timeout=30) == 0, process.stderr
    return ANSI.sub("", shown.decode()).replace("\r\n", "\n")


def test_prompt_prints_plain_text_the_tool_line_and_usage(
    workspace: Path, env: dict[str, str]
) -> None:
    run = parley("prompt", "Summarize README.md", cwd=workspace, env=env)
    assert run.returncode == 0, run.stderr
    assert "\x1b[" not in run.stdout
    assert re.search(r"^\[tool\] Read README\.md \.\.\. completed \(.+ ms\)$", run.stdout, re.M)
    assert '**First heading:** "Harbour"' in run.stdout
    assert "[thinking] " in run.stdout
    assert "parley-scripted (scripted model)" in run.stdout
    assert SESSION_LINE.search(run.stdout)


def test_permission_flags(workspace: Path, env: dict[str, str]) -> None:
    rejected = parley("prompt", "--no", 'Write a note saying "ship it"', cwd=workspace, env=env)
    assert rejected.returncode == 0, rejected.stderr
    assert "[permission] answered reject_once (--no)" in rejected.stdout
    assert "[tool] Write NOTES.md ... failed" in rejected.stdout
    assert not (workspace / "NOTES.md").exists()

    allowed = parley("prompt", "--yes", 'Write a note saying "ship it"', cwd=workspace, env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert "[permission] answered allow_once (--yes)" in allowed.stdout
    assert "+- ship it" in allowed.stdout  # the diff preview
    assert "ship it" in (workspace / "NOTES.md").read_text()


def test_sessions_show_and_continue(workspace: Path, env: dict[str, str], tmp_path: Path) -> None:
    first = parley("prompt", "Summarize README.md", cwd=workspace, env=env)
    session_match = SESSION_LINE.search(first.stdout)
    assert session_match, first.stdout + first.stderr
    session_id = session_match.group(1)

    listed = parley("sessions", cwd=workspace, env=env)
    assert listed.returncode == 0
    assert listed.stdout.startswith(f"{session_id}\t") and "Summarize README.md" in listed.stdout
    assert (
        parley("sessions", cwd=tmp_path, env=env).stdout.strip() == "no sessions in this directory"
    )
    assert f"\t{workspace}" in parley("sessions", "--all", cwd=tmp_path, env=env).stdout

    continued = parley(
        "prompt", "--session", session_id, "--replay", "What can you do?", cwd=workspace, env=env
    )
    assert continued.returncode == 0, continued.stderr
    assert "> Summarize README.md" in continued.stdout  # the replay, asked for
    assert "What I can demonstrate" in continued.stdout

    shown = parley("show", session_id, cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.index("> Summarize README.md") < shown.stdout.index("> What can you do?")
    assert "[tool] Read README.md ... completed" in shown.stdout
    assert shown.stdout.count("[usage] ") == 2


@pytest.mark.parametrize(
    "command",
    [("show", "sess_missing"), ("prompt", "--session", "sess_missing", "hi")],
    ids=["show", "prompt"],
)
def test_an_unknown_session_is_one_line_worded_alike(
    workspace: Path, env: dict[str, str], command: tuple[str, ...]
) -> None:
    home = workspace / "empty"
    run = parley("--home", str(home), *command, cwd=workspace, env=env)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"parley: no session sess_missing in {home} (see `parley sessions --all`)"
    ]


def test_a_bad_provider_is_refused_without_protocol_words(
    workspace: Path, env: dict[str, str]
) -> None:
    run = parley("--provider", "gemini", "prompt", "hi", cwd=workspace, env=env)
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert "invalid choice: 'gemini' (choose from 'openai', 'offline')" in line
    assert "_meta" not in line and "params" not in line.lower()


def test_stdout_closed_early_ends_quietly(workspace: Path, env: dict[str, str]) -> None:
    """`parley prompt ... | head -1`: the reader goes away while the answer streams."""
    process = subprocess.Popen(
        [str(PARLEY), "prompt", "Tell me a long story"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    errors = process.stderr.read()
    assert process.wait(timeout=30) == 0
    assert errors == b""


def test_on_a_terminal_the_turn_ends_with_the_command_that_continues_it(
    workspace: Path, env: dict[str, str]
) -> None:
    plain_shell = {**env, "PATH": os.defpath}
    output = on_terminal([str(PARLEY), "prompt", "hi"], cwd=workspace, env=plain_shell)
    last = output.strip().splitlines()[-1]
    match = re.fullmatch(r"session (sess_\w+) · (.+)", last)
    assert match, output
    session_id, command = match.groups()
    assert command == f'{PARLEY} prompt --session {session_id} "..."'
    assert "[session]" not in output
    # As printed, from a plain shell: `.venv/bin` is not on its PATH.
    continued = shell(command, cwd=workspace, env=plain_shell)
    assert continued.returncode == 0, continued.stderr
    assert f"[session] {session_id}" in continued.stdout


def test_on_path_the_command_is_plain_parley(workspace: Path, env: dict[str, str]) -> None:
    on_path = {**env, "PATH": f"{PARLEY.parent}{os.pathsep}{os.defpath}"}
    output = on_terminal([str(PARLEY), "prompt", "hi"], cwd=workspace, env=on_path)
    assert re.search(r'· parley prompt --session sess_\w+ "\.\.\."$', output.strip()), output


def test_ctrl_c_cancels_the_turn(workspace: Path, env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [str(PARLEY), "prompt", "Tell me a long story"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    # The story's first line is streamed once the answer has begun.
    for line in process.stdout:
        if line.startswith("[thinking]"):
            break
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=10)
    assert process.returncode == 130, errors
    assert "cancelling the turn" in rest
    assert "turn ended: cancelled" in rest


def test_demo(tmp_path: Path, env: dict[str, str]) -> None:
    run = parley("demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path, env=env, timeout=60)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    out = run.stdout
    assert "scripted offline model" in out
    assert "[permission] answered allow_once" in out
    assert "stopReason: cancelled" in out
    assert "Live stream vs replay" in out
    assert re.search(r"^agent_message_chunk\s+\d+\s+\d+\s+same  \(.*whole\)$", out, re.M)
    assert "DIFFERENT" not in out and "✗" not in out
    assert (tmp_path / "demo" / "workspace" / "NOTES.md").is_file()


def test_the_demo_hint_works_from_a_plain_shell(tmp_path: Path, env: dict[str, str]) -> None:
    plain_shell = {**env, "PATH": os.defpath}
    run = parley("demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path, env=plain_shell, timeout=60)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr
    (hint,) = re.findall(r"^See it again:  (.+)$", run.stdout, re.M)
    shown = shell(hint, cwd=tmp_path, env=plain_shell)
    assert shown.returncode == 0, shown.stderr
    assert "> Summarize README.md" in shown.stdout
