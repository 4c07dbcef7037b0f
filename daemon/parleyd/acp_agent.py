"""The ACP v1 agent side: one handler per method, on top of the rpc engine."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from parley_protocol import PROTOCOL_VERSION
from parley_protocol.acp import (
    AgentCapabilities,
    AgentMessageChunk,
    ArchiveSessionRequest,
    ArchiveSessionResponse,
    AvailableCommandsUpdate,
    CancelNotification,
    ClientCapabilities,
    CloseSessionRequest,
    CloseSessionResponse,
    ContentBlock,
    DeleteSessionRequest,
    DeleteSessionResponse,
    ForkSessionRequest,
    ForkSessionResponse,
    Implementation,
    InitializeRequest,
    InitializeResponse,
    ListSessionsRequest,
    ListSessionsResponse,
    LoadSessionRequest,
    LoadSessionResponse,
    McpCapabilities,
    McpServer,
    McpServerConfig,
    NewSessionRequest,
    NewSessionResponse,
    PromptCapabilities,
    PromptRequest,
    PromptResponse,
    RequestPermissionRequest,
    RequestPermissionResponse,
    ResumeSessionRequest,
    ResumeSessionResponse,
    SessionAdditionalDirectoriesCapabilities,
    SessionArchiveCapabilities,
    SessionCapabilities,
    SessionCloseCapabilities,
    SessionDeleteCapabilities,
    SessionForkCapabilities,
    SessionListCapabilities,
    SessionModeState,
    SessionNotification,
    SessionResumeCapabilities,
    SessionStatusCapabilities,
    SessionStatusRequest,
    SessionStatusResponse,
    SessionTitleCapabilities,
    SetSessionModeRequest,
    SetSessionModeResponse,
    SetSessionTitleRequest,
    SetSessionTitleResponse,
    StopReason,
    TextContent,
    UnarchiveSessionRequest,
    UnarchiveSessionResponse,
)
from parley_protocol.jsonrpc import ErrorCode
from parley_protocol.parley import (
    EXTENSION_METHODS,
    SESSION_ATTACH,
    SESSION_FORK,
    SESSION_INJECT,
    SESSION_PAUSE,
    SESSION_QUEUE_LIST,
    SESSION_QUEUE_REPLACE,
    SESSION_QUEUE_WITHDRAW,
    SESSION_RESUME,
    SESSION_SET_BUDGET,
    TOOL_CALL_CANCEL,
    ParleyCapabilities,
    QueuedMessage,
    ReplayFrom,
    ReplayFromStart,
    SessionAttachParams,
    SessionAttachResult,
    SessionForkParams,
    SessionForkResult,
    SessionInjectParams,
    SessionInjectResult,
    SessionPauseParams,
    SessionPauseResult,
    SessionQueueListParams,
    SessionQueueListResult,
    SessionQueueReplaceParams,
    SessionQueueReplaceResult,
    SessionQueueWithdrawParams,
    SessionQueueWithdrawResult,
    SessionResumeParams,
    SessionResumeResult,
    SetBudgetParams,
    SetBudgetResult,
    ToolCallCancelParams,
    ToolCallCancelResult,
    parley_meta,
    session_settings_from_meta,
)
from parley_protocol.parley import Budget as WireBudget
from parleyd import __version__, mcp_servers, slash_commands
from parleyd.config import ConfigError
from parleyd.rpc.outbox import Outbox
from parleyd.rpc.server import ParleyProtocol, PeerError, RpcError, RpcServer
from parleyd.session.editor import SessionScoped
from parleyd.session.errors import (
    ClientRequestFailed,
    EditorGone,
    InvalidCursor,
    InvalidValue,
    ProviderFailed,
    SessionBusy,
    SessionError,
    StorageFailed,
    TurnCrashed,
    UnknownConversation,
    UnknownMessage,
    UnknownSession,
    UnknownToolCall,
    WrongTurnState,
)
from parleyd.session.user_input import prompt_text
from parleyd.slash_commands import SlashCommand, budget_limits, slash_command
from parleyd.store.log import StoreError
from parleyd.update_coalescing import UpdateCoalescing

if TYPE_CHECKING:
    from parleyd.runtime import Runtime
    from parleyd.session.attachment import Attached
    from parleyd.session.conversation import Conversation
    from parleyd.session.manager import SessionManager
    from parleyd.session.port import Steer
    from parleyd.session.session import Session

log = logging.getLogger(__name__)

AGENT_INFO = Implementation(name="parley", title="Parley", version=__version__)
_connection_numbers = itertools.count(1)
# Requests served ahead of the streams of other sessions (see `Outbox.hurry`)
# from the moment they are read until they are answered; a `session/cancel`
# hurries its session until the prompt answers.
_CONTROL_METHODS = frozenset(
    {
        SESSION_PAUSE,
        SESSION_RESUME,
        TOOL_CALL_CANCEL,
        SESSION_QUEUE_REPLACE,
        SESSION_QUEUE_WITHDRAW,
        "session/cancel",
    }
)
# How long a request about a session waits for the editor leaving it to let it go.
_LEAVING_SECONDS = 5.0
PARLEY_FEATURES = [
    "conversationMeta",
    "usageDetail",
    "sessionSettings",
    "subagents",
    "updateSequence",
]
# archive, status, title and fork are unstable: each stands for the methods
# the unstable schema puts behind it.
SESSION_CAPABILITIES = SessionCapabilities(
    list=SessionListCapabilities(),
    delete=SessionDeleteCapabilities(),
    resume=SessionResumeCapabilities(),
    close=SessionCloseCapabilities(),
    archive=SessionArchiveCapabilities(),
    status=SessionStatusCapabilities(),
    title=SessionTitleCapabilities(),
    fork=SessionForkCapabilities(),
    additional_directories=SessionAdditionalDirectoriesCapabilities(),
)


class AcpChannel:
    """The client as sessions see it: updates out, each session's in its own
    lane of an `Outbox`, and permission requests answered."""

    def __init__(self, protocol: ParleyProtocol, label: str) -> None:
        self._protocol = protocol
        # Who this is, for an error that names the editor having a session.
        self.label = label
        # Set once the client has gone and its sessions have been let go.
        self.departed = asyncio.Event()
        self.capabilities: ClientCapabilities | None = None
        self._outbox: Outbox[SessionNotification] | None = None
        # A child session's id -> the lane of the session it belongs to.
        self._lanes: dict[str, str] = {}

    def _lanes_out(self) -> Outbox[SessionNotification] | None:
        if self._outbox is None and self._protocol.frame_writer is not None:
            self._outbox = Outbox(
                self._protocol.frame_writer,
                functools.partial(self._protocol.notification_body, "session/update"),
                UpdateCoalescing(),
            )
        return self._outbox

    async def send_updates_in_lane(
        self, notifications: Sequence[SessionNotification], lane: str
    ) -> None:
        if (outbox := self._lanes_out()) is not None:
            for notification in notifications:
                self._lanes[notification.session_id] = lane
            await outbox.put(lane, *notifications)

    async def send_updates(self, notifications: Iterable[SessionNotification]) -> None:
        """Many updates in order, as a replay sends them: in writes of many at once."""
        await self._protocol.send_notifications("session/update", notifications)

    async def flushed(self, session_id: str) -> None:
        """Until the updates the session (or child session) queued are on their way."""
        if self._outbox is not None:
            await self._outbox.flushed(self._lanes.get(session_id, session_id))

    def hurry(self, session_id: str) -> None:
        """A control request about the session is being served: other sessions'
        streams hold back until it has its answer (`settled`)."""
        if self._outbox is not None:
            self._outbox.hurry(self._lanes.get(session_id, session_id))

    def settled(self, session_id: str) -> None:
        if self._outbox is not None:
            self._outbox.settled(self._lanes.get(session_id, session_id))

    async def close(self) -> None:
        """Write what the lanes hold (if the client takes it in time)."""
        if self._outbox is not None:
            await self._outbox.close()

    @property
    def leaving(self) -> bool:
        """The client closed its end: it will send nothing more."""
        return self._protocol.input_closed

    async def request_permission(self, request: RequestPermissionRequest) -> str | None:
        # After the updates that show the call it asks about.
        await self.flushed(request.session_id)
        try:
            raw = await self._protocol.request("session/request_permission", request)
        except PeerError as exc:
            if self.leaving:
                raise EditorGone from None  # the next editor is asked
            log.warning("permission request failed, treating it as declined: %s", exc)
            return None
        try:
            response = msgspec.json.decode(raw, type=RequestPermissionResponse)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            log.warning("unreadable permission answer, treating it as declined: %s", exc)
            return None
        return getattr(response.outcome, "option_id", None)

    async def client_request(self, method: str, params: SessionScoped) -> bytes:
        # After the updates that show the call it serves.
        await self.flushed(params.session_id)
        try:
            return bytes(await self._protocol.request(method, params))
        except PeerError as exc:
            raise ClientRequestFailed(str(exc)) from None


class _AboutSession(msgspec.Struct):
    """The one field a control request is hurried by, read before its handler decodes the rest."""

    session_id: str = msgspec.field(name="sessionId")


_session_of = msgspec.json.Decoder(_AboutSession).decode


def _steer(blocks: list[ContentBlock]) -> Steer:
    from parleyd.session.conversation import new_id
    from parleyd.session.port import Steer

    return Steer(prompt_text(blocks), msgspec.to_builtins(blocks), new_id("msg"))


def _modes(session: Session) -> SessionModeState:
    """The `modes` of a session's setup answers: every mode, and its current one."""
    from parleyd.session.modes import mode_state  # with the sessions, not at start-up

    return mode_state(session.permissions.mode)


def _set_budget(session: Session, conversation: Conversation, limits: WireBudget) -> None:
    from parleyd.session.conversation import Budget  # with the sessions, not at start-up

    session.set_budget(
        conversation, Budget(cost=limits.cost, responses=limits.responses, seconds=limits.seconds)
    )


def _absolute(cwd: str, field: str = "cwd") -> Path:
    # A path of any length may arrive; the message quotes no more than a line of it.
    shown = repr(cwd) if len(cwd) <= 200 else f"{cwd[:100]!r}... ({len(cwd)} characters)"
    path = Path(cwd)
    if not path.is_absolute():
        raise RpcError(ErrorCode.INVALID_PARAMS, f"{field} must be an absolute path, got {shown}")
    try:
        is_dir = path.is_dir()
    except OSError as exc:  # a name too long for the file system, say
        raise RpcError(
            ErrorCode.INVALID_PARAMS, f"{field} {shown} is unusable: {exc.strerror}"
        ) from None
    if not is_dir:
        raise RpcError(ErrorCode.INVALID_PARAMS, f"{field} {shown} is not an existing directory")
    return path


def _mcp_servers(servers: list[McpServer]) -> list[McpServerConfig]:
    """A request's `mcpServers`, typed: every one it may name, since Parley
    advertises http and sse as well as stdio."""
    try:
        return mcp_servers.from_client(servers)
    except mcp_servers.ServerListError as exc:
        raise RpcError(ErrorCode.INVALID_PARAMS, f"Invalid params: {exc}") from None


def _additional(directories: list[str] | None) -> tuple[Path, ...]:
    """A request's `additionalDirectories`: more roots for the session, after its cwd."""
    return tuple(
        _absolute(directory, f"additionalDirectories[{index}]")
        for index, directory in enumerate(directories or ())
    )


_ERROR_CODES: dict[type[Exception], ErrorCode] = {
    UnknownToolCall: ErrorCode.RESOURCE_NOT_FOUND,
    UnknownConversation: ErrorCode.RESOURCE_NOT_FOUND,
    UnknownMessage: ErrorCode.RESOURCE_NOT_FOUND,
    SessionBusy: ErrorCode.SESSION_BUSY,
    WrongTurnState: ErrorCode.WRONG_TURN_STATE,
    InvalidCursor: ErrorCode.INVALID_PARAMS,
    InvalidValue: ErrorCode.INVALID_PARAMS,
    ConfigError: ErrorCode.CONFIG_ERROR,
    TurnCrashed: ErrorCode.INTERNAL_ERROR,
    StorageFailed: ErrorCode.INTERNAL_ERROR,
    # A full disk or an index another process keeps locked: not a bug, but
    # nothing the client can change by asking differently.
    StoreError: ErrorCode.INTERNAL_ERROR,
}

Handler = Callable[[Any], Awaitable[Any]]


def answering_errors(handler: Handler) -> Handler:
    """The one place where session, config and turn errors become JSON-RPC errors."""

    @functools.wraps(handler)
    async def answer(params: Any) -> Any:
        try:
            return await handler(params)
        except ProviderFailed as failure:
            error = failure.error
            data = {"kind": error.kind, "retryable": error.retryable, "status": error.status}
            raise RpcError(ErrorCode.PROVIDER_ERROR, str(failure), data) from None
        except UnknownSession as exc:
            # ACP names the session asked for in `data` (session/status says so).
            unknown = {"sessionId": exc.session_id}
            raise RpcError(ErrorCode.RESOURCE_NOT_FOUND, str(exc), unknown) from None
        except (SessionError, ConfigError, TurnCrashed, StorageFailed, StoreError) as exc:
            raise RpcError(_ERROR_CODES[type(exc)], str(exc)) from None

    return answer


class AcpAgent:
    """Wires every ACP method Parley serves into an RpcServer: one connection
    of the daemon, on the `Runtime` all its connections share."""

    def __init__(self, server: RpcServer, runtime: Runtime) -> None:
        self.server = server
        self.protocol = server.protocol
        self.runtime = runtime
        runtime.connected()
        self.channel = AcpChannel(self.protocol, f"connection {next(_connection_numbers)}")
        # The available_commands_update sends not yet done.
        self._advertising: set[asyncio.Task[None]] = set()
        self._register()

    @property
    def sessions(self) -> SessionManager:
        return self.runtime.sessions

    def _mine(self, session_id: str) -> Session:
        """The open session `session_id`, which must be attached to this connection."""
        session = self.sessions.get(session_id)
        self._refuse_if_elsewhere(session)
        if session.channel is not self.channel:
            raise SessionBusy(
                f"session {session_id} is running with no editor attached: send session/load,"
                f" session/resume or {SESSION_ATTACH} to attach to it first"
            )
        return session

    def _refuse_if_elsewhere(self, session: Session) -> None:
        """SessionBusy if another connection has the session attached."""
        other = session.channel
        if other is self.channel or not isinstance(other, AcpChannel):
            return
        raise SessionBusy(
            f"session {session.id} is attached to another editor ({other.label}):"
            f" send {SESSION_ATTACH} to take it over"
        )

    def _register(self) -> None:
        server = self.server
        requests: list[tuple[str, type[Any], Handler]] = [
            ("initialize", InitializeRequest, self.initialize),
            ("session/new", NewSessionRequest, self.new_session),
            ("session/load", LoadSessionRequest, self.load_session),
            ("session/list", ListSessionsRequest, self.list_sessions),
            ("session/prompt", PromptRequest, self.prompt),
            (TOOL_CALL_CANCEL, ToolCallCancelParams, self.cancel_tool_call),
            (SESSION_SET_BUDGET, SetBudgetParams, self.set_budget),
            (SESSION_PAUSE, SessionPauseParams, self.pause),
            (SESSION_RESUME, SessionResumeParams, self.resume),
            (SESSION_INJECT, SessionInjectParams, self.inject),
            (SESSION_QUEUE_LIST, SessionQueueListParams, self.list_queue),
            (SESSION_QUEUE_REPLACE, SessionQueueReplaceParams, self.replace_queued),
            (SESSION_QUEUE_WITHDRAW, SessionQueueWithdrawParams, self.withdraw_queued),
            ("session/resume", ResumeSessionRequest, self.resume_session),
            ("session/close", CloseSessionRequest, self.close_session),
            ("session/delete", DeleteSessionRequest, self.delete_session),
            ("session/status", SessionStatusRequest, self.session_status),
            ("session/archive", ArchiveSessionRequest, self.archive_session),
            ("session/unarchive", UnarchiveSessionRequest, self.unarchive_session),
            ("session/set_title", SetSessionTitleRequest, self.set_session_title),
            ("session/set_mode", SetSessionModeRequest, self.set_session_mode),
            ("session/fork", ForkSessionRequest, self.fork_session),
            (SESSION_ATTACH, SessionAttachParams, self.attach_session),
            (SESSION_FORK, SessionForkParams, self.fork_from_message),
        ]
        for method, params_type, handler in requests:
            answer = self._after_its_updates(answering_errors(handler))
            server.request(method, params_type)(answer)
        server.notification("session/cancel", CancelNotification)(self.cancel)
        server.protocol.on_arrival = self._arrived

    def _arrived(self, method: str, params: msgspec.Raw) -> None:
        # Hurried as soon as read: under load, every loop iteration until the
        # handler runs is one in which all the streaming sessions take a step.
        if method in _CONTROL_METHODS:
            try:
                session_id = _session_of(params).session_id
            except msgspec.DecodeError:
                return  # its handler answers what is wrong with it
            self.channel.hurry(session_id)

    def _after_its_updates(self, handler: Handler) -> Handler:
        """The answer to a request about a session follows the updates the
        session queued before it (they wait in its lane, see `Outbox`), and
        ends the hurry a control request began (`_arrived`)."""

        @functools.wraps(handler)
        async def answer(params: Any) -> Any:
            session_id = getattr(params, "session_id", None)
            if not isinstance(session_id, str):
                return await handler(params)
            try:
                return await handler(params)
            finally:
                await self.channel.flushed(session_id)
                # After the answer is written (it is, in a callback scheduled as
                # this returns): the other streams take their steps behind it.
                asyncio.get_running_loop().call_soon(self.channel.settled, session_id)

        return answer

    async def initialize(self, params: InitializeRequest) -> InitializeResponse:
        self.channel.capabilities = params.client_capabilities
        if (client := params.client_info) is not None:
            self.channel.label += f", {client.title or client.name} {client.version}"
        capabilities = ParleyCapabilities(
            version=__version__,
            methods=list(EXTENSION_METHODS),  # every one is served
            features=PARLEY_FEATURES,
        )
        return InitializeResponse(
            # Parley speaks v1 only: the answer to any request is the latest it supports.
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(
                load_session=True,
                prompt_capabilities=PromptCapabilities(
                    image=True, audio=True, embedded_context=True
                ),
                mcp_capabilities=McpCapabilities(http=True, sse=True),
                session_capabilities=SESSION_CAPABILITIES,
                meta=parley_meta(capabilities=capabilities),
            ),
            auth_methods=[],
            agent_info=AGENT_INFO,
        )

    async def new_session(self, params: NewSessionRequest) -> NewSessionResponse:
        cwd = _absolute(params.cwd)
        try:
            overrides = msgspec.to_builtins(session_settings_from_meta(params.meta))
        except msgspec.ValidationError as exc:
            raise RpcError(ErrorCode.INVALID_PARAMS, f"Invalid params: {exc}") from None
        session = await self.sessions.create(
            self.channel,
            cwd,
            overrides,
            _additional(params.additional_directories),
            servers=_mcp_servers(params.mcp_servers),
        )
        self._after_opening(session)
        return NewSessionResponse(session_id=session.id, modes=_modes(session))

    async def load_session(self, params: LoadSessionRequest) -> LoadSessionResponse:
        cwd = _absolute(params.cwd)
        if (running := await self._running_here(params.session_id)) is not None:
            await self._attach(running, ReplayFromStart())
            return LoadSessionResponse(modes=_modes(running))
        session = await self._open(params.session_id, cwd, params, replayed=True)
        return LoadSessionResponse(modes=_modes(session))

    async def _open(
        self,
        session_id: str,
        cwd: Path,
        params: LoadSessionRequest | ResumeSessionRequest | SessionAttachParams,
        *,
        replayed: bool,
    ) -> Session:
        """Open a stored session on this connection, replaying it if `replayed`
        (a load) or not (a resume: the client has the history)."""
        session, replay = await self.sessions.load(
            self.channel,
            session_id,
            cwd,
            _additional(params.additional_directories),
            servers=_mcp_servers(params.mcp_servers),
        )
        self._after_opening(session)
        if replayed:
            notifications = (session.wire.notification(*item) for item in replay)
            await self.channel.send_updates(n for n in notifications if n is not None)
        return session

    async def _running_here(self, session_id: str) -> Session | None:
        """The session, if this daemon has it open with a turn running or
        paused, which a load or resume attaches to rather than reopens; an idle
        one is reopened (with the request's cwd and MCP servers). SessionBusy
        if another connection has it."""
        session = await self._open_here(session_id)
        if session is None:
            return None
        self._refuse_if_elsewhere(session)
        return session if session.running else None

    async def _attach(self, session: Session, replay: ReplayFrom | None) -> Attached:
        """Take a session open here onto this connection: see `session/attachment.py`."""
        from parleyd.session.attachment import attach

        attached = await attach(session, self.channel, replay)
        self._after_opening(session, servers=False)
        return attached

    async def attach_session(self, params: SessionAttachParams) -> SessionAttachResult:
        cwd = _absolute(params.cwd)
        session = await self._open_here(params.session_id)
        if session is not None and session.running:
            attached = await self._attach(session, params.replay_from)
            replayed, last = attached.replayed, attached.last_sequence
        else:
            if session is not None and session.channel is not self.channel:
                # Idle in another editor: taken over, and reopened here.
                await self.sessions.close(session.id)
            replaying = params.replay_from is not None
            session = await self._open(params.session_id, cwd, params, replayed=replaying)
            replayed = "start" if replaying else "none"
            last = session.journal.last
        return SessionAttachResult(
            modes=_modes(session), replayed=replayed, last_sequence=last, state=session.state.value
        )

    async def list_sessions(self, params: ListSessionsRequest) -> ListSessionsResponse:
        sessions, next_cursor = self.sessions.list(params.cwd, params.cursor, params.archived)
        return ListSessionsResponse(sessions=sessions, next_cursor=next_cursor)

    async def prompt(self, params: PromptRequest) -> PromptResponse:
        session = self._mine(params.session_id)
        if not params.prompt:
            raise RpcError(
                ErrorCode.INVALID_PARAMS, "Invalid params: prompt is empty; send a content block"
            )
        if (command := slash_command(params.prompt)) is not None:
            return PromptResponse(stop_reason=await self._run_command(session, command))
        request_id = self.protocol.msg_id
        request = asyncio.current_task()
        if request_id is not None and request is not None:
            # `$/cancel_request` on a prompt is a cancel of its turn (the
            # answer is then `cancelled`, as for session/cancel), or of its
            # wait in the queue.
            self.protocol.cancel_hooks[request_id] = functools.partial(
                session.cancel_request, request
            )
        stop_reason = await session.prompt(
            prompt_text(params.prompt), msgspec.to_builtins(params.prompt), request
        )
        return PromptResponse(stop_reason=stop_reason)

    async def cancel_tool_call(self, params: ToolCallCancelParams) -> ToolCallCancelResult:
        session = self._mine(params.session_id)
        if not session.cancel_tool_call(params.tool_call_id):
            raise UnknownToolCall(
                f"no tool call {params.tool_call_id!r} is running in session {session.id}"
            )
        return ToolCallCancelResult()

    async def pause(self, params: SessionPauseParams) -> SessionPauseResult:
        session = self._mine(params.session_id)
        running = await session.pause(params.reason, params.cancel_running)
        return SessionPauseResult(running_tool_calls=running)

    async def resume(self, params: SessionResumeParams) -> SessionResumeResult:
        session = self._mine(params.session_id)
        steer = None if params.message is None else _steer(params.message)
        stop_reason = await session.resume(steer, asyncio.current_task())
        return SessionResumeResult(stop_reason=stop_reason)

    async def inject(self, params: SessionInjectParams) -> SessionInjectResult:
        session, conversation = self._session_of(params.session_id)
        if params.mode == "steer":
            steer = _steer(params.prompt)
            session.steer(steer, conversation)
            return SessionInjectResult(message_id=steer.message_id)
        if conversation is not None:
            raise InvalidValue(
                f"{params.session_id} is a sub-agent's session, which takes no queued prompts:"
                f" steer it, or queue the message in session {session.id}"
            )
        message_id = await session.enqueue(
            prompt_text(params.prompt), msgspec.to_builtins(params.prompt), asyncio.current_task()
        )
        return SessionInjectResult(message_id=message_id)

    async def list_queue(self, params: SessionQueueListParams) -> SessionQueueListResult:
        session = self._mine(params.session_id)
        return SessionQueueListResult(
            messages=[
                QueuedMessage(
                    message_id=message.message_id,
                    prompt=msgspec.convert(message.content, list[ContentBlock]),
                    origin=message.origin,
                )
                for message in session.queue.waiting
            ]
        )

    async def replace_queued(self, params: SessionQueueReplaceParams) -> SessionQueueReplaceResult:
        session = self._mine(params.session_id)
        await session.replace_queued(
            params.message_id, prompt_text(params.prompt), msgspec.to_builtins(params.prompt)
        )
        return SessionQueueReplaceResult()

    async def withdraw_queued(
        self, params: SessionQueueWithdrawParams
    ) -> SessionQueueWithdrawResult:
        session = self._mine(params.session_id)
        await session.withdraw_queued(params.message_id)
        return SessionQueueWithdrawResult()

    def _session_of(self, session_id: str) -> tuple[Session, str | None]:
        """The open session a session id names, and which conversation: None
        for its root, or the child a child session id stands for."""
        for session in self.sessions.sessions.values():
            if session_id in session.conversations and session_id != session.root.id:
                return session, session_id
        return self._mine(session_id), None

    async def _run_command(self, session: Session, command: SlashCommand) -> StopReason:
        """A slash command, run as the request it stands for; a wrong argument
        is the prompt's error (-32602), and nothing reaches the model but what
        `/compact` asks it to summarise."""
        match command.name:
            case slash_commands.MODE:
                await self.sessions.set_mode(session.id, command.argument)
            case slash_commands.BUDGET:
                _set_budget(session, session.root, budget_limits(command.argument))
            case slash_commands.COMPACT:
                return await session.compact(command.argument, asyncio.current_task())
        if (said := slash_commands.confirmation(command)) is not None:
            from parleyd.session.conversation import new_id  # with the sessions

            told = AgentMessageChunk(
                content=TextContent(text=said),
                message_id=new_id("msg"),
                meta=session.root.meta_with(command={"name": command.name}),
            )
            await session.send(told, session.root)
        return "end_turn"

    def _after_opening(self, session: Session, *, servers: bool = True) -> None:
        """Once the request that opened `session` is answered (the client knows
        the session then), tell it the slash commands and start its MCP
        servers (unless they run already), whose news is about the session."""
        update = AvailableCommandsUpdate(
            available_commands=list(slash_commands.COMMANDS), meta=session.root.meta
        )

        def opened() -> None:
            task = asyncio.get_running_loop().create_task(session.send(update, session.root))
            self._advertising.add(task)
            task.add_done_callback(self._advertising.discard)
            if servers:
                session.mcp.start()

        request_id = self.protocol.msg_id
        if request_id is None:
            opened()
        else:
            self.protocol.after_answer[request_id] = opened

    async def set_budget(self, params: SetBudgetParams) -> SetBudgetResult:
        session = self._mine(params.session_id)
        conversation_id = params.conversation_id or session.root.id
        conversation = session.conversations.get(conversation_id)
        if conversation is None:
            raise UnknownConversation(
                f"session {session.id} has no conversation {conversation_id!r}"
            )
        _set_budget(session, conversation, params.budget)
        return SetBudgetResult(budget=params.budget)

    async def cancel(self, params: CancelNotification) -> None:
        # Hurried since it was read (`_arrived`), until its prompt answers `cancelled`.
        mine = [s for s in self.sessions.sessions.values() if s.channel is self.channel]
        session = next((s for s in mine if s.id == params.session_id), None)
        if session is not None:
            session.cancel()
            return
        # A child session: its work stops, its parent's turn goes on.
        if not any(s.cancel_conversation(params.session_id) for s in mine):
            log.warning(
                "session/cancel for %r: no such session or running child", params.session_id
            )

    async def client_gone(self) -> None:
        """The client went away: its sessions are let go (`Runtime.editor_left`)."""
        await self.runtime.editor_left(self.channel)
        self.channel.departed.set()

    async def _open_here(self, session_id: str) -> Session | None:
        """The session if this daemon has it open, once the editor that had it,
        if that one is leaving, has let it go: an editor restarted at once
        finds its session as the old one left it."""
        session = self.sessions.sessions.get(session_id)
        other = None if session is None else session.channel
        if isinstance(other, AcpChannel) and other is not self.channel and other.leaving:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_LEAVING_SECONDS):
                    await other.departed.wait()
            session = self.sessions.sessions.get(session_id)
        return session

    async def shutdown(self) -> None:
        await self.channel.close()

    async def resume_session(self, params: ResumeSessionRequest) -> ResumeSessionResponse:
        cwd = _absolute(params.cwd)
        if (running := await self._running_here(params.session_id)) is not None:
            await self._attach(running, None)
            return ResumeSessionResponse(modes=_modes(running))
        session = await self._open(params.session_id, cwd, params, replayed=False)
        return ResumeSessionResponse(modes=_modes(session))

    def _unless_elsewhere(self, session_id: str) -> str:
        """The session id, once sure no other connection has the session attached."""
        if (session := self.sessions.sessions.get(session_id)) is not None:
            self._refuse_if_elsewhere(session)
        return session_id

    async def close_session(self, params: CloseSessionRequest) -> CloseSessionResponse:
        await self.sessions.close(self._unless_elsewhere(params.session_id))
        return CloseSessionResponse()

    async def delete_session(self, params: DeleteSessionRequest) -> DeleteSessionResponse:
        await self.sessions.delete(self._unless_elsewhere(params.session_id))
        return DeleteSessionResponse()

    async def session_status(self, params: SessionStatusRequest) -> SessionStatusResponse:
        # "open": in this daemon's memory. A session another daemon has open is
        # "saved" here, as ACP has each agent answer for itself.
        is_open = self.sessions.is_open(params.session_id)
        return SessionStatusResponse(status="open" if is_open else "saved")

    async def archive_session(self, params: ArchiveSessionRequest) -> ArchiveSessionResponse:
        await self.sessions.set_archived(self._unless_elsewhere(params.session_id), archived=True)
        return ArchiveSessionResponse()

    async def unarchive_session(self, params: UnarchiveSessionRequest) -> UnarchiveSessionResponse:
        await self.sessions.set_archived(self._unless_elsewhere(params.session_id), archived=False)
        return UnarchiveSessionResponse()

    async def set_session_title(self, params: SetSessionTitleRequest) -> SetSessionTitleResponse:
        title = await self.sessions.set_title(
            self._unless_elsewhere(params.session_id), params.title
        )
        return SetSessionTitleResponse(title=title)

    async def set_session_mode(self, params: SetSessionModeRequest) -> SetSessionModeResponse:
        await self.sessions.set_mode(self._mine(params.session_id).id, params.mode_id)
        return SetSessionModeResponse()

    async def fork_session(self, params: ForkSessionRequest) -> ForkSessionResponse:
        if params.system_prompt is not None:
            raise RpcError(
                ErrorCode.INVALID_PARAMS,
                "systemPrompt is not supported: Parley does not advertise"
                " sessionCapabilities.systemPrompt",
            )
        session = await self.sessions.fork(
            self.channel,
            params.session_id,
            _absolute(params.cwd),
            additional=_additional(params.additional_directories),
            servers=_mcp_servers(params.mcp_servers),
        )
        self._after_opening(session)
        return ForkSessionResponse(session_id=session.id, modes=_modes(session))

    async def fork_from_message(self, params: SessionForkParams) -> SessionForkResult:
        cwd = None if params.cwd is None else _absolute(params.cwd)
        session = await self.sessions.fork(self.channel, params.session_id, cwd, params.message_id)
        self._after_opening(session)
        return SessionForkResult(session_id=session.id)
