"""The scripted model's decisions, without any HTTP: scenario by scenario."""

from __future__ import annotations

import errno
import os
from typing import Any

import msgspec
import pytest

from parleyd.agent import WITHDRAWN
from parleyd.offline.script import (
    BENCH_DELTA,
    INTRO,
    MODEL_ID,
    STORY_DELAY,
    Reply,
    classify_tool_result,
    plan_reply,
)
from parleyd.tools.paths import fs_error
from parleyd.tools.permission import DECLINED

ALL_TOOLS = ("read_file", "list_directory", "search_text", "write_file", "run_shell")


def tools(*names: str) -> list[dict[str, Any]]:
    return [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in names
    ]


def ask(prompt: str, offered: tuple[str, ...] = ALL_TOOLS, **extra: Any) -> Reply:
    request = {"model": MODEL_ID, "messages": [{"role": "user", "content": prompt}], **extra}
    if offered:
        request["tools"] = tools(*offered)
    return plan_reply(request)


def follow_up(prompt: str, first: Reply, result: str) -> Reply:
    """The request a client sends after running `first`'s tool call and getting `result`."""
    (call,) = first.tool_calls
    messages = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": prompt},
        {
            "role": "assistant",
            "content": first.text,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": result},
    ]
    return plan_reply({"model": MODEL_ID, "messages": messages, "tools": tools(*ALL_TOOLS)})


def test_first_answer_says_it_is_scripted_and_later_ones_do_not() -> None:
    first = ask("Hello there")
    assert first.text.startswith(INTRO)
    assert "scripted offline model" in INTRO
    later = plan_reply(
        {
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": first.text},
                {"role": "user", "content": "Hello again"},
            ]
        }
    )
    assert not later.text.startswith(INTRO)


def test_unknown_prompt_explains_what_it_can_show_with_markdown() -> None:
    reply = ask("What can you do?")
    assert reply.thinking_text
    assert reply.tool_calls == ()
    assert reply.finish_reason == "stop"
    assert "## " in reply.text and "\n- " in reply.text and "`README.md`" in reply.text


def test_deltas_are_word_sized_and_join_back_exactly() -> None:
    reply = ask("What can you do?")
    assert len(reply.content) > 20
    assert all(piece.strip() and " " not in piece.strip() for piece in reply.content[1:])
    assert "".join(reply.content) == reply.text


def test_read_calls_read_file_with_thinking_then_answers_from_the_file() -> None:
    prompt = "Please summarize docs/guide.md for me."
    first = ask(prompt)
    assert first.thinking_text == "The user wants me to look at docs/guide.md. I'll read it first."
    assert first.finish_reason == "tool_calls"
    (call,) = first.tool_calls
    assert call.name == "read_file"
    assert msgspec.json.decode(call.arguments_json) == {"path": "docs/guide.md"}

    file_text = "intro text\n# Getting started\n\nStep one.\nStep two.\n"
    answer = follow_up(prompt, first, file_text)
    assert answer.tool_calls == ()
    assert answer.finish_reason == "stop"
    assert "**Lines:** 5" in answer.text
    assert '"Getting started"' in answer.text


def test_read_defaults_to_readme_and_quotes_the_first_line_without_heading() -> None:
    first = ask("look at the readme")
    assert first.tool_calls[0].arguments == {"path": "README.md"}
    # Numbered lines, as read tools often return them: the quote is the text itself.
    answer = follow_up("look at the readme", first, "     1\tParley is a daemon.\n     2\tMore.\n")
    assert '"Parley is a daemon."' in answer.text


def test_read_answer_ignores_the_read_tools_notices() -> None:
    first = ask("read big.md")
    result = (
        "# Big\nline two\n[showing lines 1-2; the file continues: call read_file with offset=3]"
    )
    answer = follow_up("read big.md", first, result)
    assert "**Lines:** 2" in answer.text


def test_write_asks_for_write_file_with_content_from_the_prompt() -> None:
    prompt = 'Write a note saying "ship the demo on Friday"'
    first = ask(prompt)
    (call,) = first.tool_calls
    assert call.name == "write_file"
    assert call.arguments["path"] == "NOTES.md"
    assert "ship the demo on Friday" in call.arguments["content"]

    written = follow_up(prompt, first, "Wrote 5 lines to NOTES.md")
    assert "`NOTES.md` is written" in written.text


def test_declined_write_is_reported_plainly_without_retrying() -> None:
    prompt = "create a note in todo.txt"
    first = ask(prompt)
    assert first.tool_calls[0].arguments["path"] == "todo.txt"
    declined = follow_up(prompt, first, DECLINED)
    assert declined.tool_calls == ()
    assert declined.finish_reason == "stop"
    assert "You declined the `write_file` call" in declined.text
    assert "failed" not in declined.text


def test_failed_tool_is_reported_with_its_error() -> None:
    first = ask("read missing.md")
    failed = follow_up("read missing.md", first, "Error: missing.md: no such file")
    assert failed.tool_calls == ()
    assert "`read_file` failed: Error: missing.md: no such file." in failed.text


def test_a_write_the_filesystem_refused_is_a_failure_not_a_refusal() -> None:
    prompt = "create a note in todo.txt"
    first = ask(prompt)
    denied = follow_up(prompt, first, "cannot write todo.txt: Permission denied")
    assert "`write_file` failed: cannot write todo.txt: Permission denied." in denied.text
    assert "declined" not in denied.text


def test_run_calls_run_shell_and_summarises_its_output() -> None:
    first = ask("Run `git status` please")
    assert first.tool_calls[0].name == "run_shell"
    assert first.tool_calls[0].arguments == {"command": "git status"}
    assert ask("use the shell").tool_calls[0].arguments == {"command": "ls"}

    output = "\n".join(f"file{i}.txt" for i in range(8))
    answer = follow_up("Run `git status` please", first, output)
    assert "8 lines came back" in answer.text
    assert "```\nfile0.txt" in answer.text and "3 more lines" in answer.text


def test_keywords_in_file_names_and_quotes_do_not_pick_the_scenario() -> None:
    assert ask("Read NOTES.md").tool_calls[0].name == "read_file"
    note = ask('write a note saying "read README.md and run the tests"').tool_calls[0]
    assert note.name == "write_file"
    assert note.arguments["path"] == "NOTES.md"


def test_list_and_search_call_their_tools() -> None:
    assert ask("list the files").tool_calls[0].name == "list_directory"
    search = ask('find "TODO:" in the code').tool_calls[0]
    assert (search.name, search.arguments) == ("search_text", {"pattern": "TODO:"})


def test_no_tool_call_when_the_request_does_not_offer_that_tool() -> None:
    for prompt in ("read README.md", "write a note", "run ls", "list files"):
        reply = ask(prompt, offered=("search_text",))
        assert reply.tool_calls == ()
        assert reply.finish_reason == "stop"
        assert "not among the tools" in reply.text
    assert ask("read README.md", tool_choice="none").tool_calls == ()


def test_story_is_long_and_paced_for_cancelling() -> None:
    reply = ask("Tell me a long story")
    assert len(reply.content) >= 300
    assert reply.delay == STORY_DELAY > 0
    assert reply.tool_calls == ()


@pytest.mark.parametrize("count", [1, 2000])
def test_bench_streams_exactly_n_tiny_deltas_without_thinking_or_delay(count: int) -> None:
    reply = ask(f"bench {count}")
    assert reply.content == (BENCH_DELTA,) * count
    assert reply.thinking == ()
    assert reply.delay == 0
    assert reply.usage.completion_tokens > 0


def test_usage_is_estimated_from_characters() -> None:
    reply = ask("read README.md")
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.reasoning_tokens == -(-len(reply.thinking_text) // 4)
    assert reply.usage.completion_tokens > reply.usage.reasoning_tokens
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_tool_call_ids_stay_unique_across_turns() -> None:
    first = ask("read README.md")
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "read README.md"},
        {"role": "assistant", "content": "", "tool_calls": []},
        {"role": "user", "content": [{"type": "text", "text": "read README.md"}]},
    ]
    second = plan_reply({"messages": messages, "tools": tools(*ALL_TOOLS)})
    assert second.tool_calls[0].id != first.tool_calls[0].id


def test_argument_pieces_join_to_the_arguments_json() -> None:
    (call,) = ask("write a note").tool_calls
    pieces = call.argument_pieces()
    assert len(pieces) == 3
    assert "".join(pieces) == call.arguments_json


@pytest.mark.parametrize(
    "error",
    [errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.ENOTDIR, errno.EEXIST],
    ids=errno.errorcode.get,
)
def test_every_filesystem_failure_of_a_write_is_an_error(error: int) -> None:
    # Exactly the text Parley's write_file gives the model for that OSError.
    result = str(fs_error("write", "NOTES.md", OSError(error, os.strerror(error))))
    assert classify_tool_result(result) == "error"


@pytest.mark.parametrize(
    ("content", "outcome"),
    [
        (DECLINED, "declined"),
        ("Permission denied by the user", "declined"),
        ("Tool call declined.", "declined"),
        ("Error: the user rejected this tool call", "declined"),
        ("Permission denied", "error"),
        ("Connection refused", "error"),
        ("Error: path is outside the workspace", "error"),
        ("cannot read missing.md: No such file or directory", "error"),
        ("docs is a directory; use list_directory to see its entries", "error"),
        ("Cancelled by the user before it finished.", "error"),
        (WITHDRAWN, "error"),
        ("Not run: the model refused to go on.", "error"),
        ("missing.md: no such file", "error"),
        ("# Security\n" + "Requests are denied unless allowed. " * 20, "ok"),
        ("total 4\nREADME.md", "ok"),
    ],
)
def test_tool_results_are_classified(content: str, outcome: str) -> None:
    assert classify_tool_result(content) == outcome


def test_a_reply_cut_short_goes_on_where_it_stopped() -> None:
    story = [{"role": "user", "content": "Tell me a long story"}]
    whole = plan_reply({"messages": story})
    begun = "".join(whole.content[:7])
    rest = plan_reply({"messages": [*story, {"role": "assistant", "content": begun}]})
    # Its thinking was done; the first answer's introduction is not said twice.
    assert rest.thinking == ()
    assert begun + "".join(rest.content) == "".join(whole.content)
    # An answer that is not this reply begun gets the reply whole.
    other = plan_reply({"messages": [*story, {"role": "assistant", "content": "Once upon"}]})
    assert other.content == whole.content
