"""The agent loop of one prompt turn.

provider events -> `session/update` notifications and, at each item boundary, a
record in the session log -> tool calls -> permission -> tools -> results ->
the next model call, until the model stops, the turn is cancelled, or the
provider fails. The loop knows its session only as a `TurnHost`; the session
owns the turn's state and its ending (see `session/session.py`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from parley_protocol.acp import (
    PermissionOption,
    RequestPermissionRequest,
    SessionUpdate,
    StopReason,
    ToolCallUpdate,
)
from parleyd.config import DEFAULT_CONTEXT_SIZE
from parleyd.pricing import context_size_of, price_of
from parleyd.providers.events import (
    Done,
    FallingBack,
    RefusalDelta,
    Retrying,
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
    Message,
    ModelRequest,
    Part,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCall,
    ToolResultMessage,
    UserMessage,
)
from parleyd.session import alive, compaction, updates
from parleyd.session.conversation import Conversation, new_id
from parleyd.session.errors import ProviderFailed
from parleyd.session.port import Steer, TurnHost
from parleyd.session.user_input import tool_result_message, user_message
from parleyd.session.wire import Outgoing
from parleyd.store.log import StoreError
from parleyd.store.records import (
    AssistantResponse,
    Compacted,
    CompactionStarted,
    PermissionRemembered,
    Record,
    ResponseStreamed,
    ToolCallView,
    ToolOutcome,
    ToolStarted,
    ToolStatus,
    UsageRecorded,
    UserTurn,
)
from parleyd.tools.base import ChildTask, Tool, ToolContext, ToolError, ToolResult
from parleyd.tools.environment import child_environment
from parleyd.tools.subagent import NAME as SUBAGENT_TOOL

log = logging.getLogger(__name__)

# Running tools' output reaches the client at most this often, as the last
# `_PROGRESS_TAIL` characters.
_PROGRESS_INTERVAL = 0.1
_PROGRESS_TAIL = 8192

WITHDRAWN = "Not run: the permission question was withdrawn before the user answered it."
CALL_CANCELLED = "Cancelled by the user while it ran; it may have done part of its work."
# Cancelled while it waited (for permission, or for the session to resume):
# the model must not think it did anything.
CALL_CANCELLED_UNRUN = "Cancelled by the user before it ran."
SUBAGENT_PROMPT = (
    "You are a sub-agent: another agent gave you the task in the user message. It sees only "
    "your final answer, so end with a complete, self-contained one."
)


def system_prompt(cwd: str, additional: tuple[Path, ...] = ()) -> str:
    others = ""
    if additional:
        listed = ", ".join(str(root) for root in additional)
        others = f" You may also work in {listed}: give paths there in full."
    return (
        "You are Parley, a coding agent working inside an editor. The workspace root is "
        f"{cwd}; every path you pass to a tool is relative to it.{others} Read before you "
        "change anything, keep changes small, and say what you did. Writing files and "
        "running commands may need the user's permission; if a call is declined or "
        "refused, do not retry the same action."
    )


PartKind = Literal["text", "thought", "refusal"]


def unanswered_calls(history: list[Message]) -> tuple[ToolCall, ...]:
    """The calls of the history's last response that have no result yet."""
    answered: set[str] = set()
    for message in reversed(history):
        if isinstance(message, ToolResultMessage):
            answered.add(message.call_id)
        elif isinstance(message, AssistantMessage):
            return tuple(c for c in message.tool_calls if c.id not in answered)
        else:
            break
    return ()


@dataclass
class _OpenPart:
    """A text, thinking or refusal part still streaming: its deltas, joined once."""

    kind: PartKind
    pieces: list[str] = field(default_factory=list)
    signature: str | None = None
    redacted: str | None = None
    origin: str | None = None

    def part(self, from_piece: int = 0) -> Part:
        """The part, or what it added from its `from_piece`th delta on."""
        text = "".join(self.pieces[from_piece:])
        if self.kind == "thought":
            origin = self.origin if self.signature or self.redacted else None
            return ThinkingPart(text, self.signature, self.redacted, origin)
        return TextPart(text) if self.kind == "text" else RefusalPart(text)

    @property
    def sealed(self) -> bool:
        """A signature or a payload ends a thinking block: what follows is another."""
        return self.signature is not None or self.redacted is not None

    @property
    def grown_by(self) -> tuple[int, str | None, str | None]:
        """How far it has grown: what a checkpoint compares to see it changed."""
        return len(self.pieces), self.signature, self.redacted


@dataclass
class _ResponseInProgress:
    """What one model response has streamed so far, as ordered parts: recorded
    even if cut short."""

    message_id: str
    model: str
    parts: list[_OpenPart | ToolCall] = field(default_factory=list)
    views: dict[str, ToolCallView] = field(default_factory=dict)
    call_starts: dict[str, int] = field(default_factory=dict)
    # What the log holds of it: the parts checkpointed (the last one perhaps
    # still growing, as far as `last_checkpointed` says), how its calls show.
    checkpointed_parts: int = 0
    last_checkpointed: tuple[int, str | None, str | None] = (0, None, None)
    checkpointed_views: dict[str, ToolCallView] = field(default_factory=dict)
    checkpointed_at: float = field(default_factory=time.monotonic)

    def checkpoint(self) -> ResponseStreamed | None:
        """What streamed since the last checkpoint, now counted as checkpointed;
        None if nothing did."""
        new_parts: list[Part] = []
        extends_last = False
        if self.checkpointed_parts:
            grown = self.parts[self.checkpointed_parts - 1]
            if isinstance(grown, _OpenPart) and grown.grown_by != self.last_checkpointed:
                new_parts.append(grown.part(from_piece=self.last_checkpointed[0]))
                extends_last = True
        new_parts += [
            p.part() if isinstance(p, _OpenPart) else p
            for p in self.parts[self.checkpointed_parts :]
        ]
        # A call's view changes once: its title, when its arguments are complete.
        views = [v for v in self.views.values() if self.checkpointed_views.get(v.call_id) != v]
        if not new_parts and not views:
            return None
        self.checkpointed_parts = len(self.parts)
        last = self.parts[-1] if self.parts else None
        self.last_checkpointed = last.grown_by if isinstance(last, _OpenPart) else (0, None, None)
        self.checkpointed_views = dict(self.views)
        self.checkpointed_at = time.monotonic()
        return ResponseStreamed(
            message_id=self.message_id,
            model=self.model,
            parts=tuple(new_parts),
            extends_last=extends_last,
            tool_views=views,
            call_starts={v.call_id: self.call_starts[v.call_id] for v in views},
        )

    def open_part(self, kind: PartKind) -> _OpenPart:
        """The part a delta of `kind` extends: the last one if it is of that
        kind and still open."""
        last = self.parts[-1] if self.parts else None
        if isinstance(last, _OpenPart) and last.kind == kind and not last.sealed:
            return last
        opened = _OpenPart(kind)
        self.parts.append(opened)
        return opened

    @property
    def calls(self) -> list[ToolCall]:
        return [part for part in self.parts if isinstance(part, ToolCall)]

    def message(self) -> AssistantMessage:
        return AssistantMessage(
            parts=tuple(p.part() if isinstance(p, _OpenPart) else p for p in self.parts)
        )


class Turn:
    """Runs one prompt to its stop reason on behalf of a `TurnHost`."""

    def __init__(self, host: TurnHost, conversation: Conversation, turn_id: str) -> None:
        self.host = host
        self.conversation = conversation
        self.turn_id = turn_id
        self._response: _ResponseInProgress | None = None
        self._unfinished_calls: dict[str, str] = {}  # call id -> tool name
        self._call_scopes: dict[str, anyio.CancelScope] = {}
        # A finished call's last updates until the client has them: a cancel
        # that lands while they are sent leaves them to the closing.
        self._unsent: dict[str, list[SessionUpdate]] = {}
        self._closing = False
        self._compacting: str | None = None
        self.stop_note: str | None = None
        # One permission question at a time, in the order the model made the calls.
        self._asking = anyio.Lock()
        # Messages steered into the turn, waiting for its next step boundary.
        self._steered: list[Steer] = []
        self._finished = False
        # The calls that started running and have not finished; which of them run a sub-agent.
        self._running: set[str] = set()
        self._children_calls: set[str] = set()
        self.tools = host.tools_for(conversation)

    def _record(self, record: Record) -> None:
        if self.host.pauses.released:
            return  # the log keeps the turn as it was when paused
        try:
            self.host.record(record, self.conversation, self.turn_id)
        except StoreError as exc:
            # Closing, the turn answers everything it can whatever the log
            # takes; the session closes what the log lacks before the next turn.
            if not self._closing:
                raise
            log.error("turn %s could not record its closing: %s", self.turn_id, exc)

    async def run(self, prompt: UserMessage) -> StopReason:
        """Answer the prompt the host has recorded."""
        self.conversation.history.append(prompt)
        return await self._steps()

    async def go_on(self) -> StopReason:
        """Carry on a turn that was paused before a restart: the calls of its
        last response that have no result run, then the model is called."""
        waiting = unanswered_calls(self.conversation.history)
        for call in waiting:
            self._unfinished_calls[call.id] = call.name
        if waiting:
            await self._run_tool_calls(waiting)
        return await self._steps()

    async def compact(self, focus: str) -> StopReason:
        """A turn whose one step summarises the whole history (`/compact`)."""
        parts = compaction.whole(self.conversation.history)
        await self._compact("the user asked for it", parts, focus)
        self._finished = True
        return "end_turn"

    def steer(self, message: Steer) -> bool:
        """Add a user message to the turn at its next step boundary; False if
        the turn is past its last one."""
        if self._finished:
            return False
        self._steered.append(message)
        return True

    @property
    def running_tool_calls(self) -> list[str]:
        """The calls running now, sub-agents aside (they pause, not finish)."""
        return [call for call in self._running if call not in self._children_calls]

    def cancel_running_tools(self) -> None:
        for call_id in self.running_tool_calls:
            self.cancel_tool_call(call_id)

    async def _steps(self) -> StopReason:
        stop = await self._step_until_done()
        self._finished = True
        return stop

    async def _step_until_done(self) -> StopReason:
        pauses = self.host.pauses
        for _ in range(self.host.settings.max_model_calls_per_turn):
            await pauses.wait_while_paused()
            await self._take_steered()
            if (spent := self.host.budget_reached(self.conversation)) is not None:
                self._record(spent)
                await self._send(spent)
                self.stop_note = spent.message
                return "max_turn_requests"
            if self._near_the_window():
                await self._compact("the context window is nearly full", self._older())
            try:
                done, message = await self._watched_model_call()
            except ProviderFailed as failure:
                overflow = failure.error.kind == "context_overflow"
                reason = "the model's context window overflowed"
                if not overflow or not await self._compact(reason, self._older()):
                    raise
                done, message = await self._watched_model_call()
            if done is not None and done.stop_reason != "tool_use" and not self._steered:
                return done.stop_reason
            # Cut short by a pause, its finished calls are the turn's next step.
            if message.tool_calls:
                await self._run_tool_calls(message.tool_calls)
            elif done is not None and not self._steered:
                return "end_turn"
        return "max_turn_requests"

    async def _take_steered(self) -> None:
        """The messages steered into the turn join its conversation here, where
        the model reads them next and a replay shows them."""
        while self._steered:
            steer = self._steered.pop(0)
            self._record(
                UserTurn(text=steer.text, content=steer.content, message_id=steer.message_id)
            )
            self.conversation.history.append(user_message(steer.text, steer.content))
            await self._send_all(
                updates.user_updates(steer.content, steer.message_id, self.conversation.meta)
            )

    async def _watched_model_call(self) -> tuple[Done | None, AssistantMessage]:
        """A model call, the client told while the model keeps silent (`alive.py`)."""
        interval = self.host.settings.status_interval_seconds
        async with alive.ModelWatch(interval, self._model_progress, self._send):
            return await self._model_call()

    def _model_progress(self) -> alive.Progress:
        """How far the response streaming now has come, read off its parts so
        that the stream pays nothing for it; a call's arguments streaming in
        show only once they are complete."""
        response = self._response
        if response is None or not (response.parts or response.views):
            return alive.Progress(None, "first_output")
        last = response.parts[-1] if response.parts else None
        growing = last.grown_by if isinstance(last, _OpenPart) else None
        mark = (len(response.parts), len(response.views), growing)
        if len(response.views) > len(response.calls):
            return alive.Progress(mark, "tool_call_arguments")
        return alive.Progress(mark, "more_output")

    # -- one model response -----------------------------------------------

    async def _model_call(self) -> tuple[Done | None, AssistantMessage]:
        """One model response, recorded; `done` None when a pause cut it short."""
        host = self.host
        # A server's tools come and go as it does: each call offers those up now.
        self.tools = host.tools_for(self.conversation)
        request = ModelRequest(
            model=host.settings.model_name,
            system=self._system_prompt(),
            messages=tuple(self.conversation.history),
            tools=self.tools.specs(),
            max_output_tokens=host.settings.max_output_tokens,
        )
        response = self._response = _ResponseInProgress(new_id("msg"), host.settings.model_name)
        usage: Usage | None = None
        done: Done | None = None
        answering: str = host.provider.name  # until a fallback takes the call
        with host.pauses.model_stream() as streaming:
            async for event in host.provider.stream(request):
                match event:
                    case TextDelta(text=text):
                        response.open_part("text").pieces.append(text)
                        await self._chunk(response, "text", text)
                    case ThinkingDelta(text=text, signature=signature, redacted=redacted):
                        part = response.open_part("thought")
                        part.signature = signature or part.signature
                        part.redacted = redacted or part.redacted
                        part.origin = answering
                        if text:
                            part.pieces.append(text)
                            await self._chunk(response, "thought", text)
                    case RefusalDelta(text=text):
                        response.open_part("refusal").pieces.append(text)
                        await self._chunk(response, "text", text)
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
                    case Retrying():
                        await self._send(event)
                    case FallingBack(provider=provider, model=model):
                        response.model, answering = model, provider
                        await self._send(event)
                    case StreamError():
                        raise ProviderFailed(answering, event)
        if streaming.cancelled_caught:
            await self._send_all(self._abandoned_calls(response))
            return None, self._record_response(response, interrupted=True)
        if done is None:  # pragma: no cover - providers always end with Done or StreamError
            ended = StreamError(kind="protocol", message="the stream ended early")
            raise ProviderFailed(answering, ended)
        message = self._record_response(response)
        if usage is not None:
            await self._record_usage(usage, answered_by=(answering, response.model))
        return done, message

    def _system_prompt(self) -> str:
        system = system_prompt(str(self.host.cwd), self.host.additional_roots)
        if self.conversation.instructions:
            return f"{system}\n\n{SUBAGENT_PROMPT}\n\nYour role: {self.conversation.instructions}"
        if not self.conversation.is_root:
            return f"{system}\n\n{SUBAGENT_PROMPT}"
        return system

    def _checkpoint_if_due(self, response: _ResponseInProgress) -> None:
        """Write what streamed so far once it has streamed long enough, before
        the client sees more of it: a client has nothing a crash can take back
        but the last `response_checkpoint_seconds`."""
        interval = self.host.settings.response_checkpoint_seconds
        if time.monotonic() - response.checkpointed_at < interval:
            return
        if (checkpoint := response.checkpoint()) is not None:
            self._record(checkpoint)

    async def _chunk(
        self, response: _ResponseInProgress, kind: updates.ChunkKind, text: str
    ) -> None:
        self._checkpoint_if_due(response)
        await self._send(
            updates.chunk_update(kind, text, response.message_id, self.conversation.meta)
        )

    def _view(self, call_id: str, name: str, arguments: Mapping[str, Any] | None) -> ToolCallView:
        """How the call is shown; without arguments (still streaming) the title is the name."""
        tools = self.tools
        if name not in tools:
            return ToolCallView(call_id=call_id, title=name, kind="other")
        tool = tools.get(name)
        try:
            title = name if arguments is None else tool.title(arguments)
        except (KeyError, TypeError, ValueError):
            title = name
        return ToolCallView(call_id=call_id, title=title, kind=tool.kind)

    async def _announce_call(self, response: _ResponseInProgress, event: ToolCallStart) -> None:
        view = self._view(event.call_id, event.name, None)
        response.views[event.call_id] = view
        response.call_starts[event.call_id] = len(response.parts)
        self._checkpoint_if_due(response)
        await self._send(
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
        response.parts.append(
            ToolCall(
                id=event.call_id,
                name=event.name,
                arguments=event.arguments,
                signature=event.signature,
            )
        )
        self._unfinished_calls[event.call_id] = event.name
        self._checkpoint_if_due(response)
        await self._send(updates.tool_call_ready(view, raw_input, self.conversation.meta))

    def _record_response(
        self, response: _ResponseInProgress, interrupted: bool = False
    ) -> AssistantMessage:
        message = response.message()
        complete = {call.id for call in message.tool_calls}
        # In the history first: the next model call is valid whatever the log takes.
        if message.parts:  # a response cut off before its first part says nothing
            self.conversation.history.append(message)
        self._response = None
        self._record(
            AssistantResponse(
                message=message,
                message_id=response.message_id,
                model=response.model,
                tool_views=[response.views[call.id] for call in message.tool_calls],
                abandoned_calls=[v for v in response.views.values() if v.call_id not in complete],
                interrupted=interrupted,
                call_starts=response.call_starts,
            )
        )
        return message

    async def _record_usage(
        self,
        usage: Usage,
        context_used: int | None = None,
        answered_by: tuple[str, str] | None = None,
    ) -> None:
        """Count a response; `context_used`: what the conversation's context
        holds now, when this response was not a step of it (a summary);
        `answered_by`: (provider, model), when not the session's own (a fallback)."""
        settings = self.host.settings
        provider, model = answered_by or (settings.provider, settings.model_name)
        record = UsageRecorded(
            model=model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost=price_of(model, usage, provider=provider, overrides=settings.prices),
            context_used=usage.input_tokens + usage.output_tokens
            if context_used is None
            else context_used,
            context_size=context_size_of(model, settings.context_size, DEFAULT_CONTEXT_SIZE),
        )
        self._record(record)
        lineage = self.host.lineage(self.conversation)
        await self.host.send_all(updates.usage_updates(self.host.ledger, lineage))

    # -- compaction ---------------------------------------------------------

    def _near_the_window(self) -> bool:
        usage = self.host.ledger.of(self.conversation.id)
        threshold = self.host.settings.compact_at * usage.context_size
        return usage.context_size > 0 and usage.context_used >= threshold

    def _older(self) -> compaction.Split | None:
        """The history before the latest prompt, and the rest, for a compaction
        the turn makes on its own."""
        return compaction.split(self.conversation.history)

    async def _compact(self, reason: str, parts: compaction.Split | None, focus: str = "") -> bool:
        """Replace `parts.older` with the model's summary of it; False if there
        is nothing to summarise or the summary failed."""
        if parts is None:
            return False
        settings = self.host.settings
        started = CompactionStarted(compaction_id=new_id("cmp"), reason=reason)
        self._record(started)
        self._compacting = started.compaction_id
        await self._send(started)
        request = compaction.summary_request(
            settings.model_name, parts.older, settings.max_output_tokens, focus
        )
        pieces: list[str] = []
        usage: Usage | None = None
        error: str | None = None
        async for event in self.host.provider.stream(request):
            match event:
                case TextDelta(text=text):
                    pieces.append(text)
                case Usage():
                    usage = event
                case StreamError(message=message):
                    error = f"the summary could not be made: {message}"
        summary = "".join(pieces).strip()
        if error is None and not summary:
            error = "the model's summary was empty"
        if error is not None:
            await self._end_compaction(
                Compacted(compaction_id=started.compaction_id, status="failed", error=error)
            )
            return False
        history = compaction.compacted(summary, parts.kept)
        estimate = compaction.estimate_tokens(history, self._system_prompt())
        self.conversation.history = history
        ended = Compacted(
            compaction_id=started.compaction_id,
            status="completed",
            summary=summary,
            kept=len(parts.kept),
            context_estimate=estimate,
        )
        await self._end_compaction(ended)
        if usage is not None:
            await self._record_usage(usage, context_used=estimate)
        return True

    async def _end_compaction(self, ended: Compacted) -> None:
        self._record(ended)
        self._compacting = None
        await self._send(ended)

    # -- tools --------------------------------------------------------------

    async def _run_tool_calls(self, calls: tuple[ToolCall, ...]) -> None:
        """Every call in its own task and cancel scope, all at once: reads run
        side by side while a write waits for its permission."""
        try:
            async with anyio.create_task_group() as group:
                for call in calls:
                    group.start_soon(self._run_and_record, call)
        except* StoreError as failed:
            # The log cannot be written: the turn stops, saying so, not as a crash.
            raise failed.exceptions[0] from None

    async def _run_and_record(self, call: ToolCall) -> None:
        outcome: ToolOutcome | None = None
        run = _ToolRun(call)
        with anyio.CancelScope() as scope:
            self._call_scopes[call.id] = scope
            try:
                outcome = await self._run_tool_call(run)
            finally:
                del self._call_scopes[call.id]
        if outcome is None:  # this call alone was cancelled
            said = CALL_CANCELLED if run.ran else CALL_CANCELLED_UNRUN
            outcome = updates.interrupted_outcome(call.id, call.name, said)
        ended = self._unsent[call.id] = updates.tool_call_ended(outcome, self.conversation.meta)
        self._finish_call(outcome)
        await self._send_all(ended)
        del self._unsent[call.id]

    def cancel_tool_call(self, call_id: str) -> bool:
        scope = self._call_scopes.get(call_id)
        if scope is None:
            return False
        scope.cancel()
        return True

    async def _run_tool_call(self, run: _ToolRun) -> ToolOutcome:
        call = run.call
        pauses = self.host.pauses
        try:
            tool = self.tools.get(call.name)
            arguments = self.tools.parse_arguments(tool, call.arguments)
            await pauses.wait_while_paused()
            if (refusal := await self._refusal(tool, call, arguments)) is not None:
                return run.outcome("failed", refusal)
        except ToolError as error:
            return run.outcome("failed", str(error))
        # Allowed while the session was paused, it starts once it resumes.
        await pauses.wait_while_paused()
        self._running.add(call.id)
        if call.name == SUBAGENT_TOOL:
            self._children_calls.add(call.id)
        try:
            return await self._run_allowed(tool, call, arguments, run)
        finally:
            self._running.discard(call.id)

    async def _run_allowed(
        self, tool: Tool, call: ToolCall, arguments: Mapping[str, Any], run: _ToolRun
    ) -> ToolOutcome:
        meta = self.conversation.meta
        # Outside the tools' own failures: a log that cannot be written stops the turn.
        run.start()
        self._record(ToolStarted(call_id=call.id))
        await self._send(updates.tool_call_running(call.id, meta))
        try:

            async def report_progress(text: str) -> None:
                if (snapshot := run.output_so_far(text)) is not None:
                    await self._send(updates.tool_call_progress(call.id, snapshot, meta))

            async def show_terminal(terminal_id: str) -> None:
                await self._send(updates.tool_call_terminal(call.id, terminal_id, meta))

            children = _Children(self.host, self.conversation, call.id)
            context = self._context(
                report_progress=report_progress, show_terminal=show_terminal, children=children
            )
            result = await tool.run(arguments, context)
        except ToolError as error:
            return run.outcome("failed", str(error))
        except Exception as error:
            # A bug in a tool is still an answer the model can read, and the
            # turn goes on: the history must pair every call with a result.
            log.exception("tool %s failed unexpectedly", call.name)
            return run.outcome("failed", f"{call.name} failed: {type(error).__name__}: {error}")
        status: ToolStatus = "completed"
        if result.is_error:
            status = "cancelled" if result.cancelled else "failed"
        return run.outcome(status, result.output, result)

    async def _send(self, update: Outgoing) -> None:
        await self._send_all([update])

    async def _send_all(self, updates: Iterable[Outgoing]) -> None:
        """The conversation's updates in this order, nothing else between them."""
        if not self.host.pauses.released:  # else its client has gone
            await self.host.send_all((update, self.conversation) for update in updates)

    def _context(self, **extra: Any) -> ToolContext:
        environment = child_environment(self.host.settings.shell_env_allow)
        return ToolContext(
            self.host.cwd,
            additional_roots=self.host.additional_roots,
            environment=environment,
            editor=self.host.editor_files(self.conversation),
            terminals=self.host.editor_terminals(self.conversation),
            **extra,
        )

    async def _refusal(
        self, tool: Tool, call: ToolCall, arguments: Mapping[str, Any]
    ) -> str | None:
        """None if the call may run; else why not, for the model."""
        async with self._asking:
            policy = self.host.permissions
            standing = policy.decide(tool, arguments)
            if standing is not None:
                return None if standing.allowed else standing.reason
            # What the user is asked to allow: the diff of a write, the command
            # and its directory. A call that would fail is asked about as it
            # is, the user told why it would (the model reads why once it ran).
            try:
                preview = await tool.preview(arguments, self._context())
            except ToolError as error:
                preview = ToolResult(f"As it stands, this call will fail: {error}", is_error=True)
            request = RequestPermissionRequest(
                session_id=self.host.id,
                tool_call=ToolCallUpdate(
                    tool_call_id=call.id,
                    title=tool.title(arguments),
                    kind=tool.kind,
                    status="pending",
                    content=updates.shown_content(preview) or None,
                    locations=updates.shown_locations(preview) or None,
                    raw_input=dict(arguments),
                ),
                options=[
                    PermissionOption(option_id=option.option_id, name=option.name, kind=option.kind)
                    for option in policy.options(tool, arguments)
                ],
                meta=self.conversation.meta,
            )
            option_id = await self.host.request_permission(request, self.conversation)
            if option_id is None:  # the client cancelled the question: nobody refused
                return WITHDRAWN
            decision = policy.answer(tool, arguments, option_id)
            if (scope := decision.lasting) is not None:
                self._record(
                    PermissionRemembered(
                        tool=scope.tool,
                        allowed=decision.allowed,
                        command_prefix=scope.command_prefix,
                    )
                )
            return None if decision.allowed else decision.reason

    def _finish_call(self, outcome: ToolOutcome) -> None:
        # The history pairs the call with its result even if the log cannot
        # take it: the next model call in this daemon stays valid.
        self._unfinished_calls.pop(outcome.call_id, None)
        self.conversation.history.append(tool_result_message(outcome))
        self._record(outcome)

    # -- endings ------------------------------------------------------------

    def _abandoned_calls(self, response: _ResponseInProgress) -> list[Outgoing]:
        """Calls announced whose arguments never finished streaming, closed on
        the client, which would otherwise show them pending forever."""
        finished = {call.id for call in response.calls}
        return [
            updates.tool_call_abandoned(call_id, self.conversation.meta)
            for call_id in response.views.keys() - finished
        ]

    def close(self, reason: str) -> list[Outgoing]:
        """The turn stops early: keep what was said, and answer every tool call
        the model made so the history stays valid for the next model call."""
        self._closing = True
        closing: list[Outgoing] = [update for ended in self._unsent.values() for update in ended]
        self._unsent.clear()
        if self._compacting is not None:
            # The history keeps what it had: the summary never came.
            cancelled = Compacted(compaction_id=self._compacting, status="cancelled")
            self._record(cancelled)
            closing.append(cancelled)
            self._compacting = None
        response = self._response
        if response is not None:
            closing += self._abandoned_calls(response)
            if response.parts or response.views:
                self._record_response(response, interrupted=True)
        self._response = None
        for call_id, name in list(self._unfinished_calls.items()):
            outcome = updates.interrupted_outcome(call_id, name, reason)
            closing += updates.tool_call_ended(outcome, self.conversation.meta)
            self._finish_call(outcome)
        return closing


@dataclass(frozen=True)
class _Children:
    """Starts the child conversations of one `subagent` call."""

    host: TurnHost
    parent: Conversation
    call_id: str

    async def run_child(self, task: ChildTask) -> ToolResult:
        return await self.host.run_child(self.parent, self.call_id, task)


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
            plan=updates.stored_plan(shown),
        )
