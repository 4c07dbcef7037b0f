"""Drawing a session in a terminal, from the same `session/update` stream in two modes.

`Renderer` folds updates into a `Transcript` and decides *what* to show (turn
boundaries, usage line, permission questions); a view decides *how*:

- `RichView` on a terminal: Markdown that renders as it streams, dimmed thinking,
  live tool calls with a spinner, status and duration, compact previews. A
  sub-agent's transcript is drawn inside the `subagent` call that started it.
- `PlainView` otherwise: plain text as it arrives, no ANSI, one `[tool] ...` line
  per finished tool call, so the output reads well in a log or a pipe. A
  sub-agent's lines are indented by depth and labelled `[its title]`.

Both get each change with the conversation it belongs to (see `transcript`).
"""

from __future__ import annotations

import contextlib
import difflib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Final, Protocol

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.markdown import Markdown
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

from parley_client.transcript import (
    Change,
    Conversation,
    Message,
    Plan,
    ToolCall,
    ToolState,
    Transcript,
    Usage,
    block_text,
)
from parley_protocol.acp import (
    ContentToolCallContent,
    FileEditToolCallContent,
    PermissionOptionId,
    RequestPermissionRequest,
    SessionInfo,
    SessionNotification,
    StopReason,
)

SCRIPTED_MODEL: Final = "parley-scripted"
PREVIEW_LINES: Final = 8
LABEL_WIDTH: Final = 40
LIVE_CHILD_ENTRIES: Final = 3
"""A running sub-agent's latest entries the terminal view keeps in sight."""
_SPINNER: Final = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

_TOOL_STYLE: Final[dict[ToolState, tuple[str, str, str]]] = {
    # status: (icon, word, style) for the terminal view
    "pending": ("○", "pending", "yellow"),
    "in_progress": ("", "running", "cyan"),
    "completed": ("✓", "done", "green"),
    "failed": ("✗", "failed", "red"),
    "cancelled": ("⊘", "cancelled", "bright_black"),
}


# -- wording shared by both views ---------------------------------------------------


def format_duration(ms: float) -> str:
    if ms < 1:
        return "<1 ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes}m {seconds:02d}s"


def usage_summary(usage: Usage) -> str:
    """One line: this turn's tokens, the context window, cost, and the model."""
    parts: list[str] = []
    detail = usage.detail
    if detail is not None:
        turn = detail.turn
        parts.append(f"{turn.input_tokens:,} in · {turn.output_tokens:,} out")
        parts.append(f"{turn.cache_read_tokens:,} cached · {turn.reasoning_tokens:,} reasoning")
    if usage.size:
        parts.append(f"context {usage.used:,}/{usage.size:,} ({usage.used / usage.size:.0%})")
    cost = detail.turn.cost if detail is not None else None
    currency = (detail.turn.currency if detail is not None else None) or "USD"
    if cost is None and usage.cost is not None:
        cost, currency = usage.cost.amount, usage.cost.currency
    money = None
    if cost is not None:
        money = f"${cost:.4f}" if currency == "USD" else f"{cost:.4f} {currency}"
    if detail is not None and not detail.turn.priced:
        # Some of the turn is of a model with no known price: its cost is not
        # zero but unknown, and what is shown leaves it out.
        money = "cost unknown" if money is None else f"{money} + unpriced responses"
    if money is not None:
        parts.append(money)
    model = detail.model if detail is not None else None
    if model:
        parts.append(f"{model} (scripted model)" if model == SCRIPTED_MODEL else model)
    return " · ".join(parts)


def describe_input(raw_input: Any, width: int = 72) -> str:
    """A tool call's arguments on one line: `path=NOTES.md content=<5 lines>`."""
    if not isinstance(raw_input, dict):
        return "" if raw_input is None else str(raw_input)[:width]
    parts = []
    for key, value in raw_input.items():
        text = str(value)
        shown = f"<{text.count(chr(10)) + 1} lines>" if "\n" in text else text
        parts.append(f"{key}={shown}")
    line = " ".join(parts)
    return line if len(line) <= width else line[: width - 1] + "…"


def preview_lines(call: ToolCall, limit: int = PREVIEW_LINES) -> list[tuple[str, str]]:
    """A finished call's diff or output, cut short: (text, style) pairs."""
    lines: list[tuple[str, str]] = []
    for item in call.content:
        if isinstance(item, FileEditToolCallContent):
            lines.extend(_diff_lines(item))
        elif isinstance(item, ContentToolCallContent):
            text = block_text(item.content)
            lines.extend((line, "dim") for line in text.splitlines() if line.strip())
    if not lines and call.output:
        lines = [(line, "dim") for line in call.output.splitlines() if line.strip()]
    if len(lines) > limit:
        lines = [*lines[: limit - 1], (f"… {len(lines) - limit + 1} more lines", "dim italic")]
    return lines


def tool_preview(conversation: Conversation, call: ToolCall) -> list[tuple[str, str]]:
    """What a finished call of `conversation` shows under it: none for a sub-agent that
    completed, whose answer ends its own transcript, shown with the call."""
    if call.status == "completed" and call.tool_call_id in conversation.children:
        return []
    return preview_lines(call)


def conversation_label(conversation: Conversation) -> str:
    """A sub-agent's name on screen: its title, cut short."""
    title = conversation.title or str(conversation.id)
    return title if len(title) <= LABEL_WIDTH else title[: LABEL_WIDTH - 1] + "…"


def _diff_lines(diff: FileEditToolCallContent) -> list[tuple[str, str]]:
    old = (diff.old_text or "").splitlines()
    new = diff.new_text.splitlines()
    header = (f"{'new file' if diff.old_text is None else 'edit'} {diff.path}", "bold")
    styles = {"+": "green", "-": "red", "@": "cyan"}
    body = [
        (line, styles.get(line[:1], "dim"))
        for line in difflib.unified_diff(old, new, lineterm="", n=1)
        if not line.startswith(("---", "+++"))
    ]
    return [header, *body]


# -- views ---------------------------------------------------------------------


class View(Protocol):
    def message_started(self, conversation: Conversation, message: Message) -> None: ...

    def message_grew(self, conversation: Conversation, message: Message, delta: str) -> None: ...

    def tool_changed(self, conversation: Conversation, call: ToolCall) -> None: ...

    def plan_changed(self, conversation: Conversation, plan: Plan) -> None: ...

    def line(self, text: str, style: str = "") -> None:
        """A line of its own (usage, notices), below what is already final."""
        ...

    def end_turn(self) -> None: ...

    def suspend(self) -> contextlib.AbstractContextManager[None]:
        """Stop redrawing while the terminal is used for something else (a question)."""
        ...


class PlainView:
    """Conversations streaming at once take turns by whole lines: the one whose line
    is open writes on as its text arrives, the others' text waits for that line to end,
    so no line mixes two conversations. The root's lines are as they would be alone."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self._at_line_start = True
        self._holder: Conversation | None = None
        """Whose unfinished line is the last one written."""
        self._waiting: dict[Conversation, str] = {}
        self._reported: set[tuple[str | None, str]] = set()

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self._at_line_start = text.endswith("\n")

    def _new_line(self) -> None:
        if not self._at_line_start:
            self._write("\n")

    def message_started(self, conversation: Conversation, message: Message) -> None:
        self._end_line(conversation)
        self._emit(
            conversation, {"user": "> ", "thought": "[thinking] ", "agent": ""}[message.role]
        )

    def message_grew(self, conversation: Conversation, message: Message, delta: str) -> None:
        self._emit(conversation, delta)

    def tool_changed(self, conversation: Conversation, call: ToolCall) -> None:
        # Plain text cannot be redrawn: one line per call, once it has ended.
        key = (conversation.id, call.tool_call_id)
        report = call.finished and key not in self._reported
        if report or call is conversation.entries[-1]:
            # A call ends the message before it: its line is done, which frees the line.
            self._end_line(conversation)
        if not report:
            return
        self._reported.add(key)
        if (child := conversation.children.get(call.tool_call_id)) is not None:
            # Its sub-agent is done too: its last lines come before the call's own.
            for done in child.walk():
                self._end_line(done)
        duration = call.duration_ms
        timing = f" ({format_duration(duration)})" if duration is not None else ""
        self._emit(conversation, f"[tool] {call.title} ... {call.status}{timing}\n")
        for text, _style in tool_preview(conversation, call):
            self._emit(conversation, f"    {text}\n")

    def plan_changed(self, conversation: Conversation, plan: Plan) -> None:
        self._end_line(conversation)
        self._emit(conversation, "".join(f"{line}\n" for line in plan.lines()))

    def line(self, text: str, style: str = "") -> None:
        self._new_line()
        self._write(text + "\n")
        self._holder = None
        self._flush()

    def end_turn(self) -> None:
        while self._holder is not None:
            self._end_line(self._holder)

    def suspend(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def _emit(self, conversation: Conversation, text: str) -> None:
        self._waiting[conversation] = self._waiting.get(conversation, "") + text
        self._flush()

    def _end_line(self, conversation: Conversation) -> None:
        waiting = self._waiting.get(conversation, "")
        if self._holder is conversation or (waiting and not waiting.endswith("\n")):
            self._emit(conversation, "\n")

    def _flush(self) -> None:
        """Write all the open line's owner has, then, once no line is open, everyone's
        whole lines and the first unfinished one, whose owner has the line next."""
        if self._holder is not None:
            self._put(self._holder, self._waiting.pop(self._holder, ""))
        if self._holder is not None:
            return
        for conversation, text in list(self._waiting.items()):
            whole = text.rfind("\n") + 1
            self._put(conversation, text[:whole])
            self._waiting[conversation] = text[whole:]
        unfinished = next((c for c, text in self._waiting.items() if text), None)
        if unfinished is not None:
            self._put(unfinished, self._waiting[unfinished])
        self._waiting = {
            c: text for c, text in self._waiting.items() if text and c is not unfinished
        }

    def _put(self, conversation: Conversation, text: str) -> None:
        """Write `conversation`'s text, its label before each line it starts."""
        label = _plain_label(conversation)
        written: list[str] = []
        at_line_start = self._at_line_start
        for line in text.splitlines(keepends=True):
            if at_line_start and label:
                written.append(label if line.strip() else label.rstrip())
            written.append(line)
            at_line_start = line.endswith("\n")
        self._write("".join(written))
        self._holder = None if self._at_line_start else conversation


def _plain_label(conversation: Conversation) -> str:
    if conversation.is_root:
        return ""
    return f"{'  ' * conversation.depth}[{conversation_label(conversation)}] "


@dataclass
class _Block:
    """A piece of the root's turn still drawn live: a message (of which `shown`
    characters are already printed for good) or a tool call."""

    conversation: Conversation
    item: Message | ToolCall
    shown: int = 0


class RichView:
    """Finished blocks are printed for good, in order; the rest redraw in a Live
    region below them, so a long answer scrolls like any terminal output. Blocks are
    the root's: a sub-agent is drawn within the call that started it."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._blocks: list[_Block] = []
        self._live: Live | None = None
        self._printed_tools: set[str] = set()

    def message_started(self, conversation: Conversation, message: Message) -> None:
        if self._redrawn_as_nested(conversation):
            return
        self._blocks.append(_Block(conversation, message))
        self._settle()

    def message_grew(self, conversation: Conversation, message: Message, delta: str) -> None:
        if self._redrawn_as_nested(conversation):
            return
        first = self._blocks[0] if self._blocks else None
        if first is not None and first.item is message:
            # Paragraphs that are complete will not change: print them for good,
            # so the live part stays short.
            stable = _stable_prefix(message.text)
            if stable > first.shown:
                self._emit(_message_renderable(message.role, message.text[first.shown : stable]))
                first.shown = stable
        self._refresh()

    def tool_changed(self, conversation: Conversation, call: ToolCall) -> None:
        # A late update to a call already printed for good cannot change it any more.
        if self._redrawn_as_nested(conversation) or call.tool_call_id in self._printed_tools:
            return
        if not any(block.item is call for block in self._blocks):
            self._blocks.append(_Block(conversation, call))
        self._settle()

    def plan_changed(self, conversation: Conversation, plan: Plan) -> None:
        # A sub-agent's plan is its own business; the root's comes after the
        # call that set it, which has ended, so it prints for good in order.
        if self._redrawn_as_nested(conversation):
            return
        self._settle()
        self._emit(Text("\n".join(plan.lines()), style="cyan"))

    def line(self, text: str, style: str = "") -> None:
        self.console.print(Text(text, style=style))

    def end_turn(self) -> None:
        self._stop_live()
        for block in self._blocks:
            self._print_final(block)
        self._blocks.clear()

    @contextlib.contextmanager
    def suspend(self) -> Iterator[None]:
        self._stop_live()
        try:
            yield
        finally:
            self._refresh()

    def _redrawn_as_nested(self, conversation: Conversation) -> bool:
        """A sub-agent's change only needs its parent's call redrawn: done, and True."""
        if conversation.is_root:
            return False
        self._refresh()
        return True

    def _settle(self) -> None:
        # A message is final once anything follows it; a tool call once it has ended.
        while self._blocks and (
            len(self._blocks) > 1
            if isinstance(self._blocks[0].item, Message)
            else self._blocks[0].item.finished
        ):
            self._print_final(self._blocks.pop(0))
        self._refresh()

    def _print_final(self, block: _Block) -> None:
        item = block.item
        if isinstance(item, ToolCall):
            self._printed_tools.add(item.tool_call_id)
            self._emit(_tool_renderable(block.conversation, item, live=False))
        elif item.text[block.shown :].strip():
            self._emit(_message_renderable(item.role, item.text[block.shown :]))

    def _emit(self, renderable: RenderableType) -> None:
        # Blocks and paragraphs printed piecewise keep the blank line between them.
        self.console.print()
        self.console.print(renderable)

    def _refresh(self) -> None:
        if not self._blocks:
            self._stop_live()
        elif self._live is None:
            self._live = Live(
                get_renderable=self._live_renderable,
                console=self.console,
                transient=True,
                refresh_per_second=12,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        else:
            self._live.refresh()

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _live_renderable(self) -> RenderableType:
        parts: list[RenderableType] = []
        for block in self._blocks:
            item = block.item
            if isinstance(item, ToolCall):
                parts.append(_tool_renderable(block.conversation, item, live=True))
            else:
                parts.append(_message_renderable(item.role, item.text[block.shown :]))
        return Group(*(Group(Text(), part) for part in parts))


def _stable_prefix(text: str) -> int:
    """Where the last blank line outside a code fence ends: Markdown before it is complete."""
    stable = position = 0
    fenced = False
    for line in text.splitlines(keepends=True):
        position += len(line)
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and line.endswith("\n") and not line.strip():
            stable = position
    return stable


def _message_renderable(role: str, text: str) -> RenderableType:
    if role == "agent":
        return Markdown(text.strip("\n"))
    if role == "thought":
        return Text(text.strip(), style="dim italic")
    return Text.assemble(("> ", "bold cyan"), (text.strip(), "bold"))


def _tool_renderable(conversation: Conversation, call: ToolCall, *, live: bool) -> RenderableType:
    """A call of `conversation`: its header, once finished its preview, and the
    transcript of the sub-agent it started, if any."""
    icon, word, style = _TOOL_STYLE[call.status]
    if call.status == "in_progress":
        icon = _SPINNER[int(time.monotonic() * 10) % len(_SPINNER)]
    duration = call.duration_ms
    if duration is None and not call.finished:
        duration = (time.monotonic() - call.seen_at) * 1000
    timing = f" · {format_duration(duration)}" if duration is not None else ""
    header = Text.assemble((f"{icon} ", style), (call.title, "bold"), (f"  {word}{timing}", "dim"))
    parts: list[RenderableType] = [header]
    if call.finished:
        for text, line_style in tool_preview(conversation, call):
            line = Text.assemble(("  │ ", "dim"), (text, line_style or ""))
            line.no_wrap = True
            line.overflow = "ellipsis"
            parts.append(line)
    child = conversation.children.get(call.tool_call_id)
    if child is not None:
        parts.append(_Gutter(_conversation_renderable(child, live=live)))
    return Group(*parts)


def _conversation_renderable(conversation: Conversation, *, live: bool) -> RenderableType:
    """A sub-agent's transcript under its title; while it is live, only its latest
    entries and the end of each message, so the live region stays within the screen."""
    entries = conversation.entries
    parts: list[RenderableType] = [Text(conversation_label(conversation), style="bold magenta")]
    if live and len(entries) > LIVE_CHILD_ENTRIES:
        parts.append(Text(f"… {len(entries) - LIVE_CHILD_ENTRIES} earlier", style="dim italic"))
        entries = entries[-LIVE_CHILD_ENTRIES:]
    for entry in entries:
        if isinstance(entry, ToolCall):
            parts.append(Group(Text(), _tool_renderable(conversation, entry, live=live)))
        elif entry.text.strip():
            text = "\n".join(entry.text.splitlines()[-PREVIEW_LINES:]) if live else entry.text
            parts.append(Group(Text(), _message_renderable(entry.role, text)))
    return Group(*parts)


class _Gutter:
    """A renderable drawn narrower, behind a bar: how a sub-agent nests in its parent."""

    BAR: Final = Segment("  ┃ ", Style(color="magenta"))

    def __init__(self, body: RenderableType) -> None:
        self.body = body

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width - self.BAR.cell_length, 1)
        for line in console.render_lines(self.body, options.update_width(width), pad=False):
            yield self.BAR
            yield from line
            yield Segment.line()


# -- the renderer ------------------------------------------------------------------


class Renderer:
    def __init__(self, view: View) -> None:
        self.view = view
        self.transcript = Transcript()
        self._usage: Usage | None = None

    @classmethod
    def for_console(cls, console: Console) -> Renderer:
        return cls(RichView(console) if console.is_terminal else PlainView(console.file))

    def feed(self, notification: SessionNotification) -> None:
        change = self.transcript.apply(notification)
        if change is None:
            return
        match change.item:
            case Message() as message:
                self._show_message(message, change)
            case ToolCall() as call:
                self.view.tool_changed(change.conversation, call)
            case Plan() as plan:
                self.view.plan_changed(change.conversation, plan)
            case Usage() as usage if change.conversation.is_root:
                # The root's figures include its sub-agents': the line a turn ends with.
                self._usage = usage

    def user_prompt(self, text: str) -> None:
        """Show a prompt this client sent (ACP does not echo it back live)."""
        change = self.transcript.add_text("user", text)
        assert isinstance(change.item, Message)
        self._show_message(change.item, change)

    def _show_message(self, message: Message, change: Change) -> None:
        conversation = change.conversation
        if message.role == "user" and change.new and conversation.is_root:
            # A replayed session has no end-of-turn marker: the next prompt is one.
            self._usage_line()
        if change.new:
            self.view.message_started(conversation, message)
        self.view.message_grew(conversation, message, change.delta)

    def finish(self, stop_reason: StopReason | None = None) -> None:
        """The turn (or the replay) is over: settle what is still open, then the usage line."""
        # Deepest first: a sub-agent's calls end before the call that started it.
        for conversation in sorted(self.transcript.walk(), key=lambda c: -c.depth):
            for call in conversation.unfinished_tools():
                call.end("cancelled")
                self.view.tool_changed(conversation, call)
        self.view.end_turn()
        self._usage_line()
        if stop_reason not in (None, "end_turn"):
            self.view.line(f"turn ended: {stop_reason}", "yellow")

    def _usage_line(self) -> None:
        if self._usage is not None:
            self.view.end_turn()
            self.view.line(f"[usage] {usage_summary(self._usage)}", "dim")
            self._usage = None

    def note(self, text: str, style: str = "dim") -> None:
        self.view.line(text, style)

    def permission_asked(self, request: RequestPermissionRequest) -> None:
        call = request.tool_call
        details = describe_input(call.raw_input) if call.raw_input is not None else ""
        title = call.title or call.tool_call_id
        asking = self.transcript.conversation_of(request.meta)
        # The question is the session's, put to the user: only named, not nested.
        who = "" if asking.is_root else f"[{conversation_label(asking)}] "
        options = ", ".join(option.option_id for option in request.options)
        self.view.line(
            f"[permission] {who}{title} ({call.kind or 'other'}) {details}".rstrip(), "bold yellow"
        )
        self.view.line(f"    options: {options}", "dim")

    def permission_answered(self, option_id: PermissionOptionId | None, why: str) -> None:
        answer = option_id or "cancelled"
        style = "green" if answer.startswith("allow") else "red"
        self.view.line(f"[permission] answered {answer} ({why})", style)

    def suspend(self) -> contextlib.AbstractContextManager[None]:
        return self.view.suspend()


def print_sessions(console: Console, sessions: list[SessionInfo], *, with_cwd: bool) -> None:
    """`parley sessions`: a table on a terminal, one tab-separated line each otherwise."""
    if not sessions:
        console.print("no sessions" + ("" if with_cwd else " in this directory"), style="dim")
        return
    if not console.is_terminal:
        for info in sessions:
            fields = [info.session_id, info.updated_at or "", info.title or ""]
            console.file.write("\t".join([*fields, info.cwd] if with_cwd else fields) + "\n")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("session", "updated", "title", *(("cwd",) if with_cwd else ())):
        table.add_column(column, overflow="fold" if column == "cwd" else "ellipsis")
    for info in sessions:
        updated = (info.updated_at or "")[:19].replace("T", " ")
        row = [info.session_id, updated, info.title or ""]
        table.add_row(*row, *((info.cwd,) if with_cwd else ()))
    console.print(table)
