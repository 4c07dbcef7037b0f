"""The prefix an "always" answer to a shell command covers, and the commands
that have none because more could run than their first words say."""

from __future__ import annotations

import pytest

from parleyd.tools.command_prefix import command_prefix


@pytest.mark.parametrize(
    ("command", "prefix"),
    [
        ("git status", "git status"),
        ("git status -s", "git status"),
        ("  git   status   --porcelain ", "git status"),
        ("git push origin main", "git push"),
        ("git", "git"),
        ("ls", "ls"),
        ("ls -la src", "ls"),
        ("cat README.md", "cat"),
        ("npm test", "npm test"),
        ("npm run build -- --watch", "npm run build"),
        ("npm run", "npm run"),
        ("uv run pytest -x tests", "uv run pytest"),
        ("cargo build --release", "cargo build"),
        ("python3.12 script.py --fast", "python3.12 script.py"),
        ("/usr/bin/git log -3", "/usr/bin/git log"),
        ('git commit -m "fix; then | more > less"', "git commit"),
        ("npm run 'my script' now", "npm run 'my script'"),
        ('git commit -m ""', "git commit"),
        (r"git st\;x", "git 'st;x'"),
    ],
)
def test_the_prefix_is_the_program_and_what_it_runs(command: str, prefix: str) -> None:
    assert command_prefix(command) == prefix


@pytest.mark.parametrize(
    "command",
    [
        # More than one command, or input and output elsewhere.
        "git status; rm -rf ~",
        "git status && git push",
        "git status || true",
        "git log | head",
        "sleep 100 &",
        "(git status)",
        "git status > out.txt",
        "git status 2>&1",
        "sort < names.txt",
        "git status#; rm -rf ~",
        "git status\nrm -rf ~",
        'echo "|"',
        # What runs is only known once the shell has expanded it.
        "echo $HOME",
        "git log $(cat ref)",
        "echo `id`",
        "'$GIT' status",
        # Another program than the word says, or any program at all.
        "PATH=. git status",
        "sudo rm -rf /",
        "env git status",
        "xargs rm",
        "! git status",
        "eval git status",
        ". ./setup.sh",
        # A flag where the subcommand or script would be.
        "git -C sub status",
        "python -m pytest",
        "npm run --silent build",
        "cargo +nightly build",
        # Not a command.
        'echo "unclosed',
        "",
        "   ",
    ],
)
def test_commands_without_a_prefix(command: str) -> None:
    assert command_prefix(command) is None
