"""The prefix of a shell command: what an "always" answer to a command covers.

"Always allow `git status`" must hold for `git status -s`, never for `git push`,
and never for `git status; rm -rf ~`. So a command has a prefix only when it is
one simple command that the shell runs as its words say:

- nothing else runs with it: no `;`, `&`, `|`, `(`, `)`, `<` or `>` outside
  quotes (lists, pipelines, background jobs, subshells, redirections), no `$` or
  backquote anywhere (expansions, command substitutions), no second line;
- its first word is the program, not a variable assignment (`PATH=. git status`
  runs another git);
- the program is not one whose job is to run another command (`sudo`, `env`,
  `xargs`, `eval`, ...): "always allow `sudo`" would allow everything.

The prefix is then the program as written; for programs whose first argument
says what runs (`git status`, `cargo build`, `python script.py`), also that
argument; and for their subcommands that run a script or tool named next
(`npm run build`, `uv run pytest`), that name too. A word that should say what
runs but is a flag (`git -C sub status`, `python -m pytest`) leaves the command
without a prefix. Two commands are covered by the same answer exactly when their
prefixes are equal: `ls -la` has the prefix `ls` of `ls`; `git` alone has the
prefix `git`, which no `git status` has.
"""

from __future__ import annotations

import re
import shlex

# Programs whose first argument names the subcommand, script or package that runs.
SUBCOMMAND_PROGRAMS = frozenset(
    {
        *("git", "hg", "svn", "gh", "glab"),
        *("npm", "npx", "pnpm", "pnpx", "yarn", "bun", "bunx", "deno", "node"),
        *("python", "pip", "uv", "uvx", "poetry", "pipenv", "conda", "hatch", "pdm", "tox"),
        *("cargo", "rustup", "go", "dotnet", "mvn", "gradle", "make", "just", "bazel"),
        *("ruby", "gem", "bundle", "rake", "perl", "php", "composer", "mix", "swift"),
        *("docker", "podman", "kubectl", "helm", "terraform", "aws", "gcloud", "az"),
        *("systemctl", "brew", "apt", "apt-get", "dnf", "yum", "pacman"),
        *("sh", "bash", "zsh"),
    }
)
# Their subcommands that run what the next word names (`npm run build`, `uv run pytest`).
RUNNER_SUBCOMMANDS = frozenset({"run", "exec", "x", "dlx"})
# Programs, shell keywords and builtins that run the command in their arguments.
RUNS_ANOTHER_COMMAND = frozenset(
    {
        *("sudo", "doas", "su", "env", "xargs", "nohup", "nice", "ionice", "stdbuf", "chroot"),
        *("time", "timeout", "watch", "exec", "eval", "command", "builtin", "source", "."),
        *("!", "{", "coproc"),
    }
)

_OPERATORS = frozenset("();<>|&")
_NEVER_SIMPLE = ("$", "`", "\n", "\r")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def command_prefix(command: str) -> str | None:
    """The command's prefix, its words quoted as the shell reads them; None if
    it has none (see the module's docstring)."""
    words = _simple_words(command)
    if not words or _ASSIGNMENT.match(words[0]):
        return None
    program = _family(words[0])
    if program in RUNS_ANOTHER_COMMAND:
        return None
    length = 1
    if program in SUBCOMMAND_PROGRAMS:
        length = 3 if len(words) > 1 and words[1] in RUNNER_SUBCOMMANDS else 2
    prefix = words[:length]
    if any(word.startswith(("-", "+")) for word in prefix[1:]):
        return None
    return shlex.join(prefix)


def _simple_words(command: str) -> list[str] | None:
    """The words of a command that is one simple command; None for anything else."""
    if any(character in command for character in _NEVER_SIMPLE):
        return None
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    # `#` starts a comment only at the start of a word in sh; shlex would cut
    # `status#; rm` at the `#` and miss the `;`.
    lexer.commenters = ""
    try:
        words = list(lexer)
    except ValueError:  # an unclosed quote
        return None
    # A quoted operator (`echo "|"`) reads like a real one here: it only ever
    # costs a question.
    if any(word and set(word) <= _OPERATORS for word in words):
        return None
    return words


def _family(program: str) -> str:
    """`/usr/bin/python3.12` -> `python`: a program's name without its folder and version."""
    return program.rsplit("/", 1)[-1].rstrip("0123456789.") or program
