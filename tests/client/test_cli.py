"""The `parley` CLI as a user runs it, stdout a pipe (plain output), real daemon."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.daemon import offline_env

PARLEY = Path(sys.executable).with_name("parley")
SESSION_LINE = re.compile(r"^\[session\] (sess_\w+)$", re.MULTILINE)


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


def test_errors_are_one_line_without_traceback(workspace: Path, env: dict[str, str]) -> None:
    run = parley("--home", str(workspace / "empty"), "show", "sess_missing", cwd=workspace, env=env)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        "parley: no session sess_missing (see `parley sessions --all`)"
    ]

    unknown = parley("prompt", "--session", "sess_nope", "hi", cwd=workspace, env=env)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("parley: ") and "Traceback" not in unknown.stderr


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
    assert re.search(r"^agent_message_chunk\s+(\d+)\s+\1\s+same$", out, re.M)
    assert "DIFFERENT" not in out and "✗" not in out
    assert (tmp_path / "demo" / "workspace" / "NOTES.md").is_file()
