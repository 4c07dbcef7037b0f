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
from collections.abc import Iterator
from pathlib import Path

import pytest

from parleyd.offline.script import plan_reply
from tests.support.runtime_folder import Machine, private_machine

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
def machine(tmp_path: Path) -> Iterator[Machine]:
    """The CLI's shared daemon runs in a runtime folder of the test's own."""
    with private_machine(tmp_path / "home") as machine:
        yield machine


@pytest.fixture
def env(machine: Machine) -> dict[str, str]:
    return machine.env()


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


def test_files_attached_to_a_prompt_are_sent_and_shown(
    workspace: Path, env: dict[str, str], tmp_path: Path
) -> None:
    (workspace / "shot.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (workspace / "data.bin").write_bytes(bytes(range(256)))
    run = parley(
        "prompt", "--attach", "shot.png", "--attach", "README.md", "--attach", "data.bin",
        "What are these?", cwd=workspace, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    session_id = SESSION_LINE.search(run.stdout).group(1)  # type: ignore[union-attr]
    shown = parley("show", session_id, cwd=tmp_path, env=env).stdout
    uri = workspace.as_uri()
    assert f"> What are these?\n[attached image {uri}/shot.png]\n" in shown
    assert f"[attached file {uri}/README.md]\n[attached file {uri}/data.bin]" in shown

    missing = parley("prompt", "--attach", "gone.txt", "hi", cwd=workspace, env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "parley: cannot attach gone.txt: No such file or directory"


def test_a_plan_is_shown_as_it_is_ticked_off(workspace: Path, env: dict[str, str]) -> None:
    run = parley("prompt", 'Make a plan "Read it", "Fix it"', cwd=workspace, env=env)
    assert run.returncode == 0, run.stderr
    shown = run.stdout
    first = shown.index("[plan] 0 of 2 done\n  [>] Read it\n  [ ] Fix it\n")
    second = shown.index("[plan] 1 of 2 done\n  [x] Read it\n  [>] Fix it\n")
    last = shown.index("[plan] 2 of 2 done\n  [x] Read it\n  [x] Fix it\n")
    assert first < second < last


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
    run = parley("--provider", "bard", "prompt", "hi", cwd=workspace, env=env)
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert "invalid choice: 'bard' (choose from 'openai', 'openai-responses'," in line
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


def _telling_a_story(workspace: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`parley prompt` once the answer to a long story has begun streaming."""
    process = subprocess.Popen(
        [str(PARLEY), "prompt", "Tell me a long story"],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("[thinking]"):
            break
    return process


def test_ctrl_c_cancels_the_turn(workspace: Path, env: dict[str, str]) -> None:
    process = _telling_a_story(workspace, env)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    rest, errors = process.communicate(timeout=10)
    assert process.returncode == 130, errors
    assert "cancelling the turn" in rest
    assert "turn ended: cancelled" in rest


def test_a_turn_left_running_is_followed_live_by_parley_attach(
    workspace: Path, env: dict[str, str], tmp_path: Path, machine: Machine
) -> None:
    process = _telling_a_story(workspace, env)
    # The terminal closes: the CLI and its shim die, the turn runs on.
    process.kill()
    process.communicate(timeout=10)
    (session_id,) = [folder.name for folder in (tmp_path / "home" / "sessions").iterdir()]
    (daemon,) = machine.daemons()

    followed = parley("attach", session_id, cwd=tmp_path, env=env)
    assert followed.returncode == 0, followed.stderr
    shown = followed.stdout
    assert shown.count("> Tell me a long story") == 1
    story = plan_reply({"messages": [{"role": "user", "content": "Tell me a long story"}]})
    assert story.content[-1].strip() in shown
    assert "[usage] " in shown.splitlines()[-1]  # followed to the turn's end
    assert machine.daemons() == [daemon]  # the same daemon ran it all

    again = parley("attach", session_id, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("> Tell me a long story") == 1


def test_standalone_runs_a_daemon_of_its_own(
    workspace: Path, env: dict[str, str], machine: Machine
) -> None:
    run = parley("--standalone", "prompt", "Hi", cwd=workspace, env=env)
    assert run.returncode == 0, run.stderr
    assert machine.daemons() == [] and machine.sockets() == []


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


DELEGATE = 'Delegate "Read README.md and summarize it" and "delegate `list the files`"'
SUB_AGENT_LINE = re.compile(r"^(?P<indent>(?:  )+)\[(?P<label>[^\]]+)\](?: (?P<text>.*))?$")


def by_conversation(output: str) -> dict[str, tuple[int, list[str]]]:
    """Each labelled conversation's depth (from its indent) and lines, its label off;
    the root's lines, unlabelled, under ""."""
    conversations: dict[str, tuple[int, list[str]]] = {"": (0, [])}
    for line in output.splitlines():
        match = SUB_AGENT_LINE.match(line)
        if match is None:
            assert not line.startswith(" ["), line  # a label must be one of a known depth
            conversations[""][1].append(line)
            continue
        depth = len(match["indent"]) // 2
        known_depth, lines = conversations.setdefault(match["label"], (depth, []))
        assert known_depth == depth, line
        lines.append(match["text"] or "")
    return conversations


def has_line(lines: list[str], pattern: str) -> bool:
    return any(re.fullmatch(pattern, line) for line in lines)


def assert_sub_agents_nested(output: str) -> None:
    conversations = by_conversation(output)
    assert set(conversations) == {
        "",
        "Read README.md and summarize it",
        "delegate `list the files`",
        "list the files",
    }
    _, root = conversations[""]
    reader_depth, reader = conversations["Read README.md and summarize it"]
    lister_depth, lister = conversations["delegate `list the files`"]
    grandchild_depth, grandchild = conversations["list the files"]
    assert (reader_depth, lister_depth, grandchild_depth) == (1, 1, 2)

    # Each conversation's own words, whole lines of their own: none run into another's.
    scripted = (
        "I'm **Parley's scripted offline model**: a local stand-in that follows a script, "
        "not a real LLM, so everything below was decided by keywords in your message."
    )
    for lines in (root, reader, lister, grandchild):
        assert scripted in lines
    assert "I'll delegate this to sub-agents, in parallel." in root
    assert reader[0] == "> Read README.md and summarize it"
    assert has_line(reader, r"\[tool\] Read README\.md \.\.\. completed \(.+\)"), reader
    assert '- **First heading:** "Harbour"' in reader
    assert lister[0] == "> delegate `list the files`"
    assert "I'll delegate this to a sub-agent, in parallel." in lister
    assert grandchild[0] == "> list the files"
    assert has_line(grandchild, r"\[tool\] List \. \.\.\. completed \(.+\)"), grandchild
    assert "README.md" in grandchild

    # A parent's `subagent` call is reported once its sub-agent has said everything.
    lines = output.splitlines()
    ended = lines.index(next(x for x in lines if x.startswith("[tool] Sub-agent: Read README")))
    assert not any(x.startswith("  [Read README.md and summarize it]") for x in lines[ended:])
    # The root's answer quotes its sub-agents' answers, unlabelled.
    assert "## Sub-agent: Read README.md and summarize it" in root
    # One usage line, the root's, once everyone is done: the sub-agents' are not shown.
    [usage] = [x for x in lines if "[usage]" in x]
    assert usage.startswith("[usage] ")
    assert lines.index(usage) > max(
        n for n, x in enumerate(lines) if SUB_AGENT_LINE.match(x) is not None
    )


def test_sub_agents_are_nested_in_the_plain_output_live_and_replayed(
    workspace: Path, env: dict[str, str], tmp_path: Path
) -> None:
    run = parley("prompt", DELEGATE, cwd=workspace, env=env)
    assert run.returncode == 0, run.stderr
    assert_sub_agents_nested(run.stdout)

    session_match = SESSION_LINE.search(run.stdout)
    assert session_match, run.stdout
    shown = parley("show", session_match.group(1), cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert_sub_agents_nested(shown.stdout)


def test_on_a_terminal_sub_agents_are_drawn_inside_their_calls(
    workspace: Path, env: dict[str, str]
) -> None:
    output = on_terminal([str(PARLEY), "prompt", DELEGATE], cwd=workspace, env=env)
    lines = output.splitlines()
    assert "  ┃ > Read README.md and summarize it" in lines
    assert "  ┃   ┃ > list the files" in lines  # the grandchild, inside its parent's call
    assert not any(line.startswith("> ") for line in lines)  # no sub-agent's prompt at the top
