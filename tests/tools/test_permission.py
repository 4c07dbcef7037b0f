"""The permission policy with the real built-in tools: what each mode asks,
refuses and runs, "always" answers per tool and per command prefix, the
defaults of `config.toml`, and the order in which they apply."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from parleyd.tools.base import Tool
from parleyd.tools.files import ReadFile, WriteFile
from parleyd.tools.permission import (
    DECLINED,
    MODE_DESCRIPTIONS,
    READ_ONLY_REFUSAL,
    Decision,
    PermissionMode,
    PermissionPolicy,
    Scope,
    mode_named,
)
from parleyd.tools.shell import RunShell
from parleyd.tools.subagent import Subagent

ASK, ACCEPT_EDITS, READ_ONLY, FULL_AUTO = PermissionMode
READ, WRITE, SHELL = ReadFile(), WriteFile(), RunShell()
FILE = {"path": "README.md"}
NOTE = {"path": "NOTES.md", "content": "hi\n"}


def command(text: str) -> dict[str, Any]:
    return {"command": text}


def outcome(policy: PermissionPolicy, tool: Tool, arguments: Mapping[str, Any]) -> bool | None:
    """True: runs without asking; False: refused without asking; None: asks."""
    decision = policy.decide(tool, arguments)
    return None if decision is None else decision.allowed


def test_modes_have_stable_ids_and_words_for_the_picker() -> None:
    assert [mode.value for mode in PermissionMode] == [
        "ask",
        "accept_edits",
        "read_only",
        "full_auto",
    ]
    assert list(MODE_DESCRIPTIONS) == list(PermissionMode)
    assert all(name and description for name, description in MODE_DESCRIPTIONS.values())
    assert mode_named("read_only") is READ_ONLY
    with pytest.raises(ValueError) as caught:
        mode_named("readonly")
    assert str(caught.value) == (
        "unknown mode 'readonly' (did you mean 'read_only'?); "
        "the modes are ask, accept_edits, read_only, full_auto"
    )


@pytest.mark.parametrize(
    ("mode", "read", "write", "shell"),
    [
        (ASK, True, None, None),
        (ACCEPT_EDITS, True, True, None),
        (READ_ONLY, True, False, False),
        (FULL_AUTO, True, True, True),
    ],
)
def test_what_each_mode_runs_refuses_and_asks(
    mode: PermissionMode, read: bool, write: bool | None, shell: bool | None
) -> None:
    policy = PermissionPolicy(mode)
    assert outcome(policy, READ, FILE) is read
    assert outcome(policy, WRITE, NOTE) is write
    assert outcome(policy, SHELL, command("ls")) is shell
    # A sub-agent needs no permission in any mode: its own calls ask as theirs do.
    assert outcome(policy, Subagent(), {"task": "look around"}) is True


def test_read_only_refuses_with_a_reason_for_the_model_over_every_allow() -> None:
    policy = PermissionPolicy(
        READ_ONLY,
        defaults={"run_shell": "allow", "write_file": "allow"},
        remembered={Scope("run_shell", "ls"): True, Scope("write_file"): True},
    )
    assert policy.decide(SHELL, command("ls")) == Decision(False, READ_ONLY_REFUSAL)
    assert policy.decide(WRITE, NOTE) == Decision(False, READ_ONLY_REFUSAL)
    assert "the session is in read-only mode" in READ_ONLY_REFUSAL


@pytest.mark.parametrize("mode", list(PermissionMode))
def test_a_deny_holds_in_every_mode(mode: PermissionMode) -> None:
    policy = PermissionPolicy(
        mode, defaults={"read_file": "deny"}, remembered={Scope("write_file"): False}
    )
    assert policy.decide(READ, FILE) == Decision(
        False, "Refused without asking: the user's configuration denies read_file."
    )
    assert outcome(policy, WRITE, NOTE) is False


def test_an_always_answer_outranks_the_configured_default() -> None:
    policy = PermissionPolicy(
        defaults={"run_shell": "deny", "write_file": "allow"},
        remembered={Scope("run_shell", "git status"): True, Scope("write_file"): False},
    )
    assert outcome(policy, SHELL, command("git status -s")) is True
    assert outcome(policy, SHELL, command("git push")) is False
    assert policy.decide(WRITE, NOTE) == Decision(False, DECLINED)


def test_configured_defaults_decide_before_the_mode() -> None:
    policy = PermissionPolicy(defaults={"read_file": "ask", "run_shell": "allow"})
    assert outcome(policy, READ, FILE) is None
    assert outcome(policy, SHELL, command("ls | wc -l")) is True
    policy.mode = ACCEPT_EDITS
    assert outcome(policy, READ, FILE) is None  # a read is not an edit
    policy.mode = FULL_AUTO
    assert outcome(policy, READ, FILE) is True  # in full auto nothing asks


def test_always_answers_to_commands_hold_per_prefix() -> None:
    policy = PermissionPolicy()
    options = policy.options(SHELL, command("git status"))
    assert [(o.option_id, o.name, o.kind) for o in options] == [
        ("allow_once", "Allow once", "allow_once"),
        ("allow_always", "Always allow `git status`", "allow_always"),
        ("reject_once", "Reject", "reject_once"),
        ("reject_always", "Always reject `git status`", "reject_always"),
    ]
    allowed = policy.answer(SHELL, command("git status"), "allow_always")
    assert allowed == Decision(True, lasting=Scope("run_shell", "git status"))
    assert outcome(policy, SHELL, command("git status -s")) is True
    assert outcome(policy, SHELL, command("git push")) is None
    assert outcome(policy, SHELL, command("git status; git push")) is None

    rejected = policy.answer(SHELL, command("git push --force"), "reject_always")
    assert rejected == Decision(False, DECLINED, lasting=Scope("run_shell", "git push"))
    assert policy.decide(SHELL, command("git push origin")) == Decision(False, DECLINED)


def test_a_command_without_a_prefix_is_answered_once_at_a_time() -> None:
    policy = PermissionPolicy()
    piped = command("ls | head")
    assert [option.option_id for option in policy.options(SHELL, piped)] == [
        "allow_once",
        "reject_once",
    ]
    # An "always" it was not offered is no answer to run it on.
    assert policy.answer(SHELL, piped, "allow_always") == Decision(False, DECLINED)
    assert outcome(policy, SHELL, piped) is None


def test_a_tool_wide_answer_to_commands_from_an_older_log_still_holds() -> None:
    policy = PermissionPolicy(remembered={Scope("run_shell"): True})
    assert outcome(policy, SHELL, command("ls | head")) is True


def test_other_tools_are_answered_per_tool() -> None:
    policy = PermissionPolicy()
    assert [option.name for option in policy.options(WRITE, NOTE)] == [
        "Allow once",
        "Always allow",
        "Reject",
        "Always reject",
    ]
    assert policy.answer(WRITE, NOTE, "allow_once") == Decision(True)
    assert outcome(policy, WRITE, NOTE) is None  # once means once
    assert policy.answer(WRITE, NOTE, "reject_once") == Decision(False, DECLINED)
    assert outcome(policy, WRITE, NOTE) is None
    allowed = policy.answer(WRITE, NOTE, "allow_always")
    assert allowed == Decision(True, lasting=Scope("write_file"))
    assert outcome(policy, WRITE, {"path": "OTHER.md", "content": ""}) is True
    assert outcome(policy, SHELL, command("ls")) is None


def test_an_option_that_was_not_offered_is_a_rejection_and_not_remembered() -> None:
    policy = PermissionPolicy()
    assert policy.answer(SHELL, command("ls"), "allow_forever_please") == Decision(False, DECLINED)
    assert outcome(policy, SHELL, command("ls")) is None
