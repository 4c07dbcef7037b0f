"""The agent loop of one prompt turn.

provider events -> `session/update` notifications and, at each item boundary, a
record in the session log -> tool calls -> permission -> tools -> results ->
the next model call, until the model stops, the turn is cancelled, or the
provider fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parley_protocol.acp import (
    PermissionOption,
    RequestPermissionRequest,
    StopReason,
    ToolCallUpdate,
)
from parleyd.config import DEFAULT_CONTEXT_SIZE
from parleyd.providers.events import (
    Done,
    RefusalDelta,
    StreamError,
    TextDelta,
    ThinkingDelta,
    ToolCallArgumentsDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from parleyd.providers.messages import (
    AssistantMessage,
    ModelRequest,
    ToolCall,
    UserMessage,
)
from parleyd.session import updates
from parleyd.session.conversation import Conversation, new_id
from parleyd.session.failures import TurnFailed
from parleyd.session.usage import context_size_of, price_of
from parleyd.store.records import (
    AssistantTurn,
    ChunkKind,
    ToolCallView,
    ToolOutcome,
    ToolStatus,
    UsageRecorded,
    UserTurn,
)
from parleyd.tools.base import Tool, ToolContext, ToolError, ToolResult

if TYPE_CHECKING:
    from parleyd.session.session import Session

# Running tools' output reaches the client at most this often, as the last
# `_PROGRESS_TAIL` characters.
_PROGRESS_INTERVAL = 0.1
_PROGRESS_TAIL = 8192


def system_prompt(cwd: str) -> str:
    return (
        "You are Parley, a coding agent working inside an editor. The workspace root is "
        f"{cwd}; every path you pass to a tool is relative to it. Read before you change "
        "anything, keep changes small, and say what you did. Writing files and running "
        "commands ask the user first; if the user declines, do not retry the same action."
    )


@dataclass
class _ResponseInProgress:
    """What one model response has streamed so far: recorded even if cut short."""

    message_id: str
    chunks: list[tuple[ChunkKind, str]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    signature: str | None = None
    views: dict[str, ToolCallView] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)

    def message(self) -> AssistantMessage:
        return AssistantMessage(
            text="".join(self.text),
            thinking="".join(self.thinking),
            thinking_signature=self.signature,
            refusal="".join(self.refusal) or None,
            tool_calls=tuple(self.calls),
        )


class Turn:
    """Runs one prompt to its stop reason. Cancelling the task that runs `run`
    stops the model stream and any running tool at once; `run` then records
    what was said so far and returns `cancelled`."""

    def __init__(self, session: Session, conversation: Conversation) -> None:
        self.session = session
        self.conversation = conversation
        self._response: _ResponseInProgress | None = None
        self._unfinished_calls: dict[str, str] = {}  # call id -> tool name

    async def run(self, prompt_text: str, prompt_content: list[dict[str, Any]]) -> StopReason:
        session, conversation = self.session, self.conversation
        user = UserTurn(text=prompt_text, content=prompt_content, message_id=new_id("msg"))
        session.record(user, conversation)
        conversation.history.append(UserMessage(text=prompt_text))
        session.ledger.start_turn()
        try:
            stop_reason = await self._loop()
        except asyncio.CancelledError:
            await self._record_interruption("Cancelled by the user before it finished.")
            stop_reason = "cancelled"
        except TurnFailed as failure:
            await self._record_interruption("Not run: the model provider failed mid-response.")
            await session.end_turn("error", failure.error.message)
            raise
        await session.end_turn(stop_reason)
        return stop_reason

    async def _loop(self) -> StopReason:
        settings = self.session.settings
        for _ in range(settings.max_model_calls_per_turn):
            done, message = await self._model_call()
            if done.stop_reason != "tool_use":
                return done.stop_reason
            if not message.tool_calls:
                return "end_turn"
            await self._run_tool_calls(message)
        return "max_turn_requests"

    # -- one model response -----------------------------------------------

    async def _model_call(self) -> tuple[Done, AssistantMessage]:
        session, conversation = self.session, self.conversation
        request = ModelRequest(
            model=session.settings.model_name,
            system=system_prompt(str(session.cwd)),
            messages=tuple(conversation.history),
            tools=session.tools.specs(),
            max_output_tokens=session.settings.max_output_tokens,
        )
        response = self._response = _ResponseInProgress(message_id=new_id("msg"))
        usage: Usage | None = None
        done: Done | None = None
        async for event in session.provider.stream(request):
            match event:
                case TextDelta(text=text):
                    await self._chunk(response, "text", text)
                    response.text.append(text)
                case ThinkingDelta(text=text, signature=signature):
                    if text:
                        await self._chunk(response, "thought", text)
                        response.thinking.append(text)
                    if signature:
                        response.signature = signature
                case RefusalDelta(text=text):
                    await self._chunk(response, "text", text)
                    response.refusal.append(text)
                case ToolCallStart():
                    await self._announce_call(response, event)
                case ToolCallArgumentsDelta():
                    pass  # the complete arguments come with ToolCallEnd
                case ToolCallEnd():
                    await self._complete_call(response, event)
                case Usage():
                    usage = event
                case Done():
                    done = event
                case StreamError():
                    raise TurnFailed(event)
        if done is None:  # pragma: no cover - providers always end with Done or StreamError
            raise TurnFailed(StreamError(kind="protocol", message="the stream ended without Done"))
        message = self._record_response(response)
        if usage is not None:
            await self._record_usage(usage)
        return done, message

    async def _chunk(self, response: _ResponseInProgress, kind: ChunkKind, text: str) -> None:
        response.chunks.append((kind, text))
        await self.session.send(
            updates.chunk_update(kind, text, response.message_id, self.conversation.meta)
        )

    def _view(self, call_id: str, name: str, arguments: Mapping[str, Any] | None) -> ToolCallView:
        """How the call is shown; without arguments (still streaming) the title is the name."""
        if name not in self.session.tools:
            return ToolCallView(call_id=call_id, title=name, kind="other")
        tool = self.session.tools.get(name)
        try:
            title = name if arguments is None else tool.title(arguments)
        except (KeyError, TypeError, ValueError):
            title = name
        return ToolCallView(call_id=call_id, title=title, kind=tool.kind)

    async def _announce_call(self, response: _ResponseInProgress, event: ToolCallStart) -> None:
        view = self._view(event.call_id, event.name, None)
        response.views[event.call_id] = view
        await self.session.send(
            updates.tool_call_announced(
                event.call_id, event.name, view.kind, self.conversation.meta
            )
        )

    async def _complete_call(self, response: _ResponseInProgress, event: ToolCallEnd) -> None:
        if event.call_id not in response.views:
            await self._announce_call(
                response, ToolCallStart(index=event.index, call_id=event.call_id, name=event.name)
            )
        raw_input = updates.parse_raw_input(event.arguments)
        view = self._view(
            event.call_id, event.name, raw_input if isinstance(raw_input, dict) else {}
        )
        response.views[event.call_id] = view
        response.calls.append(
            ToolCall(id=event.call_id, name=event.name, arguments=event.arguments)
        )
        self._unfinished_calls[event.call_id] = event.name
        await self.session.send(updates.tool_call_ready(view, raw_input, self.conversation.meta))

    def _record_response(
        self, response: _ResponseInProgress, interrupted: bool = False
    ) -> AssistantMessage:
        message = response.message()
        self.session.record(
            AssistantTurn(
                message=message,
                chunks=response.chunks,
                message_id=response.message_id,
                model=self.session.settings.model_name,
                tool_views=[response.views[call.id] for call in message.tool_calls],
                interrupted=interrupted,
            ),
            self.conversation,
        )
        self.conversation.history.append(message)
        self._response = None
        return message

    async def _record_usage(self, usage: Usage) -> None:
        settings = self.session.settings
        model = settings.model_name
        record = UsageRecorded(
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=price_of(model, usage),
            context_used=usage.input_tokens + usage.output_tokens,
            context_size=context_size_of(model, settings.context_size, DEFAULT_CONTEXT_SIZE),
        )
        self.session.record(record, self.conversation)
        await self.session.send(
            updates.usage_update(record, self.session.ledger, self.conversation)
        )

    # -- tools --------------------------------------------------------------

    async def _run_tool_calls(self, message: AssistantMessage) -> None:
        for call in message.tool_calls:
            outcome = await self._run_tool_call(call)
            self._finish_call(outcome)
            await self.session.send(updates.tool_call_finished(outcome, self.conversation.meta))

    async def _run_tool_call(self, call: ToolCall) -> ToolOutcome:
        session, meta = self.session, self.conversation.meta
        run = _ToolRun(call)
        try:
            tool = session.tools.get(call.name)
            arguments = session.tools.parse_arguments(tool, call.arguments)
            if not await self._permitted(tool, call, arguments):
                return run.outcome("failed", "The user declined this tool call.")
            run.start()
            await session.send(updates.tool_call_running(call.id, meta))

            async def report_progress(text: str) -> None:
                if (snapshot := run.output_so_far(text)) is not None:
                    await session.send(updates.tool_call_progress(call.id, snapshot, meta))

            result = await tool.run(arguments, ToolContext(session.cwd, report_progress))
        except ToolError as error:
            return run.outcome("failed", str(error))
        return run.outcome("failed" if result.is_error else "completed", result.output, result)

    async def _permitted(self, tool: Tool, call: ToolCall, arguments: Mapping[str, Any]) -> bool:
        policy = self.session.permissions
        standing = policy.standing_decision(tool)
        if standing is not None:
            return standing.allowed
        request = RequestPermissionRequest(
            session_id=self.session.id,
            tool_call=ToolCallUpdate(
                tool_call_id=call.id,
                title=tool.title(arguments),
                kind=tool.kind,
                status="pending",
                raw_input=dict(arguments),
            ),
            options=[
                PermissionOption(option_id=option.option_id, name=option.name, kind=option.kind)
                for option in policy.options()
            ],
            meta=self.conversation.meta,
        )
        option_id = await self.session.channel.request_permission(request)
        return policy.record(tool.name, option_id or "").allowed

    def _finish_call(self, outcome: ToolOutcome) -> None:
        self.session.record(outcome, self.conversation)
        self._unfinished_calls.pop(outcome.call_id, None)
        self.conversation.history.append(outcome.message())

    # -- endings ------------------------------------------------------------

    async def _record_interruption(self, reason: str) -> None:
        """The turn stops early: keep what was said, and answer every tool call
        the model made so the history stays valid for the next model call."""
        response = self._response
        if response is not None:
            # Calls announced whose arguments never finished streaming: close
            # them on the client, which would otherwise show them pending forever.
            finished = {call.id for call in response.calls}
            for call_id in response.views.keys() - finished:
                await self.session.send(
                    updates.tool_call_abandoned(call_id, reason, self.conversation.meta)
                )
            if response.chunks or response.calls:
                self._record_response(response, interrupted=True)
        self._response = None
        for call_id, name in list(self._unfinished_calls.items()):
            outcome = updates.interrupted_outcome(call_id, name, reason)
            self._finish_call(outcome)
            await self.session.send(updates.tool_call_finished(outcome, self.conversation.meta))


@dataclass
class _ToolRun:
    """One tool call as it runs: whether it started and the progress it
    streamed, kept in its record so a replay shows the same updates."""

    call: ToolCall
    ran: bool = False
    progress: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    _output: list[str] = field(default_factory=list)
    _last_report: float = 0.0

    def start(self) -> None:
        """The tool starts now: its duration leaves out the wait for permission."""
        self.ran = True
        self.started = time.monotonic()

    def output_so_far(self, text: str) -> str | None:
        """Take a piece of streamed output; return the tail of everything so
        far when an update is due. ACP replaces a call's content with each
        update, so each one carries the output so far, and at most every
        `_PROGRESS_INTERVAL` so a chatty command cannot flood the client."""
        self._output.append(text)
        now = time.monotonic()
        if now - self._last_report < _PROGRESS_INTERVAL:
            return None
        self._last_report = now
        snapshot = "".join(self._output)[-_PROGRESS_TAIL:]
        self._output = [snapshot]
        self.progress.append(snapshot)
        return snapshot

    def outcome(
        self, status: ToolStatus, output: str, result: ToolResult | None = None
    ) -> ToolOutcome:
        shown = result or ToolResult(output=output, is_error=True)
        return ToolOutcome(
            call_id=self.call.id,
            name=self.call.name,
            status=status,
            output=output,
            content=updates.display_content(shown),
            locations=[str(path) for path in shown.locations],
            duration_ms=round((time.monotonic() - self.started) * 1000, 3),
            ran=self.ran,
            progress=self.progress,
        )
