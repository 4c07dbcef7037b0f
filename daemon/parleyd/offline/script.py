"""The scripted offline model's decisions: a Chat Completions request in, a reply plan out.

Pure and deterministic (no I/O, no clock, no randomness) so the same conversation
always gets the same answer, in tests and in the demo alike. The HTTP side lives in
`model_server.py`; this module only decides *what* to say and how fast.

It is a stand-in for a model, not a model: it picks a scenario from keywords in the
latest user message, and once tool results are back it answers from them and stops.
It says so in its first answer of every conversation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import msgspec

MODEL_ID = "parley-scripted"
INTRO = (
    "I'm **Parley's scripted offline model**: a local stand-in that follows a script, "
    "not a real LLM, so everything below was decided by keywords in your message."
)

# Seconds between two streamed deltas. Slow enough that a client visibly streams,
# and the story slow enough that a human (or the demo) can cancel it midway.
CHAT_DELAY = 0.01
STORY_DELAY = 0.015
# `bench N` is for measuring Parley, not for people: cap it so a typo cannot make
# the server stream for minutes.
MAX_BENCH_DELTAS = 200_000
BENCH_DELTA = "tok "
SUBAGENT = "subagent"

FinishReason = Literal["stop", "tool_calls"]
Outcome = Literal["ok", "declined", "error"]


@dataclass(frozen=True)
class PlannedToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any]

    @property
    def arguments_json(self) -> str:
        return msgspec.json.encode(self.arguments).decode()

    def argument_pieces(self, count: int = 3) -> tuple[str, ...]:
        """The arguments JSON cut into `count` fragments, as real models stream them:
        clients must join the fragments before parsing."""
        text = self.arguments_json
        size = max(1, -(-len(text) // count))
        return tuple(text[i : i + size] for i in range(0, len(text), size))


@dataclass(frozen=True)
class PlannedUsage:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Reply:
    """One model response: `thinking` and `content` are the deltas to stream, in order,
    with `delay` seconds between any two of them."""

    thinking: tuple[str, ...]
    content: tuple[str, ...]
    tool_calls: tuple[PlannedToolCall, ...]
    finish_reason: FinishReason
    delay: float
    usage: PlannedUsage

    @property
    def thinking_text(self) -> str:
        return "".join(self.thinking)

    @property
    def text(self) -> str:
        return "".join(self.content)


@dataclass(frozen=True)
class ToolOutcome:
    """A tool call of the current turn with what came back for it."""

    name: str
    arguments: Mapping[str, Any]
    content: str
    outcome: Outcome


@dataclass(frozen=True)
class _Draft:
    thinking: str
    content: tuple[str, ...]
    tool_calls: tuple[PlannedToolCall, ...] = ()
    delay: float = CHAT_DELAY


@dataclass(frozen=True)
class Conversation:
    """What the script needs to know about a request, extracted once."""

    user_text: str
    offered_tools: frozenset[str]
    first_answer: bool
    # Tool calls of the assistant's last message with their results, when the
    # request ends with those results; empty when it ends with a user message.
    tool_outcomes: tuple[ToolOutcome, ...]
    # Numbers this reply's tool call ids so they stay unique in the conversation,
    # a compacted one too.
    assistant_turns: int
    # The text of the assistant's last message when the request ends with it:
    # a reply cut short (a paused turn, resumed), which the script goes on with.
    cut_short: str | None = None

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> Conversation:
        messages: Sequence[Mapping[str, Any]] = [
            m for m in request.get("messages") or () if isinstance(m, Mapping)
        ]
        user_text = next(
            (_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
            "",
        )
        # tool_choice "none" is the caller saying no tools this time, whatever it lists.
        offered = (
            frozenset()
            if request.get("tool_choice") == "none"
            else frozenset(_tool_names(request.get("tools") or ()))
        )
        cut_short = None
        if messages and messages[-1].get("role") == "assistant":
            cut_short = _text_of(messages[-1].get("content"))
        # The reply cut short is this one, begun: it is not an earlier answer.
        assistant_turns = sum(1 for m in messages if m.get("role") == "assistant")
        assistant_turns -= cut_short is not None
        return cls(
            user_text=user_text,
            offered_tools=offered,
            first_answer=assistant_turns == 0,
            tool_outcomes=_trailing_tool_outcomes(messages),
            assistant_turns=max(assistant_turns, _last_call_number(messages)),
            cut_short=cut_short,
        )


def plan_reply(request: Mapping[str, Any]) -> Reply:
    """Decide the reply to one Chat Completions request body (already parsed)."""
    conversation = Conversation.from_request(request)
    if _SUMMARY.match(conversation.user_text):
        draft = _summary(request)
    elif conversation.tool_outcomes:
        draft = _after_tools(conversation)
    else:
        bench = _BENCH.search(conversation.user_text)
        if bench:
            draft = _bench(min(int(bench.group(1)), MAX_BENCH_DELTAS))
        else:
            draft = _pick_scenario(conversation.user_text)(conversation)
    if conversation.cut_short is not None:
        draft = _going_on(draft, conversation.cut_short)
    return _finish(draft, request)


def _going_on(draft: _Draft, said: str) -> _Draft:
    """The rest of the reply that `said` began, its thinking done; the reply
    whole if it did not begin it."""
    begun = ""
    for count, delta in enumerate((*draft.content, "")):
        if begun == said:
            return replace(draft, thinking="", content=draft.content[count:])
        if len(begun) > len(said):
            break
        begun += delta
    return draft


# ---------------------------------------------------------------------------
# Reading the request


def _text_of(content: Any) -> str:
    """Message content as text: OpenAI allows a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def _tool_names(tools: Sequence[Any]) -> list[str]:
    return [
        str(tool["function"]["name"])
        for tool in tools
        if isinstance(tool, Mapping)
        and isinstance(tool.get("function"), Mapping)
        and "name" in tool["function"]
    ]


# The ids `_call` gives: a compaction that replaced the responses before them
# leaves their numbers in the calls it kept, which later ids must not take again.
_CALL_ID = re.compile(r"call_scripted_(\d+)_\d+")


def _last_call_number(messages: Sequence[Mapping[str, Any]]) -> int:
    numbers = (
        int(match.group(1))
        for message in messages
        for call in message.get("tool_calls") or ()
        if isinstance(call, Mapping) and (match := _CALL_ID.fullmatch(str(call.get("id"))))
    )
    return max(numbers, default=0)


def _parse_arguments(text: Any) -> Mapping[str, Any]:
    try:
        value = msgspec.json.decode(text) if isinstance(text, str | bytes) else text
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, Mapping) else {}


def _trailing_tool_outcomes(messages: Sequence[Mapping[str, Any]]) -> tuple[ToolOutcome, ...]:
    results: dict[str, str] = {}
    index = len(messages)
    while index > 0 and messages[index - 1].get("role") == "tool":
        index -= 1
        message = messages[index]
        results[str(message.get("tool_call_id"))] = _text_of(message.get("content"))
    if not results or index == 0 or messages[index - 1].get("role") != "assistant":
        return ()
    outcomes = []
    for call in messages[index - 1].get("tool_calls") or ():
        if not isinstance(call, Mapping):
            continue
        function = call.get("function") or {}
        content = results.get(str(call.get("id")))
        outcomes.append(
            ToolOutcome(
                name=str(function.get("name", "")),
                arguments=_parse_arguments(function.get("arguments")),
                content=content or "no result came back for this call",
                outcome="error" if content is None else classify_tool_result(content),
            )
        )
    return tuple(outcomes)


# Chat Completions has no error flag on a tool message, so the outcome can only be
# read from the text. These match the phrasing of Parley's agent loop and tools
# ("The user declined this tool call.", "cannot write x: Permission denied",
# "Cancelled by the user ...") and the "Error: ..." prefix of other agents. Failures
# are short, so long outputs that merely mention such words (a README about
# permissions) stay "ok".
_REFUSAL = re.compile(
    r"\b(declined|denied|rejected|refused|not (allowed|permitted))\b", re.IGNORECASE
)
# Systems fail ("Permission denied", "Operation not permitted", "Connection refused");
# people decline. A refusal is a person's only when it names one, or says "declined".
_BY_A_PERSON = re.compile(r"\b(declined|user|you)\b", re.IGNORECASE)
_ERROR = re.compile(r"^\s*(\[?error\]?\b|failed\b|tool error\b)", re.IGNORECASE)
_SHORT_ERROR = re.compile(
    r"^\s*(cannot|can't|could not|unable to|cancelled|canceled|not run)\b"
    r"|\b(no such file|not found|does not exist|outside the workspace|is a directory"
    r"|is not a directory|is a binary file|past the end|does not occur|occurs \d+ times)\b",
    re.IGNORECASE,
)
_SHORT_RESULT = 300


def classify_tool_result(content: str) -> Outcome:
    short = len(content) <= _SHORT_RESULT
    refusal = short and _REFUSAL.search(content) is not None
    if refusal and _BY_A_PERSON.search(content):
        return "declined"
    if refusal or _ERROR.match(content) or (short and _SHORT_ERROR.search(content)):
        return "error"
    return "ok"


# ---------------------------------------------------------------------------
# Choosing a scenario from the user's words


_BENCH = re.compile(r"\bbench\s+(\d+)\b", re.IGNORECASE)
# What an agent asks when it compacts its history (Parley's words; others' alike).
_SUMMARY = re.compile(r"^\s*(write|give|provide) a summary of the conversation\b", re.IGNORECASE)
# Several files to read a response at a time, each after the last one's result.
_ONE_BY_ONE = re.compile(r"\b(one by one|one at a time)\b", re.IGNORECASE)
_FILE_NAME = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w-]+\.[A-Za-z0-9]{1,8})(?![\w/-])")
# Not single quotes: apostrophes ("don't", "I'd") would pair up across words.
_QUOTED = re.compile(r"`([^`]+)`|\"([^\"]+)\"|\u201c([^\u201d]+)\u201d")

Scenario = Callable[[Conversation], _Draft]


def _pick_scenario(text: str) -> Scenario:
    # Keywords count only in the user's own words, so "read NOTES.md" reads rather
    # than writes a note, and 'write "run tests"' writes rather than runs.
    words = _FILE_NAME.sub(" ", _without_quotes(text))
    for pattern, scenario in _SCENARIOS:
        if pattern.search(words):
            return scenario
    return _overview


def _without_quotes(text: str) -> str:
    return _QUOTED.sub(" ", text)


def _first_file_name(text: str, default: str) -> str:
    match = _FILE_NAME.search(text)
    return match.group(1) if match else default


def _first_quoted(text: str) -> str | None:
    match = _QUOTED.search(text)
    return next((group for group in match.groups() if group), None) if match else None


def _call(
    conversation: Conversation, name: str, arguments: Mapping[str, Any], index: int = 0
) -> PlannedToolCall:
    return PlannedToolCall(
        id=f"call_scripted_{conversation.assistant_turns + 1}_{index}",
        name=name,
        arguments=arguments,
    )


def _opening(conversation: Conversation, text: str) -> str:
    return f"{INTRO}\n\n{text}" if conversation.first_answer else text


def _tool_scenario(
    conversation: Conversation,
    name: str,
    arguments: Mapping[str, Any],
    thinking: str,
    text: str,
) -> _Draft:
    """A reply that calls one tool, or explains why it cannot when the request does
    not offer that tool (a model must never call a tool it was not given)."""
    if name not in conversation.offered_tools:
        return _Draft(
            thinking=f"{thinking} But this request offers no `{name}` tool.",
            content=_words(
                _opening(
                    conversation,
                    f"I would use the `{name}` tool for this, but it is not among the tools "
                    "this request offers, so I can only tell you what I would have done.",
                )
            ),
        )
    return _Draft(
        thinking=thinking,
        content=_words(_opening(conversation, text)),
        tool_calls=(_call(conversation, name, arguments),),
    )


def _read(conversation: Conversation) -> _Draft:
    path = _first_file_name(conversation.user_text, "README.md")
    return _tool_scenario(
        conversation,
        "read_file",
        {"path": path},
        thinking=f"The user wants me to look at {path}. I'll read it first.",
        text=f"Let me open `{path}` and see what it says.",
    )


def _next_read(conversation: Conversation) -> _Draft | None:
    """In "read a.md, b.md and c.md one by one", the read of the file after the
    one whose result just came back; None when that was the last, or failed."""
    if not _ONE_BY_ONE.search(conversation.user_text):
        return None
    match conversation.tool_outcomes:
        case (ToolOutcome(name="read_file", outcome="ok", arguments=arguments),):
            done = str(arguments.get("path"))
        case _:
            return None
    paths = _FILE_NAME.findall(conversation.user_text)
    if done not in paths or done == paths[-1]:
        return None
    path = paths[paths.index(done) + 1]
    return _tool_scenario(
        conversation,
        "read_file",
        {"path": path},
        thinking=f"That was {done}. The next file to read is {path}.",
        text=f"Next, `{path}`.",
    )


def _write(conversation: Conversation) -> _Draft:
    # The target is named outside the quoted note text, which may mention any file.
    path = _first_file_name(_without_quotes(conversation.user_text), "NOTES.md")
    body = _first_quoted(conversation.user_text) or conversation.user_text.strip()
    content = f"# Notes\n\n- {body}\n\n_Written by Parley's scripted offline model._\n"
    return _tool_scenario(
        conversation,
        "write_file",
        {"path": path, "content": content},
        thinking=f"The user wants a note. I'll write it to {path}, which needs their permission.",
        text=f"I'll write the note to `{path}`. You will be asked to allow the write.",
    )


def _edit(conversation: Conversation) -> _Draft:
    """`Replace "old" with "new" in FILE`: one exact edit, which asks permission."""
    old, new, *_ = [*_all_quoted(conversation.user_text), "", ""]
    path = _first_file_name(_without_quotes(conversation.user_text), "README.md")
    return _tool_scenario(
        conversation,
        "edit_file",
        {"path": path, "edits": [{"old_text": old, "new_text": new}]},
        thinking=f"An exact replacement in {path}: an edit, not a rewrite of the file.",
        text=f"I'll edit `{path}`. You will be asked to allow the change, shown as a diff.",
    )


_PLAN_STEPS = ("Look at the project", "Make the change", "Check the result")


def _plan(conversation: Conversation) -> _Draft:
    """`Make a plan "a", "b", "c"`: a plan of the quoted steps, worked through
    one `update_plan` call at a time (see `_next_plan_step`)."""
    steps = _all_quoted(conversation.user_text) or list(_PLAN_STEPS)
    return _plan_call(
        conversation,
        steps,
        done=0,
        thinking="A task of several steps: I'll keep a plan the user can follow.",
        text="Here is my plan; I'll tick the steps off as I go.",
    )


def _plan_call(
    conversation: Conversation, steps: Sequence[str], done: int, thinking: str, text: str
) -> _Draft:
    def status(index: int) -> str:
        return "completed" if index < done else "in_progress" if index == done else "pending"

    entries = [
        {"content": step, "status": status(index), "priority": "high" if index == 0 else "medium"}
        for index, step in enumerate(steps)
    ]
    return _tool_scenario(conversation, "update_plan", {"steps": entries}, thinking, text)


def _next_plan_step(conversation: Conversation) -> _Draft | None:
    """After a plan update, the next one: the step in progress done, the one
    after it begun; None once every step is completed."""
    match conversation.tool_outcomes:
        case (ToolOutcome(name="update_plan", outcome="ok", arguments=arguments),):
            entries = [e for e in arguments.get("steps", ()) if isinstance(e, Mapping)]
        case _:
            return None
    steps = [str(entry.get("content")) for entry in entries]
    done = sum(entry.get("status") == "completed" for entry in entries)
    if done >= len(steps):
        return None
    return _plan_call(
        conversation,
        steps,
        done=done + 1,
        thinking=f"{steps[done]}: done. On to the next step.",
        text=f"Done: {steps[done]}.",
    )


def _run(conversation: Conversation) -> _Draft:
    command = _first_quoted(conversation.user_text) or "ls"
    return _tool_scenario(
        conversation,
        "run_shell",
        {"command": command},
        thinking=f"The user wants a command run. `{command}` is harmless; it still needs consent.",
        text=f"I'll run `{command}` in the workspace. You will be asked to allow it.",
    )


def _search(conversation: Conversation) -> _Draft:
    pattern = _first_quoted(conversation.user_text) or "TODO"
    return _tool_scenario(
        conversation,
        "search_text",
        {"pattern": pattern},
        thinking=f"The user wants to find `{pattern}`. A text search over the workspace will do.",
        text=f"Searching the workspace for `{pattern}`.",
    )


def _list(conversation: Conversation) -> _Draft:
    return _tool_scenario(
        conversation,
        "list_directory",
        {"path": "."},
        thinking="The user wants to see the files. I'll list the workspace root.",
        text="Here is what the workspace holds; listing it now.",
    )


_STORY_CHARACTERS = ("the keeper", "the gull", "the fog", "the ship", "the lamp")
_STORY_BEATS = (
    "Night came early to the rock, and {who} watched the water turn from grey to ink.",
    "Somewhere past the reef a bell rang twice, then stopped, as if it had thought better.",
    "The old logbook said nothing about bells, only tides, oil, and the price of wicks.",
    "{Who} counted the seconds between flashes: *one, two, three*, and the dark again.",
    "A wave broke high enough to taste, salt on the glass, salt on every word.",
    "By morning the sea would pretend none of it had happened; it always did.",
)


_DEFAULT_TASKS = ("Read README.md and summarize it", "List the files")
# "with a budget of 2 responses": each sub-agent may make that many model responses.
_BUDGET = re.compile(r"\bbudget of (\d+) responses?\b", re.IGNORECASE)


def _all_quoted(text: str) -> list[str]:
    return [next(group for group in match.groups() if group) for match in _QUOTED.finditer(text)]


def _delegate(conversation: Conversation) -> _Draft:
    """One `subagent` call per quoted task, all in one response so they run in
    parallel. A task may itself delegate (`delegate "delegate `list the files`"`)."""
    tasks = _all_quoted(conversation.user_text) or list(_DEFAULT_TASKS)
    if SUBAGENT not in conversation.offered_tools:
        return _tool_scenario(conversation, SUBAGENT, {}, "I'd delegate this.", "")
    arguments: dict[str, Any] = {}
    if budget := _BUDGET.search(_without_quotes(conversation.user_text)):
        arguments["budget"] = {"responses": int(budget.group(1))}
    calls = tuple(
        _call(conversation, SUBAGENT, {"task": task, "title": task[:40], **arguments}, index)
        for index, task in enumerate(tasks)
    )
    plural = "sub-agents" if len(calls) > 1 else "a sub-agent"
    return _Draft(
        thinking=f"{len(calls)} independent task(s). I'll hand them to {plural} at once.",
        content=_words(_opening(conversation, f"I'll delegate this to {plural}, in parallel.")),
        tool_calls=calls,
    )


def _story(conversation: Conversation) -> _Draft:
    chapters = []
    for number, who in enumerate(_STORY_CHARACTERS, start=1):
        # Rotate the beats per chapter so the chapters differ while staying scripted.
        beats = _STORY_BEATS[number:] + _STORY_BEATS[:number]
        sentences = " ".join(beat.format(who=who, Who=who.capitalize()) for beat in beats)
        chapters.append(f"### Chapter {number}: {who.capitalize()}\n\n{sentences}")
    text = "## The Lighthouse Log\n\n" + "\n\n".join(chapters) + "\n\n*The end.*"
    return _Draft(
        thinking="A long story, then. I'll tell it slowly; stop me whenever you like.",
        content=_words(_opening(conversation, text)),
        delay=STORY_DELAY,
    )


def _overview(conversation: Conversation) -> _Draft:
    text = (
        "## What I can demonstrate\n\n"
        "- **Reading a file**: ask me to *read* or *summarize* `README.md`, or to read "
        "several *one by one*.\n"
        "- **Writing a file**: ask me to *write a note*; Parley asks your permission first.\n"
        '- **Editing a file**: ask me to *replace* "a phrase" *with* "another" in '
        "`README.md`; the permission question shows the diff.\n"
        '- **A plan**: ask me to *make a plan* "step one", "step two"; I tick it off.\n'
        "- **Running a command**: ask me to *run* `ls`; that asks permission too.\n"
        "- **Listing files**: ask me to *list the files*.\n"
        "- **Searching**: ask me to *search for* `TODO`.\n"
        "- **Streaming and cancel**: ask for a long *story* and cancel it midway.\n"
        '- **Sub-agents**: ask me to *delegate* "one task" and "another"; they run in '
        "parallel.\n\n"
        "I am scripted, so I answer from keywords, not understanding."
    )
    return _Draft(
        thinking="No tool is needed here. I'll explain what this scripted model can show.",
        content=_words(_opening(conversation, text)),
    )


def _summary(request: Mapping[str, Any]) -> _Draft:
    """A compaction: what was asked and done before, one line each, from the
    messages it is to replace (all but the request for the summary itself)."""
    lines = []
    messages = [m for m in request.get("messages") or () if isinstance(m, Mapping)]
    for message in messages[:-1]:
        role = message.get("role")
        if role == "user":
            asked = _text_of(message.get("content")).strip().splitlines()
            lines.append(f"- The user asked: {asked[0] if asked else '(nothing)'}")
        elif role == "assistant":
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {} if isinstance(call, Mapping) else {}
                lines.append(f"- I called `{function.get('name', '?')}`.")
    text = "\n".join(lines) or "- Nothing happened yet."
    return _Draft(thinking="", content=_words(text), delay=0.0)


def _bench(count: int) -> _Draft:
    # No thinking, intro or delay: the benchmark measures Parley's per-delta cost.
    return _Draft(thinking="", content=(BENCH_DELTA,) * count, delay=0.0)


# First match wins; `bench N` is checked before these.
_SCENARIOS: tuple[tuple[re.Pattern[str], Scenario], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), scenario)
    for pattern, scenario in (
        (r"\b(delegate|sub-?agents?)\b", _delegate),
        (r"\b(story|long)\b", _story),
        (r"\breplace\b.+\bwith\b", _edit),
        (r"\bplan\b", _plan),
        (r"\b(write|create|notes?)\b", _write),
        (r"\b(run|shell|command)\b", _run),
        (r"\bread\b|summar|\blook at\b", _read),
        (r"\b(search|find|grep)\b", _search),
        (r"\b(list|files)\b", _list),
    )
)


# ---------------------------------------------------------------------------
# Answering from tool results


def _after_tools(conversation: Conversation) -> _Draft:
    """The reply once this turn's tool results are back: a final answer, or, after a
    read that worked, the next of several files read one by one; never a call after
    a declined or failing tool, so the script cannot loop."""
    if (following := _next_read(conversation) or _next_plan_step(conversation)) is not None:
        return following
    outcomes = conversation.tool_outcomes
    if all(o.outcome != "ok" for o in outcomes):
        if all(o.outcome == "declined" for o in outcomes):
            thinking = "The user said no. I'll respect that rather than ask again."
            opening = "Understood, I stopped there:"
        else:
            thinking = "The tool could not do it. I'll say why rather than retry."
            opening = "I could not complete that, and I will not retry on my own:"
        failures = "\n".join(f"- {_failure(o)}" for o in outcomes)
        return _Draft(thinking=thinking, content=_words(f"{opening}\n\n{failures}"))
    sections = [
        _SUMMARISERS.get(o.name, _summarise_output)(o) if o.outcome == "ok" else _failure(o)
        for o in outcomes
    ]
    first_ok = next(o for o in outcomes if o.outcome == "ok")
    return _Draft(
        thinking=f"The `{first_ok.name}` result is back. I'll answer from what it actually says.",
        content=_words("\n\n".join(sections)),
    )


def _failure(outcome: ToolOutcome) -> str:
    """An outcome that is not a result, worded for who stopped it: the user or the tool."""
    if outcome.outcome == "declined":
        return f"You declined the `{outcome.name}` call, so nothing was changed."
    reason = _first_line(outcome.content).rstrip(".") or "no details"
    return f"`{outcome.name}` failed: {reason}."


# Parley's read_file appends notices in brackets ("[empty file]", "[... call read_file
# with offset=...]") and other read tools number their lines: the answer counts and
# quotes the file's own text.
_LINE_NUMBER = re.compile(r"^\s*\d+(?:\t|: |\| ?|→)")
_NOTICE = re.compile(r"^\[.*\]$")


def _content_lines(content: str) -> list[str]:
    return [
        _LINE_NUMBER.sub("", line, count=1)
        for line in content.splitlines()
        if not _NOTICE.match(line)
    ]


def _first_line(content: str) -> str:
    return next((line.strip() for line in _content_lines(content) if line.strip()), "")


def _summarise_read(outcome: ToolOutcome) -> str:
    path = str(outcome.arguments.get("path", "the file"))
    lines = _content_lines(outcome.content)
    heading = next((line.strip() for line in lines if line.lstrip().startswith("#")), None)
    if heading:
        facts = f'- **First heading:** "{heading.lstrip("#").strip()}"'
    elif lines:
        facts = f'- **First line:** "{_first_line(outcome.content)}"'
    else:
        facts = "- It is empty."
    words = sum(len(line.split()) for line in lines)
    return (
        f"## `{path}`\n\n"
        f"- **Lines:** {len(lines)}\n{facts}\n- **Words:** about {words}\n\n"
        "That is real content from your workspace, read with the `read_file` tool."
    )


def _summarise_write(outcome: ToolOutcome) -> str:
    path = str(outcome.arguments.get("path", "the file"))
    written = len(str(outcome.arguments.get("content", "")).splitlines())
    return f"Done: `{path}` is written ({written} lines). Open it to check."


def _summarise_edit(outcome: ToolOutcome) -> str:
    path = str(outcome.arguments.get("path", "the file"))
    return f"Done: `{path}` is edited ({outcome.content}). Open it to check."


def _summarise_plan(outcome: ToolOutcome) -> str:
    steps = len(outcome.arguments.get("steps", ()))
    return f"All {steps} steps of the plan are done."


def _summarise_output(outcome: ToolOutcome) -> str:
    """Shell output, listings and search hits: how much came back and how it starts."""
    subject = outcome.arguments.get("command") or outcome.arguments.get("pattern")
    title = f"`{outcome.name}`" + (f" — `{subject}`" if subject else "")
    lines = [line for line in outcome.content.splitlines() if line.strip()]
    if not lines:
        return f"## {title}\n\nIt finished without printing anything."
    shown = "\n".join(lines[:5])
    more = f"\n\n…and {len(lines) - 5} more lines." if len(lines) > 5 else ""
    return f"## {title}\n\n{len(lines)} lines came back. The first ones:\n\n```\n{shown}\n```{more}"


def _summarise_subagent(outcome: ToolOutcome) -> str:
    task = str(outcome.arguments.get("title") or outcome.arguments.get("task", "the task"))
    return f"## Sub-agent: {task}\n\n{outcome.content.strip()}"


_SUMMARISERS: dict[str, Callable[[ToolOutcome], str]] = {
    "read_file": _summarise_read,
    "write_file": _summarise_write,
    "edit_file": _summarise_edit,
    "update_plan": _summarise_plan,
    SUBAGENT: _summarise_subagent,
}


# ---------------------------------------------------------------------------
# Turning a draft into a reply


_WORD = re.compile(r"\S+\s*|\s+")


def _words(text: str) -> tuple[str, ...]:
    """Word-sized deltas that join back to exactly `text`."""
    return tuple(_WORD.findall(text))


def _tokens(characters: int) -> int:
    # The usual rough rule of about four characters per token, rounded up.
    return -(-characters // 4)


def _finish(draft: _Draft, request: Mapping[str, Any]) -> Reply:
    output_chars = sum(map(len, draft.content)) + sum(
        len(call.name) + len(call.arguments_json) for call in draft.tool_calls
    )
    reasoning = _tokens(len(draft.thinking))
    return Reply(
        thinking=_words(draft.thinking),
        content=draft.content,
        tool_calls=draft.tool_calls,
        finish_reason="tool_calls" if draft.tool_calls else "stop",
        delay=draft.delay,
        usage=PlannedUsage(
            prompt_tokens=_tokens(len(msgspec.json.encode(request))),
            completion_tokens=_tokens(output_chars) + reasoning,
            reasoning_tokens=reasoning,
        ),
    )
