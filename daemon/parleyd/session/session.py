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

Messages queued while a turn runs (see `queue.py`) wait for its end: whatever
ends it but a cancel, the queue's next message opens the next turn, told to
the client as a turn status `running` and then `idle` with its stop reason,
once the request that answers the turn before has its answer. A cancel holds
the queue (its `session/prompt`s answer `cancelled`, injected messages wait)
until the client next prompts or queues a message.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Iterable, Sequence
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
from parley_protocol.mcp_servers import McpServerConfig
from parleyd.config import Settings
from parleyd.mcp.host import McpHost, McpServerStatus
from parleyd.pricing import price_for
from parleyd.providers.base import Provider
from parleyd.providers.messages import AssistantMessage, UserMessage
from parleyd.session import budget, compaction, updates
from parleyd.session.conversation import Budget, Conversation, new_id
from parleyd.session.editor import ClientFiles, ClientTerminals, SessionScoped
from parleyd.session.errors import (
    EditorGone,
    InvalidValue,
    ProviderFailed,
    SessionBusy,
    StorageFailed,
    TurnCrashed,
    TurnFailed,
    WrongTurnState,
)
from parleyd.session.journal import UpdateJournal, numbered
from parleyd.session.pause import PauseGate
from parleyd.session.port import Steer, TurnFactory, TurnLoop
from parleyd.session.queue import MessageQueue, WaitingMessage
from parleyd.session.replay import closing_records
from parleyd.session.titles import title_from, title_update
from parleyd.session.unattended import UNATTENDED
from parleyd.session.usage import UsageLedger
from parleyd.session.user_input import user_message
from parleyd.session.wire import ChildState, Outgoing, SessionWire
from parleyd.store.index import SessionIndex
from parleyd.store.log import SessionLog, StoreError, read_log
from parleyd.store.records import (
    BudgetReached,
    BudgetSet,
    ConversationStarted,
    QueuedReplaced,
    QueuedWithdrawn,
    Record,
    TitleSet,
    TurnEnded,
    TurnEnding,
    TurnPaused,
    TurnResumed,
    TurnStarted,
    UserTurn,
)
from parleyd.tools.base import ChildTask, EditorFiles, EditorTerminals, ToolError, ToolResult
from parleyd.tools.environment import child_environment
from parleyd.tools.permission import PermissionPolicy
from parleyd.tools.registry import ToolRegistry
from parleyd.tools.subagent import NAME as SUBAGENT

log = logging.getLogger(__name__)

# The closing of a turn sends a few updates; a client that stopped reading
# must not hold the session (and the fsync) hostage.
_CLOSING_SECONDS = 5.0

# What a tool call the turn ends without running reads as, by why it ended.
_CANCELLED = "Cancelled by the user before it finished."
_NOT_RUN: dict[StopReason, str] = {
    "refusal": "Not run: the model refused to go on.",
    "max_tokens": "Not run: the model's response reached its length limit.",
    "max_turn_requests": "Not run: the turn stopped at a limit (model calls or a budget).",
}


class ClientChannel(Protocol):
    """The client as a session sees it."""

    @property
    def label(self) -> str:
        """Which editor this is, in words (`connection 2, Neovim 0.12`)."""
        ...

    @property
    def capabilities(self) -> ClientCapabilities | None:
        """What the client advertised at `initialize`."""
        ...

    async def send_updates_in_lane(
        self, notifications: Sequence[SessionNotification], lane: str
    ) -> None:
        """Send updates of the session `lane`, in this order and at once: the
        lane's updates stay in the order of these calls."""
        ...

    async def request_permission(self, request: RequestPermissionRequest) -> str | None:
        """The option the user chose, or None if the request was cancelled."""
        ...

    async def client_request(self, method: str, params: SessionScoped) -> bytes:
        """The raw result of a request to the client (ACP's `fs/*`,
        `terminal/*`), or ClientRequestFailed with the client's error."""
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
    # The id the client was given for it (a queued message); a new one otherwise.
    message_id: str | None = None
    # The client has not seen it (a queued message, a child's task): its
    # `user_message_chunk`s open the turn. The client shows the prompts it sends.
    echoed: bool = False
    # `/compact`: the turn summarises the history, `text` says what to keep
    # above all, and nothing of it joins the history.
    compaction: bool = False

    @property
    def message(self) -> UserMessage:
        return user_message(self.text, self.content)


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
        additional_roots: tuple[Path, ...] = (),
        index: SessionIndex,
        root: Conversation,
        channel: ClientChannel,
        provider: Provider,
        tools: ToolRegistry,
        permissions: PermissionPolicy,
        new_turn: TurnFactory,
        ledger: UsageLedger | None = None,
        title: str | None = None,
        mcp_servers: Sequence[McpServerConfig] = (),
    ) -> None:
        self.id = session_id
        self.cwd = cwd
        # Folders the session may work in besides `cwd` (ACP `additionalDirectories`).
        self.additional_roots = additional_roots
        self.settings = settings
        self.log = log_file
        self.index = index
        self.root = root
        self.conversations: dict[str, Conversation] = {root.id: root}
        self._channel = channel
        self.wire = SessionWire(session_id, self.conversations, channel.capabilities)
        # Set, and replaced by a new one, each time the session changes editors.
        self._rehomed = asyncio.Event()
        self.journal = UpdateJournal(log_file.next_seq)
        # The channel of the editor that asked for the running root turn.
        self._turn_channel: ClientChannel | None = None
        self.provider = provider
        self._builtin_tools = tools
        # Started once the client knows the session (`start_mcp_servers`).
        self.mcp = McpHost(
            mcp_servers,
            cwd,
            child_environment(settings.shell_env_allow),
            report=self._tell_mcp_status,
            start_timeout=settings.mcp_start_timeout,
        )
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
        self.queue = MessageQueue(session_id)
        # Set by a cancel: the queue waits until the client next prompts or queues.
        self._queue_held = False
        # Made for each turn (anyio's event-loop backend loads with the first).
        self._scope: anyio.CancelScope | None = None
        self._task: asyncio.Task[Any] | None = None
        # The task serving the request the root's turn answers, if one does.
        self._turn_request: asyncio.Future[Any] | None = None
        # The log lacks the end of a turn that closed here (it could not be written).
        self._log_behind = False

    @property
    def tools(self) -> ToolRegistry:
        """The built-in tools, and those of the MCP servers up now."""
        return self._builtin_tools.with_tools(self.mcp.tools())

    async def _tell_mcp_status(self, status: McpServerStatus) -> None:
        await self.send(status, self.root)

    # -- the turn's host ------------------------------------------------------

    async def send(self, update: Outgoing, conversation: Conversation) -> None:
        await self.send_all([(update, conversation)])

    async def send_all(self, items: Iterable[tuple[Outgoing, Conversation]]) -> None:
        """Send updates in this order, nothing of another task's between them:
        the updates one record implies, as a replay of the log has them. Each
        is numbered and kept in the journal, for an editor that attaches later."""
        entries = [self.journal.add(update, conversation) for update, conversation in items]
        if self._channel is not UNATTENDED and (notifications := numbered(self.wire, entries)):
            await self._channel.send_updates_in_lane(notifications, self.id)

    def record(self, record: Record, conversation: Conversation, turn: str | None) -> Record:
        record.turn = turn
        appended = self.log.append(record, conversation.id)
        self.ledger.observe(appended)
        return appended

    async def request_permission(
        self, request: RequestPermissionRequest, conversation: Conversation
    ) -> str | None:
        if conversation.is_root:
            return await self._ask(request, conversation)
        await self.send(ChildState(conversation, "requires_action"), conversation)
        answer = await self._ask(request, conversation)
        await self.send(ChildState(conversation, "running"), conversation)
        return answer

    async def _ask(
        self, request: RequestPermissionRequest, conversation: Conversation
    ) -> str | None:
        """The editor's answer; if the session changes editors meanwhile, the
        next editor's. With none attached, the question waits for one as long
        as the settings say, then counts as refused (None)."""
        unattended_since: float | None = None
        while True:
            channel, rehomed = self._channel, self._rehomed
            if channel is UNATTENDED:
                now = time.monotonic()
                unattended_since = unattended_since or now
                wait = self.settings.unattended_permission_seconds - (now - unattended_since)
                try:
                    async with asyncio.timeout(max(wait, 0)):
                        await rehomed.wait()
                except TimeoutError:
                    log.warning("session %s: no editor came to answer a permission", self.id)
                    return None
                continue
            request.session_id = self.wire.session_id_of(conversation)
            asking = asyncio.ensure_future(channel.request_permission(request))
            moving = asyncio.ensure_future(rehomed.wait())
            try:
                await asyncio.wait((asking, moving), return_when=asyncio.FIRST_COMPLETED)
            finally:
                moving.cancel()
                if not asking.done():
                    asking.cancel()  # the editor left behind drops its question
            if asking.done() and not asking.cancelled():
                try:
                    return asking.result()
                except EditorGone:
                    await rehomed.wait()  # detached at once: then asked anew

    @property
    def channel(self) -> ClientChannel:
        """The editor the session talks to now (`UNATTENDED` if none)."""
        return self._channel

    def rehome(self, channel: ClientChannel, wire: SessionWire | None = None) -> None:
        """Talk to `channel` from now on, through `wire` (its client's); see `attachment.py`."""
        self._channel = channel
        self.wire = wire or SessionWire(self.id, self.conversations, channel.capabilities)
        self._rehomed.set()
        self._rehomed = asyncio.Event()

    def editor_files(self, conversation: Conversation) -> EditorFiles | None:
        capabilities = self._channel.capabilities
        fs = None if capabilities is None else capabilities.fs
        if fs is None or not (fs.read_text_file or fs.write_text_file):
            return None
        return ClientFiles(self._channel, self.wire.session_id_of(conversation), fs)

    def editor_terminals(self, conversation: Conversation) -> EditorTerminals | None:
        capabilities = self._channel.capabilities
        if capabilities is None or not capabilities.terminal:
            return None
        return ClientTerminals(self._channel, self.wire.session_id_of(conversation))

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
        settings = self.settings
        model = settings.model_name
        price = price_for(model, provider=settings.provider, overrides=settings.prices)
        return budget.reached(
            self.lineage(conversation),
            self.ledger,
            time.time(),
            unpriced_model=model if price is None else None,
        )

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

    async def turn_over(self) -> bool:
        """Wait for the end of the root's turn running in this daemon; False if none runs."""
        if self._task is None:
            return False
        await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)
        return True

    async def prompt(
        self, text: str, content: list[dict[str, Any]], request: asyncio.Future[Any] | None = None
    ) -> StopReason:
        """Run one turn to its end. If one is running, raise SessionBusy or,
        as the settings say, queue this one, answered when its own turn ends.
        Raises a TurnFailed once a failed turn has been closed and recorded.
        `request`: the task serving the request that asked, which answers with
        the stop reason; the queue's next turn waits for it."""
        if self.state is TurnState.CANCELLING and self._task is not None:
            # Its end is being recorded: the new turn follows it.
            await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)
        if self.state is not TurnState.IDLE:
            if self.settings.prompt_while_running == "queue":
                return await self._wait_in_queue(text, content, request)
            if self.state is TurnState.PAUSED:
                raise SessionBusy(
                    f"session {self.id} has a paused turn: resume it or cancel it first"
                )
            raise SessionBusy(
                f"session {self.id} is already running a prompt; cancel it, wait for its answer,"
                ' or queue the message (_parley/session/inject with mode "queue")'
            )
        self._queue_held = False
        return await self._start(_Prompt(text, content), request=request)

    async def compact(self, focus: str, request: asyncio.Future[Any] | None = None) -> StopReason:
        """`/compact`: a turn of its own that summarises the whole history now,
        `focus` what the summary should keep above all."""
        if self.state is not TurnState.IDLE:
            raise SessionBusy(f"session {self.id} is running a prompt: compact it once it ends")
        if compaction.whole(self.root.history) is None:
            raise InvalidValue(f"session {self.id} has nothing to compact yet")
        return await self._start(_Prompt(focus, [], compaction=True), request=request)

    async def _start(
        self,
        prompt: _Prompt | None,
        steer: Steer | None = None,
        request: asyncio.Future[Any] | None = None,
    ) -> StopReason:
        """Run the root's turn in a task of its own: whatever happens to the
        request that asked for it, the turn runs to its recorded end. A new
        turn for `prompt`, or, with none, the paused one carried on."""
        self.state = TurnState.RUNNING
        if prompt is not None:
            self.journal.forget_logged(self.log.next_seq)
        scope = self._scope = anyio.CancelScope()
        task = self._task = asyncio.create_task(self._prompt_turn(scope, prompt, steer, request))
        return await asyncio.shield(task)

    # -- the queue --------------------------------------------------------------

    async def enqueue(
        self, text: str, content: list[dict[str, Any]], request: asyncio.Future[Any] | None
    ) -> str:
        """Queue a message to be the next prompt; an idle session takes the
        queue's next message at once, once `request` has its answer. Its id."""
        message = WaitingMessage(new_id("msg"), text, content)
        self._queue_up(message)
        self._next_in_queue(request)
        await self._synced()
        return message.message_id

    async def replace_queued(
        self, message_id: str, text: str, content: list[dict[str, Any]]
    ) -> None:
        """New words for a waiting message, which keeps its id and its place."""
        self.queue.find(message_id)
        replaced = QueuedReplaced(text=text, content=content, message_id=message_id)
        self.record(replaced, self.root, None)
        self.queue.replace(message_id, text, content)
        await self._synced()

    async def withdraw_queued(self, message_id: str) -> None:
        """Take a waiting message out of the queue; a `session/prompt` waiting
        for it answers `cancelled`."""
        self._withdraw(self.queue.find(message_id))
        await self._synced()

    def cancel_request(self, request: asyncio.Future[Any]) -> None:
        """`$/cancel_request` on a `session/prompt`: withdrawn if it waits in
        the queue, its turn cancelled if that is running."""
        waiting = next((m for m in self.queue.waiting if m.request is request), None)
        if waiting is not None:
            self._withdraw_answering(waiting)
        elif request is self._turn_request:
            self.cancel()

    async def _wait_in_queue(
        self, text: str, content: list[dict[str, Any]], request: asyncio.Future[Any] | None
    ) -> StopReason:
        answer: asyncio.Future[StopReason] = asyncio.get_running_loop().create_future()
        message = WaitingMessage(new_id("msg"), text, content, "prompt", answer, request)
        self._queue_up(message)
        return await answer

    def _queue_up(self, message: WaitingMessage) -> None:
        self.record(message.queued_record(), self.root, None)
        self.queue.add(message)
        self._queue_held = False

    def _withdraw(self, message: WaitingMessage) -> None:
        # Out of the queue and answered even if the log then fails (a full
        # disk): a cancel must answer every prompt it stops.
        self.queue.withdraw(message.message_id)
        message.answer_with("cancelled")
        self.record(QueuedWithdrawn(message_id=message.message_id), self.root, None)

    def _withdraw_awaited(self) -> None:
        """The prompts waiting in the queue answer `cancelled`."""
        for message in self.queue.waiting:
            if message.awaited:
                self._withdraw_answering(message)

    def _withdraw_answering(self, message: WaitingMessage) -> None:
        """Withdraw a queued prompt for a cancel, which cannot fail."""
        try:
            self._withdraw(message)
        except StoreError as exc:
            log.error("could not record that %s was withdrawn: %s", message.message_id, exc)

    async def _synced(self) -> None:
        """The log on disk: the answer says the queue is stored."""
        await anyio.to_thread.run_sync(self.log.sync)

    def _next_in_queue(self, after: asyncio.Future[Any] | None) -> None:
        """Start the queue's next message as the root's turn, if the session is
        idle and the queue may go on; it begins once `after` (the task serving
        the request that answers the turn before) is done, so the client has
        that answer before the next turn's updates."""
        if self.state is not TurnState.IDLE or self._queue_held or self.pauses.released:
            return
        message = self.queue.take()
        if message is None:
            return
        self.state = TurnState.RUNNING
        self.journal.forget_logged(self.log.next_seq)
        scope = self._scope = anyio.CancelScope()
        self._turn_request = message.request
        self._task = asyncio.create_task(self._queued_turn(scope, message, after))

    async def _queued_turn(
        self, scope: anyio.CancelScope, message: WaitingMessage, after: asyncio.Future[Any] | None
    ) -> None:
        if after is not None:
            # Bounded: a client that stopped reading does not hold the queue.
            await asyncio.wait([after], timeout=_CLOSING_SECONDS)
        if scope.cancel_called:
            # Cancelled before it began: the message waits again, or its prompt
            # answers `cancelled`.
            self.state = TurnState.IDLE
            self._task = None
            self._turn_request = None
            self.queue.put_back(message)
            self._withdraw_awaited()
            return
        if self.state is TurnState.RUNNING:
            await self.send(
                updates.turn_status_update(
                    "running", None, self.root, message_id=message.message_id
                ),
                self.root,
            )
        prompt = _Prompt(message.text, message.content, message.message_id, not message.awaited)
        try:
            stop = await self._prompt_turn(scope, prompt, None, message.request, announced=True)
        except Exception as failure:
            message.fail_with(failure)
            if not isinstance(failure, TurnFailed):
                raise  # a bug: logged with the task
        else:
            message.answer_with(stop)

    def cancel(self) -> None:
        """Stop the running or paused turn; it answers `cancelled`. The queue
        holds: the prompts waiting in it answer `cancelled` too, injected
        messages wait. Idempotent."""
        self._queue_held = True
        if self.state is TurnState.PAUSED and self._task is None:
            # Paused before a restart: carried on already stopped, its turns
            # close as cancelled.
            self.state = TurnState.CANCELLING
            scope = self._scope = anyio.CancelScope()
            scope.cancel()
            self._task = asyncio.create_task(self._prompt_turn(scope, None, None, None))
        elif self.state in (TurnState.RUNNING, TurnState.PAUSED) and self._scope is not None:
            self.state = TurnState.CANCELLING
            self._scope.cancel()
        self._withdraw_awaited()

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

    async def resume(
        self, steer: Steer | None, request: asyncio.Future[Any] | None = None
    ) -> StopReason | None:
        """Carry the paused turn on, `steer` joining it first. A turn paused in
        this daemon goes on in its own `session/prompt` (None here); one paused
        before a restart runs now, and its stop reason is returned (`request`
        answers with it)."""
        if self.state is not TurnState.PAUSED:
            raise WrongTurnState(f"session {self.id} has no paused turn to resume")
        root_turn = self._turns.get(self.root.id)
        self.record(TurnResumed(), self.root, self._root_turn)
        if root_turn is None:
            await self._announce_running()
            return await self._start(None, steer, request)
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
        self,
        scope: anyio.CancelScope,
        prompt: _Prompt | None,
        steer: Steer | None,
        request: asyncio.Future[Any] | None,
        announced: bool = False,
    ) -> StopReason:
        """The root's turn, then the queue's next one, unless it was let go.
        `request`: the task serving the request that answers this turn;
        `announced`: the queue started it, and the client is told its end."""
        turn_id = new_id("turn") if prompt is not None else self._root_turn or new_id("turn")
        self._root_turn = turn_id
        self._turn_request = request
        self._turn_channel = self._channel
        try:
            if self._log_behind:
                self._close_turns_in_log()
            end = await self._run_turn(scope, self.root, turn_id, prompt, steer)
            if self._paused_turns and not self.pauses.released:
                # Children paused before a restart that the turn's end left
                # open (it was cancelled before it reached them).
                self._paused_turns.clear()
                self._close_turns_in_log()
            if (
                announced
                or (prompt is None and scope.cancel_called)
                or self._channel is not self._turn_channel
            ):
                # Told as it began, with no prompt open to answer `cancelled`,
                # or with the session in another editor than the one whose
                # prompt answers: the client hears that the turn is over.
                queued = None if prompt is None else prompt.message_id
                await self.send(self._turn_over(end, queued), self.root)
        finally:
            self.state = TurnState.IDLE
            self.pauses.resume()
            self._root_turn = None
            self._turn_request = None
            self._task = None
            self.journal.forget_logged(self.log.next_seq)
            self._next_in_queue(request)
        if end.failure is not None:
            raise end.failure
        return end.stop

    def _turn_over(self, end: _TurnEnd, message_id: str | None) -> SessionUpdate:
        """The turn status `idle`: how the turn ended, and which queued
        message it answered, if one."""
        failed = None if end.failure is None else str(end.failure)
        return updates.turn_status_update(
            "idle",
            end.note if failed is None else failed,
            self.root,
            stop_reason=end.stop if failed is None else "error",
            message_id=message_id,
        )

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
                await self.send_all((update, conversation) for update in opening)
                try:
                    if prompt is None:
                        stop = await turn.go_on()
                    elif prompt.compaction:
                        stop = await turn.compact(prompt.text)
                    else:
                        stop = await turn.run(prompt.message)
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
        if prompt.compaction:
            return ()
        message_id = prompt.message_id or new_id("msg")
        user_turn = UserTurn(text=prompt.text, content=prompt.content, message_id=message_id)
        self.record(user_turn, conversation, turn_id)
        opening: list[SessionUpdate] = []
        said = updates.user_updates(prompt.content, message_id, conversation.meta)
        if prompt.echoed:
            opening += said
        else:
            # The editor that sent it has it; one that attaches later is told.
            for update in said:
                self.journal.add(update, conversation)
        if not conversation.is_root:
            return opening
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
        reason = _NOT_RUN.get(stop, _CANCELLED)
        if failure is not None:
            reason = f"Not run: the turn failed ({failure})."
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
            await self.send_all(closing)
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
        await self.mcp.close()
        self.log.close()


def _child_prompt(task: ChildTask) -> _Prompt:
    return _Prompt(task.task, [{"type": "text", "text": task.task}], echoed=True)


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
