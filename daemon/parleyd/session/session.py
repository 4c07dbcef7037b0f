"""A live session: its tree of conversations, its log, and the one prompt
turn it may run.

The session owns its turn through an explicit state, `idle -> running ->
cancelling -> idle`, with `running <-> paused` on the way, and answers every
request from that state: a second cancel, or a cancel while the turn is
closing, changes nothing. A paused turn holds at its step boundaries (see
`pause.py`); its `session/prompt` stays open, and a pause recorded in the log
outlives the daemon: a load keeps the turn open and paused, and a resume then
carries it on from its history. A turn runs in
a task of its own under the session's cancel scope; whatever stops it
(its end, a cancel, a provider failure, a bug), the closing runs shielded and
bounded: what was said is recorded, open tool calls are answered, the turn's
end is written and fsynced, and the session is ready for the next prompt.

A `subagent` tool call runs a child conversation's turn inside the parent's
tool call, through the same steps, under a cancel scope of its own: cancelling
the child ends it with what it has, and the parent's turn goes on.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio

from parley_protocol.acp import (
    ClientCapabilities,
    RequestPermissionRequest,
    SessionNotification,
    SessionUpdate,
    StopReason,
)
from parleyd.config import Settings
from parleyd.providers.base import Provider
from parleyd.providers.messages import AssistantMessage, UserMessage
from parleyd.session import budget, updates
from parleyd.session.conversation import Budget, Conversation, new_id
from parleyd.session.errors import (
    ProviderFailed,
    SessionBusy,
    StorageFailed,
    TurnCrashed,
    TurnFailed,
    WrongTurnState,
)
from parleyd.session.pause import PauseGate
from parleyd.session.port import Steer, TurnFactory, TurnLoop
from parleyd.session.replay import closing_records
from parleyd.session.titles import title_from, title_update
from parleyd.session.usage import UsageLedger
from parleyd.session.wire import ChildState, Outgoing, SessionWire
from parleyd.store.index import SessionIndex
from parleyd.store.log import SessionLog, StoreError, read_log
from parleyd.store.records import (
    BudgetReached,
    BudgetSet,
    ConversationStarted,
    Record,
    TitleSet,
    TurnEnded,
    TurnEnding,
    TurnPaused,
    TurnResumed,
    TurnStarted,
    UserTurn,
)
from parleyd.tools.base import ChildTask, ToolError, ToolResult
from parleyd.tools.permission import PermissionPolicy
from parleyd.tools.registry import ToolRegistry
from parleyd.tools.subagent import NAME as SUBAGENT

log = logging.getLogger(__name__)

# The closing of a turn sends a few updates; a client that stopped reading
# must not hold the session (and the fsync) hostage.
_CLOSING_SECONDS = 5.0

_CANCELLED = "Cancelled by the user before it finished."


class ClientChannel(Protocol):
    """The client as a session sees it."""

    @property
    def capabilities(self) -> ClientCapabilities | None:
        """What the client advertised at `initialize`."""
        ...

    async def send_update(self, notification: SessionNotification, lane: str) -> None:
        """Send an update of the session `lane` (its updates stay in order)."""
        ...

    async def request_permission(self, request: RequestPermissionRequest) -> str | None:
        """The option the user chose, or None if the request was cancelled."""
        ...


class TurnState(enum.Enum):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"


@dataclass(frozen=True)
class _Prompt:
    """What opens a turn: the user's words for the model, and as the client sent them."""

    text: str
    content: list[dict[str, Any]]


@dataclass(frozen=True)
class _TurnEnd:
    stop: StopReason
    failure: TurnFailed | None
    # Why the turn stopped early (a budget), for whoever reads its answer.
    note: str | None = None


class Session:
    def __init__(
        self,
        *,
        session_id: str,
        cwd: Path,
        settings: Settings,
        log_file: SessionLog,
        index: SessionIndex,
        root: Conversation,
        channel: ClientChannel,
        provider: Provider,
        tools: ToolRegistry,
        permissions: PermissionPolicy,
        new_turn: TurnFactory,
        ledger: UsageLedger | None = None,
        title: str | None = None,
    ) -> None:
        self.id = session_id
        self.cwd = cwd
        self.settings = settings
        self.log = log_file
        self.index = index
        self.root = root
        self.conversations: dict[str, Conversation] = {root.id: root}
        self.channel = channel
        self.wire = SessionWire(session_id, self.conversations, channel.capabilities)
        self.provider = provider
        self.tools = tools
        self.permissions = permissions
        self.ledger = ledger or UsageLedger()
        self.ledger.adopt(root.id, None)
        self.title = title
        self.state = TurnState.IDLE
        self.pauses = PauseGate()
        # The root's turn, while one is open: where a pause is recorded.
        self._root_turn: str | None = None
        # A turn paused before a restart: conversation id -> its open turn's
        # id, each carried on when the session resumes.
        self._paused_turns: dict[str, str | None] = {}
        self._new_turn = new_turn
        # The running turn of each conversation: the root's, and its children's.
        self._turns: dict[str, TurnLoop] = {}
        self._child_scopes: dict[str, anyio.CancelScope] = {}
        # Made for each turn (anyio's event-loop backend loads with the first).
        self._scope: anyio.CancelScope | None = None
        self._task: asyncio.Task[StopReason] | None = None
        # The log lacks the end of a turn that closed here (it could not be written).
        self._log_behind = False

    # -- the turn's host ------------------------------------------------------

    async def send(self, update: Outgoing, conversation: Conversation) -> None:
        notification = self.wire.notification(update, conversation)
        if notification is not None:
            await self.channel.send_update(notification, self.id)

    def record(self, record: Record, conversation: Conversation, turn: str | None) -> Record:
        record.turn = turn
        appended = self.log.append(record, conversation.id)
        self.ledger.observe(appended)
        return appended

    async def request_permission(
        self, request: RequestPermissionRequest, conversation: Conversation
    ) -> str | None:
        request.session_id = self.wire.session_id_of(conversation)
        if conversation.is_root:
            return await self.channel.request_permission(request)
        await self.send(ChildState(conversation, "requires_action"), conversation)
        answer = await self.channel.request_permission(request)
        await self.send(ChildState(conversation, "running"), conversation)
        return answer

    def tools_for(self, conversation: Conversation) -> ToolRegistry:
        """The tools a conversation may use: its parent's, narrowed to those it
        was given, and no `subagent` at the deepest level allowed."""
        if conversation.is_root:
            tools = self.tools
        else:
            tools = self.tools_for(self.conversations[conversation.parent or ""])
            if conversation.tool_names is not None:
                tools = tools.subset(conversation.tool_names)
        if conversation.depth >= self.settings.max_subagent_depth and SUBAGENT in tools:
            tools = tools.without(SUBAGENT)
        return tools

    def lineage(self, conversation: Conversation) -> list[Conversation]:
        return [self.conversations[conv] for conv in self.ledger.lineage(conversation.id)]

    def budget_reached(self, conversation: Conversation) -> BudgetReached | None:
        return budget.reached(self.lineage(conversation), self.ledger, time.time())

    def set_budget(self, conversation: Conversation, limits: Budget) -> None:
        """The conversation's budget from now on; a running turn checks it
        before its next model call."""
        self.record(
            BudgetSet(cost=limits.cost, responses=limits.responses, seconds=limits.seconds),
            conversation,
            None,
        )
        conversation.budget = limits

    async def run_child(self, parent: Conversation, call_id: str, task: ChildTask) -> ToolResult:
        paused_child = next(
            (c for c in self.conversations.values() if c.parent_tool_call == call_id), None
        )
        if paused_child is not None and paused_child.id in self._paused_turns:
            return await self._go_on_child(paused_child, task)
        child = Conversation(
            id=new_id("conv"),
            parent=parent.id,
            parent_tool_call=call_id,
            depth=parent.depth + 1,
            title=task.title,
            description=task.role,
            instructions=task.role,
            tool_names=task.tools,
        )
        self.conversations[child.id] = child
        try:
            self.tools_for(child)  # a tool the parent lacks is the model's error to read
        except ToolError:
            del self.conversations[child.id]
            raise
        # The link to the parent is in the log before anything the child writes.
        started = self.record(child.start_record(), child, None)
        assert isinstance(started, ConversationStarted)
        self.index.add_conversation(self.id, started)
        limits = Budget(cost=task.cost, responses=task.responses, seconds=task.seconds)
        if limits != child.budget:
            self.set_budget(child, limits)
        await self.send(ChildState(child, "running", announce=True), parent)
        return await self._run_child_turn(child, new_id("turn"), _child_prompt(task))

    async def _go_on_child(self, child: Conversation, task: ChildTask) -> ToolResult:
        """A child paused before a restart goes on where it stopped; one that had
        not begun its task yet begins it."""
        turn_id = self._paused_turns.pop(child.id) or new_id("turn")
        await self.send(ChildState(child, "running"), child)
        began = any(isinstance(m, UserMessage) for m in child.history)
        return await self._run_child_turn(child, turn_id, None if began else _child_prompt(task))

    async def _run_child_turn(
        self, child: Conversation, turn_id: str, prompt: _Prompt | None
    ) -> ToolResult:
        scope = self._child_scopes[child.id] = anyio.CancelScope()
        try:
            end = await self._run_turn(scope, child, turn_id, prompt)
        finally:
            del self._child_scopes[child.id]
        return child_answer(child, end)

    # -- turns ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state is not TurnState.IDLE

    async def prompt(self, text: str, content: list[dict[str, Any]]) -> StopReason:
        """Run one turn to its end. Raises SessionBusy if one is running, and a
        TurnFailed once a failed turn has been closed and recorded."""
        if self.state is TurnState.PAUSED:
            raise SessionBusy(f"session {self.id} has a paused turn: resume it or cancel it first")
        if self.state is TurnState.CANCELLING and self._task is not None:
            # Its end is being recorded: the new turn follows it.
            await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)
        if self.state is not TurnState.IDLE:
            raise SessionBusy(
                f"session {self.id} is already running a prompt; cancel it or wait for its answer"
            )
        return await self._start(_Prompt(text, content))

    async def _start(self, prompt: _Prompt | None, steer: Steer | None = None) -> StopReason:
        """Run the root's turn in a task of its own: whatever happens to the
        request that asked for it, the turn runs to its recorded end. A new
        turn for `prompt`, or, with none, the paused one carried on."""
        self.state = TurnState.RUNNING
        scope = self._scope = anyio.CancelScope()
        self._task = asyncio.create_task(self._prompt_turn(scope, prompt, steer))
        return await asyncio.shield(self._task)

    def cancel(self) -> None:
        """Stop the running or paused turn; it answers `cancelled`. Idempotent."""
        if self.state is TurnState.PAUSED and self._task is None:
            # Paused before a restart: carried on already stopped, its turns
            # close as cancelled.
            self.state = TurnState.CANCELLING
            scope = self._scope = anyio.CancelScope()
            scope.cancel()
            self._task = asyncio.create_task(self._prompt_turn(scope, None, None))
            return
        if self.state in (TurnState.RUNNING, TurnState.PAUSED) and self._scope is not None:
            self.state = TurnState.CANCELLING
            self._scope.cancel()

    async def pause(self, reason: str | None, cancel_running: bool) -> list[str]:
        """Hold the running turn at its earliest safe point; the calls still
        finishing. Recorded and synced: the pause outlives the daemon."""
        if self.state is not TurnState.RUNNING:
            raise WrongTurnState(f"session {self.id} has no running turn to pause")
        self.state = TurnState.PAUSED
        self.pauses.pause()
        self.record(TurnPaused(reason=reason), self.root, self._root_turn)
        await self.send(updates.turn_status_update("paused", reason, self.root), self.root)
        if cancel_running:
            for turn in list(self._turns.values()):
                turn.cancel_running_tools()
        await self.pauses.streams_stopped()
        await anyio.to_thread.run_sync(self.log.sync)
        return [call for turn in list(self._turns.values()) for call in turn.running_tool_calls]

    async def resume(self, steer: Steer | None) -> StopReason | None:
        """Carry the paused turn on, `steer` joining it first. A turn paused in
        this daemon goes on in its own `session/prompt` (None here); one paused
        before a restart runs now, and its stop reason is returned."""
        if self.state is not TurnState.PAUSED:
            raise WrongTurnState(f"session {self.id} has no paused turn to resume")
        root_turn = self._turns.get(self.root.id)
        self.record(TurnResumed(), self.root, self._root_turn)
        if root_turn is None:
            await self._announce_running()
            return await self._start(None, steer)
        if steer is not None and not root_turn.steer(steer):
            raise WrongTurnState(f"session {self.id}: the turn has ended; send a prompt")
        self.state = TurnState.RUNNING
        self.pauses.resume()
        await self._announce_running()
        return None

    async def _announce_running(self) -> None:
        await self.send(updates.turn_status_update("running", None, self.root), self.root)

    def steer(self, steer: Steer, conversation_id: str | None = None) -> None:
        """Add a user message to a running turn (the root's unless a child is
        named) at its next step boundary."""
        turn = self._turns.get(conversation_id or self.root.id)
        if self.state is not TurnState.RUNNING or turn is None or not turn.steer(steer):
            raise WrongTurnState(f"session {self.id} has no running turn to steer; send a prompt")

    def paused_on_load(self, turns: dict[str, str | None]) -> None:
        """The log left the session's turn paused, in these open turns."""
        self.state = TurnState.PAUSED
        self._paused_turns = dict(turns)
        self._root_turn = turns.get(self.root.id)

    def cancel_conversation(self, conversation_id: str) -> bool:
        """Stop a running child: it ends with what it has, which its parent's
        `subagent` call returns, and the parent's turn goes on."""
        scope = self._child_scopes.get(conversation_id)
        if self.state is not TurnState.RUNNING or scope is None:
            return False
        scope.cancel()
        return True

    def cancel_tool_call(self, call_id: str) -> bool:
        """Stop one running tool call of the turn; False if there is none such."""
        if self.state is not TurnState.RUNNING:
            return False
        for child_id in self._child_scopes:
            if self.conversations[child_id].parent_tool_call == call_id:
                return self.cancel_conversation(child_id)
        return any(turn.cancel_tool_call(call_id) for turn in list(self._turns.values()))

    async def _prompt_turn(
        self, scope: anyio.CancelScope, prompt: _Prompt | None, steer: Steer | None
    ) -> StopReason:
        turn_id = new_id("turn") if prompt is not None else self._root_turn or new_id("turn")
        self._root_turn = turn_id
        try:
            if self._log_behind:
                self._close_turns_in_log()
            end = await self._run_turn(scope, self.root, turn_id, prompt, steer)
            if self._paused_turns and not self.pauses.released:
                # Children paused before a restart that the turn's end left
                # open (it was cancelled before it reached them).
                self._paused_turns.clear()
                self._close_turns_in_log()
            if prompt is None and scope.cancel_called:
                # No prompt is open to answer `cancelled`: say the turn is over.
                await self.send(updates.turn_status_update("idle", None, self.root), self.root)
        finally:
            self.state = TurnState.IDLE
            self.pauses.resume()
            self._root_turn = None
            self._task = None
        if end.failure is not None:
            raise end.failure
        return end.stop

    async def _run_turn(
        self,
        scope: anyio.CancelScope,
        conversation: Conversation,
        turn_id: str,
        prompt: _Prompt | None,
        steer: Steer | None = None,
    ) -> _TurnEnd:
        """One turn of one conversation, from its first record to its recorded
        end; without a prompt, a paused turn carried on from its history."""
        opening: Sequence[SessionUpdate] = ()
        if prompt is not None:
            opening = self._open_turn(conversation, turn_id, prompt)
        turn = self._turns[conversation.id] = self._new_turn(self, conversation, turn_id)
        if steer is not None:
            turn.steer(steer)
        stop: StopReason = "cancelled"
        failure: TurnFailed | None = None
        try:
            with scope:
                for update in opening:
                    await self.send(update, conversation)
                try:
                    stop = await (turn.go_on() if prompt is None else turn.run(prompt.text))
                except ProviderFailed as exc:
                    failure = exc
                except StoreError as exc:
                    log.error("turn %s of session %s stopped: %s", turn_id, self.id, exc)
                    failure = StorageFailed(str(exc))
                except Exception as exc:
                    log.exception("turn %s of session %s failed", turn_id, self.id)
                    failure = TurnCrashed(f"{type(exc).__name__}: {exc}")
            if scope.cancel_called:
                # ACP: once cancelled, the answer is `cancelled`, whatever else
                # went wrong while the turn stopped.
                stop, failure = "cancelled", None
        finally:
            if self.pauses.released:
                # Let go while paused: the log keeps the turn open, as it was.
                del self._turns[conversation.id]
            else:
                # Also when the cancel comes from further up (the parent's turn).
                with anyio.CancelScope(shield=True):
                    await self._close_turn(turn, conversation, turn_id, stop, failure)
        return _TurnEnd(stop, failure, turn.stop_note)

    def _open_turn(
        self, conversation: Conversation, turn_id: str, prompt: _Prompt
    ) -> Sequence[SessionUpdate]:
        """Record a new turn and its prompt; the updates that show them."""
        self.record(TurnStarted(), conversation, turn_id)
        message_id = new_id("msg")
        user_turn = UserTurn(text=prompt.text, content=prompt.content, message_id=message_id)
        self.record(user_turn, conversation, turn_id)
        if not conversation.is_root:
            # The client sent the root's prompt; a child's task it has not seen.
            return updates.user_updates(prompt.content, message_id, conversation.meta)
        opening: list[SessionUpdate] = []
        if self.title is None and (title := title_from(prompt.text)) is not None:
            self.title = title
            self.record(TitleSet(title=title), conversation, turn_id)
            opening.append(title_update(title, conversation))
        # Listed from its first prompt on (the index rebuilds that from UserTurn).
        self.index.touch(self.id, time.time(), self.title)
        return opening

    async def _close_turn(
        self,
        turn: TurnLoop,
        conversation: Conversation,
        turn_id: str,
        stop: StopReason,
        failure: TurnFailed | None,
    ) -> None:
        ending: TurnEnding = "error" if failure else stop
        reason = _CANCELLED if failure is None else f"Not run: the turn failed ({failure})."
        closing: list[tuple[Outgoing, Conversation]] = []
        try:
            closing += [(update, conversation) for update in turn.close(reason)]
            error = None if failure is None else str(failure)
            self.record(TurnEnded(stop_reason=ending, error=error), conversation, turn_id)
            # The turn's time counts now, in the figures of its whole lineage.
            closing += updates.usage_updates(
                self.ledger, self.lineage(conversation), turn_ended=True
            )
        except StoreError as exc:
            # The log itself failed (a full disk): the client still gets its
            # answer, and the turn is closed in the log before the next one.
            log.error("could not record the end of turn %s: %s", turn_id, exc)
            self._log_behind = True
        except Exception:
            log.exception("could not close turn %s", turn_id)
            self._log_behind = True
        if not conversation.is_root:
            error = None if failure is None else str(failure)
            closing.append(
                (ChildState(conversation, "idle", ending=ending, error=error), conversation)
            )
        with anyio.move_on_after(_CLOSING_SECONDS) as sending:
            for item, about in closing:
                await self.send(item, about)
        if sending.cancelled_caught:
            log.warning("turn %s: the client did not take its closing updates in time", turn_id)
        del self._turns[conversation.id]
        if not conversation.is_root:
            return
        try:
            await anyio.to_thread.run_sync(self.log.sync)
        except OSError:
            log.exception("could not sync the log of session %s", self.id)
        self.index.touch(self.id, time.time(), self.title)

    def _close_turns_in_log(self) -> None:
        """A turn whose end the log could not take (a full disk) is closed there
        before the next one begins, as a load would close it."""
        for record in closing_records(read_log(self.log.folder).records):
            self.log.append(record, record.conv)
        self._log_behind = False

    async def close(self) -> None:
        """Stop a running turn, wait for its recorded end, and release the log.
        A paused turn stays paused: the log has it so, for a later load."""
        if self.state is TurnState.PAUSED:
            self.pauses.release()
            if self._scope is not None:
                self._scope.cancel()
        else:
            self.cancel()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self.log.close()


def _child_prompt(task: ChildTask) -> _Prompt:
    return _Prompt(task.task, [{"type": "text", "text": task.task}])


def child_answer(child: Conversation, end: _TurnEnd) -> ToolResult:
    """What a `subagent` call returns: the child's answer, or what it had and why
    it stopped; never nothing."""
    stop, failure = end.stop, end.failure
    said = next(
        (m.text for m in reversed(child.history) if isinstance(m, AssistantMessage) and m.text),
        "",
    )
    if failure is None and stop == "end_turn":
        return ToolResult(said or "The sub-agent finished without a written answer.")
    if failure is not None:
        why = f"The sub-agent failed: {failure}."
    elif stop == "cancelled":
        why = "The sub-agent was cancelled by the user before it finished."
    elif end.note is not None:
        why = f"The sub-agent {end.note[0].lower()}{end.note[1:]}"
    else:
        why = f"The sub-agent stopped before it finished ({stop})."
    so_far = f" What it had so far:\n\n{said}" if said else " It had not answered yet."
    return ToolResult(why + so_far, is_error=True, cancelled=stop == "cancelled")
