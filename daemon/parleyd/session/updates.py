"""ACP `session/update` payloads built from what the daemon streams or stored.

The live turn and `session/load`'s replay both build their updates here, from
the same records, so a loaded session shows exactly what was streamed.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Literal

import msgspec

from parley_protocol.acp import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    AudioContent,
    BlobResourceContents,
    ContentToolCallContent,
    Cost,
    EmbeddedResource,
    FileEditToolCallContent,
    ImageContent,
    PlanEntry,
    SessionInfoUpdate,
    SessionUpdate,
    TerminalToolCallContent,
    TextContent,
    ToolCallContent,
    ToolCallLocation,
    ToolCallProgress,
    ToolCallStart,
    UsageUpdate,
    UserMessageChunk,
)
from parley_protocol.content import ContentBlock
from parley_protocol.parley import TurnStatus
from parleyd.providers.messages import (
    AssistantMessage,
    Attachment,
    RefusalPart,
    TextPart,
    ThinkingPart,
    ToolCall,
)
from parleyd.session.conversation import Conversation
from parleyd.session.usage import UsageLedger
from parleyd.store.records import AssistantResponse, ToolCallView, ToolOutcome
from parleyd.tools.base import ToolResult

Meta = dict[str, Any]
ChunkKind = Literal["text", "thought"]

ABANDONED = "Not run: the model's response ended before this call was complete."

log = logging.getLogger(__name__)


def parse_raw_input(arguments: str) -> Any:
    """A tool call's arguments for `rawInput`: parsed JSON, or the text itself
    when the model produced something that is not JSON."""
    if not arguments.strip():
        return {}
    try:
        # A tenth of json.loads' time, which a replay pays for every call.
        return msgspec.json.decode(arguments)
    except (msgspec.DecodeError, UnicodeEncodeError):
        pass
    try:  # what only Python's reader takes: NaN, Infinity, a lone surrogate
        return json.loads(arguments)
    except json.JSONDecodeError:
        return arguments


def chunk_update(
    kind: ChunkKind, text: str, message_id: str, meta: Meta
) -> AgentMessageChunk | AgentThoughtChunk:
    chunk_type = AgentMessageChunk if kind == "text" else AgentThoughtChunk
    return chunk_type(content=TextContent(text=text), message_id=message_id, meta=meta)


def _stored(value: Any, wire_type: Any, fallback: Any) -> Any:
    """A stored wire value read back; one that no longer validates (a type
    changed since it was written) gives `fallback`, never a failed load."""
    try:
        held: Any = msgspec.convert({"value": value}, _holder(wire_type))
        return held.value
    except msgspec.ValidationError as exc:
        log.warning("a stored %s no longer validates (%s); replaying a fallback", wire_type, exc)
        return fallback


@functools.cache
def _holder(wire_type: Any) -> type[msgspec.Struct]:
    """A Struct with one field of `wire_type`. msgspec works a union's or a
    generic's type out anew on every `convert` and a Struct's once: converting
    into the holder makes each stored value's check a tenth as costly."""
    return msgspec.defstruct("Stored", [("value", wire_type)])


def user_updates(
    content: list[dict[str, Any]], message_id: str, meta: Meta
) -> list[UserMessageChunk]:
    return [
        UserMessageChunk(content=block, message_id=message_id, meta=meta)
        for block in stored_blocks(content)
    ]


def stored_blocks(content: list[dict[str, Any]]) -> list[ContentBlock]:
    """A prompt's recorded ACP blocks, without those that no longer validate."""
    blocks = [_stored(block, ContentBlock, None) for block in content]
    return [block for block in blocks if block is not None]


def tool_call_announced(call_id: str, name: str, kind: str, meta: Meta) -> ToolCallStart:
    """The model has started a call. Its arguments are still streaming, so the
    title is the tool's name until `tool_call_ready` gives the real one."""
    return ToolCallStart(
        tool_call_id=call_id,
        title=name,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        status="pending",
        meta=meta,
    )


def tool_call_ready(view: ToolCallView, raw_input: Any, meta: Meta) -> ToolCallProgress:
    """The arguments are complete: the final title and the parsed input."""
    return ToolCallProgress(
        tool_call_id=view.call_id, title=view.title, raw_input=raw_input, meta=meta
    )


def tool_call_running(call_id: str, meta: Meta) -> ToolCallProgress:
    return ToolCallProgress(tool_call_id=call_id, status="in_progress", meta=meta)


def tool_call_progress(call_id: str, text: str, meta: Meta) -> ToolCallProgress:
    """Partial output of a running tool (a shell command's lines so far)."""
    return ToolCallProgress(
        tool_call_id=call_id,
        content=_text_content(text),
        meta=meta,
    )


def _text_content(text: str) -> list[ToolCallContent]:
    return [ContentToolCallContent(content=TextContent(text=text))]


def tool_call_abandoned(call_id: str, meta: Meta) -> ToolCallProgress:
    """A call the model never finished asking for: it did not run."""
    return ToolCallProgress(
        tool_call_id=call_id,
        status="failed",
        content=_text_content(ABANDONED),
        meta=meta,
    )


def response_updates(record: AssistantResponse, meta: Meta) -> list[SessionUpdate]:
    """A stored response as the client saw it, each part one update: the
    deltas of a part are merged, so a long answer replays in a few updates.
    Each call's `tool_call` goes where it streamed, before the parts that
    followed it."""
    replayed: list[SessionUpdate] = []
    message: AssistantMessage = record.message
    views = {view.call_id: view for view in record.tool_views}
    calls = {call.id: call for call in message.tool_calls}
    # Part position -> the calls announced when the response had that many parts.
    starting: dict[int, list[ToolCall]] = {}
    for call_id, start in record.call_starts.items():
        if call_id in calls:
            starting.setdefault(start, []).append(calls[call_id])
    announced: set[str] = set()

    def announce(call: ToolCall) -> None:
        view = views.get(call.id)
        kind = "other" if view is None else view.kind
        replayed.append(tool_call_announced(call.id, call.name, kind, meta))
        announced.add(call.id)

    for position, part in enumerate(message.parts):
        for call in starting.get(position, ()):
            if call.id not in announced:
                announce(call)
        match part:
            case TextPart(text=text) | RefusalPart(text=text) if text:
                replayed.append(chunk_update("text", text, record.message_id, meta))
            case ThinkingPart(text=text) if text:
                replayed.append(chunk_update("thought", text, record.message_id, meta))
            case ToolCall():
                if part.id not in announced:
                    announce(part)
                view = views.get(part.id) or ToolCallView(part.id, part.name, "other")
                replayed.append(tool_call_ready(view, parse_raw_input(part.arguments), meta))
    for view in record.abandoned_calls:
        replayed.append(tool_call_announced(view.call_id, view.title, view.kind, meta))
        replayed.append(tool_call_abandoned(view.call_id, meta))
    return replayed


def display_content(result: ToolResult) -> list[dict[str, Any]]:
    """How a tool's result is shown to the client, as stored in the log."""
    built: list[dict[str, Any]] = msgspec.to_builtins(shown_content(result))
    return built


def stored_plan(result: ToolResult) -> list[dict[str, Any]] | None:
    """The plan a tool set, as its record stores it: ACP plan entries."""
    if result.plan is None:
        return None
    entries = [
        PlanEntry(content=s.content, priority=s.priority, status=s.status) for s in result.plan
    ]
    built: list[dict[str, Any]] = msgspec.to_builtins(entries)
    return built


def shown_locations(result: ToolResult) -> list[ToolCallLocation]:
    return [ToolCallLocation(path=str(path)) for path in result.locations]


def shown_content(result: ToolResult) -> list[ToolCallContent]:
    """A tool's result (or preview) as ACP tool-call content: its diff, its
    text, its attachments. The record keeps the attachments only here, and the
    model's copy is read back from it (`user_input.tool_result_message`)."""
    content: list[ToolCallContent] = []
    if result.diff is not None:
        content.append(
            FileEditToolCallContent(
                path=str(result.diff.path),
                old_text=result.diff.old_text,
                new_text=result.diff.new_text,
            )
        )
    if result.output:
        content.append(ContentToolCallContent(content=TextContent(text=result.output)))
    content += [
        ContentToolCallContent(content=_attachment_block(each)) for each in result.attachments
    ]
    return content


def _attachment_block(attached: Attachment) -> ContentBlock:
    """An attachment as the ACP block that `user_input.attachments` reads back as it."""
    if attached.is_image:
        return ImageContent(data=attached.data, mime_type=attached.mime_type, uri=attached.name)
    if attached.mime_type.startswith("audio/"):
        return AudioContent(data=attached.data, mime_type=attached.mime_type)  # ACP names none
    resource = BlobResourceContents(
        uri=attached.name or attached.file_name, mime_type=attached.mime_type, blob=attached.data
    )
    return EmbeddedResource(resource=resource)


def interrupted_outcome(call_id: str, name: str, reason: str) -> ToolOutcome:
    """The result of a call that never finished (cancelled, or the daemon stopped)."""
    return ToolOutcome(
        call_id=call_id,
        name=name,
        status="cancelled",
        output=reason,
        content=display_content(ToolResult(output=reason, is_error=True)),
    )


def tool_call_finished(outcome: ToolOutcome, meta: Meta) -> ToolCallProgress:
    return ToolCallProgress(
        tool_call_id=outcome.call_id,
        status="completed" if outcome.status == "completed" else "failed",
        content=_stored(outcome.content, list[ToolCallContent], _text_content(outcome.output)),
        locations=[ToolCallLocation(path=path) for path in outcome.locations] or None,
        raw_output={"output": outcome.output, "durationMs": outcome.duration_ms},
        meta=meta,
    )


def tool_call_ended(outcome: ToolOutcome, meta: Meta) -> list[SessionUpdate]:
    """What a finished call says: its end, then the plan it set, if it set one."""
    ended: list[SessionUpdate] = [tool_call_finished(outcome, meta)]
    if outcome.plan is not None:
        entries = _stored(outcome.plan, list[PlanEntry], None)
        if entries is not None:
            ended.append(AgentPlanUpdate(entries=entries, meta=meta))
    return ended


def tool_call_terminal(call_id: str, terminal_id: str, meta: Meta) -> ToolCallProgress:
    """The client's terminal the call's command runs in, shown in the call while
    it runs. Live only: a replay, long after the terminal is gone, shows what
    the command printed instead."""
    return ToolCallProgress(
        tool_call_id=call_id, content=[TerminalToolCallContent(terminal_id=terminal_id)], meta=meta
    )


def tool_call_lifecycle(
    outcome: ToolOutcome, meta: Meta, *, start_replayed: bool
) -> list[SessionUpdate]:
    """A finished call's updates from `in_progress` on, as they streamed live;
    `start_replayed`: its `tool_start` record already gave the `in_progress`."""
    running = (
        [tool_call_running(outcome.call_id, meta)] if outcome.ran and not start_replayed else []
    )
    progress = [tool_call_progress(outcome.call_id, text, meta) for text in outcome.progress]
    return [*running, *progress, *tool_call_ended(outcome, meta)]


def usage_updates(
    ledger: UsageLedger, lineage: list[Conversation], *, turn_ended: bool = False
) -> list[tuple[UsageUpdate, Conversation]]:
    """The figures of a conversation and of each ancestor, whose totals include
    it, ending with the root's: the ACP figures (context used and size, cost
    with descendants) and Parley's detail under `_meta.parley.usage`.
    `turn_ended`: the first conversation's turn is over, its figures final."""
    reported = []
    for conversation in lineage:
        usage = ledger.of(conversation.id)
        # ACP's cost is the whole cost: none while part of it is unknown (the
        # detail's `priced` says so, and has the part that is known).
        cost = usage.total.cost if usage.total.priced else None
        final = turn_ended and conversation is lineage[0]
        update = UsageUpdate(
            used=usage.context_used,
            size=usage.context_size,
            cost=None if cost is None else Cost(amount=cost, currency="USD"),
            meta=conversation.meta_with(usage=ledger.detail(conversation.id, turn_ended=final)),
        )
        reported.append((update, conversation))
    return reported


TurnStatusName = Literal["running", "paused", "idle"]


def turn_status_update(
    state: TurnStatusName,
    reason: str | None,
    root: Conversation,
    *,
    stop_reason: str | None = None,
    message_id: str | None = None,
) -> SessionInfoUpdate:
    """The session's turn paused, went on, began or ended: a
    `session_info_update` (about the whole session, so on its root) with
    `_meta.parley.turn`."""
    status = TurnStatus(state=state, reason=reason, stop_reason=stop_reason, message_id=message_id)
    return SessionInfoUpdate(meta=root.meta_with(turn=status))
