"""`ParleyClient`: parleyd's ACP methods as typed async calls, and its update stream.

    async with ParleyClient(env=..., permission_handler=allow_all) as client:
        await client.initialize()
        session = await client.new_session(Path.cwd())
        answer = await client.run_with_updates(
            client.prompt(session, "Summarize README.md"), on_update=print
        )
        print(answer.stop_reason)

`updates()` is the lower-level stream the same is built on.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import msgspec

from parley_client.errors import DISCONNECTED, ParleyError
from parley_client.launch import DaemonProcess, Endpoint, SocketEndpoint, StderrTarget
from parley_client.permissions import PermissionHandler, deny_all
from parley_client.rpc import FrameObserver, JsonRpcPeer
from parley_protocol import PROTOCOL_VERSION
from parley_protocol.acp import (
    INITIALIZE,
    SESSION_CANCEL,
    SESSION_LIST,
    SESSION_LOAD,
    SESSION_NEW,
    SESSION_PROMPT,
    SESSION_REQUEST_PERMISSION,
    SESSION_UPDATE,
    AllowedOutcome,
    CancelNotification,
    ClientCapabilities,
    ContentBlock,
    DeniedOutcome,
    Implementation,
    InitializeRequest,
    InitializeResponse,
    ListSessionsRequest,
    ListSessionsResponse,
    LoadSessionRequest,
    LoadSessionResponse,
    NewSessionRequest,
    NewSessionResponse,
    PromptRequest,
    PromptResponse,
    RequestPermissionOutcome,
    RequestPermissionRequest,
    RequestPermissionResponse,
    SessionInfo,
    SessionNotification,
    TextContent,
)
from parley_protocol.jsonrpc import ErrorCode
from parley_protocol.parley import (
    PARLEY_META_KEY,
    SESSION_ATTACH,
    ListenerAuth,
    ReplayFrom,
    SessionAttachParams,
    SessionAttachResult,
    SessionSettings,
)

CLIENT_INFO: Final = Implementation(name="parley-client", title="Parley CLI", version="0.1.0")

_T = TypeVar("_T")


def _absolute(cwd: str | Path) -> str:
    # ACP wants absolute paths; relative ones mean relative to this process.
    return str(Path(cwd).absolute())


class _Marker:
    """Queue items that are not notifications: the stream ended, or a turn did."""


_END: Final = _Marker()
_WAKE: Final = _Marker()


class Updates:
    """`session/update` notifications received from the moment this was created
    (so subscribe *before* the request whose updates you want, e.g. session/load's
    replay), for one session or all; iteration ends when the daemon goes away.
    Use as a context manager, or call `close()`, to stop receiving."""

    def __init__(self, client: ParleyClient, session_id: str | None) -> None:
        self.session_id = session_id
        self._client = client
        self._queue: asyncio.Queue[SessionNotification | _Marker] = asyncio.Queue()
        self._ended = False

    def _deliver(self, notification: SessionNotification) -> None:
        if self.session_id is None or notification.session_id == self.session_id:
            self._queue.put_nowait(notification)

    def _end(self) -> None:
        self._queue.put_nowait(_END)

    def close(self) -> None:
        self._client._subscribers.discard(self)
        self._end()

    def __enter__(self) -> Updates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[SessionNotification]:
        return self._until(None)

    def until(self, done: asyncio.Future[Any]) -> AsyncIterator[SessionNotification]:
        """The updates that arrive until `done` (typically the request's future)
        completes, however it completes. The daemon sends a turn's updates before
        its answer, so when this ends every update of that request has been seen."""
        done.add_done_callback(lambda _: self._queue.put_nowait(_WAKE))
        return self._until(done)

    async def _until(self, done: asyncio.Future[Any] | None) -> AsyncIterator[SessionNotification]:
        while not self._ended:
            item = await self._queue.get()
            if item is _END:
                self._ended = True
            elif item is _WAKE:
                if done is not None and done.done():
                    return
            else:
                assert isinstance(item, SessionNotification)
                yield item


class ParleyClient:
    """An ACP client for parleyd: spawns the daemon (the default) or connects to
    one that listens (`ParleyClient.connect_tcp`, `ParleyClient.connect_unix`).
    Use as an async context manager."""

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        stderr: StderrTarget = None,
        cwd: Path | None = None,
        permission_handler: PermissionHandler = deny_all,
        endpoint: Endpoint | None = None,
        frame_observer: FrameObserver | None = None,
    ) -> None:
        self.endpoint: Endpoint = endpoint or DaemonProcess(
            command, env=env, stderr=stderr, cwd=cwd
        )
        self.permission_handler = permission_handler
        self.frame_observer = frame_observer
        self._peer: JsonRpcPeer | None = None
        self._subscribers: set[Updates] = set()
        # Permission handler calls in progress, per session: a session/cancel answers them.
        self._asking: defaultdict[str, set[asyncio.Future[str | None]]] = defaultdict(set)
        # Sent in initialize's `_meta`: a TCP listener's token.
        self._initialize_meta: dict[str, Any] | None = None

    @classmethod
    def connect_tcp(
        cls,
        host: str,
        port: int,
        *,
        token_file: Path,
        permission_handler: PermissionHandler = deny_all,
        frame_observer: FrameObserver | None = None,
    ) -> ParleyClient:
        """`token_file` is the one `parleyd --listen tcp://...` printed on start."""
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            raise ParleyError(
                DISCONNECTED, f"cannot read the parleyd token file {token_file}: {exc.strerror}"
            ) from exc
        client = cls(
            endpoint=SocketEndpoint.tcp(host, port),
            permission_handler=permission_handler,
            frame_observer=frame_observer,
        )
        client._initialize_meta = {PARLEY_META_KEY: msgspec.to_builtins(ListenerAuth(token=token))}
        return client

    @classmethod
    def connect_unix(
        cls,
        path: Path,
        *,
        permission_handler: PermissionHandler = deny_all,
        frame_observer: FrameObserver | None = None,
    ) -> ParleyClient:
        return cls(
            endpoint=SocketEndpoint.unix(path),
            permission_handler=permission_handler,
            frame_observer=frame_observer,
        )

    async def __aenter__(self) -> ParleyClient:
        try:
            reader, writer = await self.endpoint.open()
        except OSError as exc:
            raise ParleyError(DISCONNECTED, str(exc)) from exc
        self._peer = JsonRpcPeer(
            reader,
            writer,
            on_request=self._answer_request,
            on_notification=self._notified,
            on_close=self._connection_lost,
            describe_end=self.endpoint.describe_end,
            on_frame=self.frame_observer,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the daemon (or disconnect) and wait until the stream has ended."""
        await self.endpoint.close()
        if self._peer is not None:
            await self._peer.wait_closed()

    @property
    def peer(self) -> JsonRpcPeer:
        if self._peer is None:
            raise ParleyError(DISCONNECTED, "the client is not connected: use `async with`")
        return self._peer

    # -- ACP methods -------------------------------------------------------------

    async def initialize(
        self, capabilities: ClientCapabilities | None = None
    ) -> InitializeResponse:
        params = InitializeRequest(
            protocol_version=PROTOCOL_VERSION,
            client_capabilities=capabilities or ClientCapabilities(),
            client_info=CLIENT_INFO,
            meta=self._initialize_meta,
        )
        return await self._call(INITIALIZE, params, InitializeResponse)

    async def new_session(self, cwd: str | Path, settings: SessionSettings | None = None) -> str:
        """Start a session in `cwd`; `settings` (provider, model, ...) ride in `_meta.parley`."""
        meta = {PARLEY_META_KEY: msgspec.to_builtins(settings)} if settings else None
        params = NewSessionRequest(cwd=_absolute(cwd), mcp_servers=[], meta=meta)
        return (await self._call(SESSION_NEW, params, NewSessionResponse)).session_id

    async def load_session(self, session_id: str, cwd: str | Path) -> LoadSessionResponse:
        """Open a stored session; its conversation is replayed as updates before this returns."""
        params = LoadSessionRequest(session_id=session_id, cwd=_absolute(cwd), mcp_servers=[])
        return await self._call(SESSION_LOAD, params, LoadSessionResponse)

    async def attach(
        self, session_id: str, cwd: str | Path, replay_from: ReplayFrom | None
    ) -> SessionAttachResult:
        """Take a session onto this connection, from the editor that has it if
        one does; what `replay_from` asks for is replayed as updates before
        this returns, and the live stream follows (`_parley/session/attach`)."""
        params = SessionAttachParams(
            session_id=session_id, cwd=_absolute(cwd), replay_from=replay_from
        )
        return await self._call(SESSION_ATTACH, params, SessionAttachResult)

    async def list_sessions(
        self, cwd: str | Path | None = None, cursor: str | None = None
    ) -> ListSessionsResponse:
        params = ListSessionsRequest(cwd=None if cwd is None else _absolute(cwd), cursor=cursor)
        return await self._call(SESSION_LIST, params, ListSessionsResponse)

    async def prompt(
        self, session_id: str, text: str, attached: Sequence[ContentBlock] = ()
    ) -> PromptResponse:
        """Run one turn; its updates stream to `updates()` while this waits.
        `attached`: blocks sent after the text (files: `attachments.file_block`)."""
        params = PromptRequest(session_id=session_id, prompt=[TextContent(text=text), *attached])
        return await self._call(SESSION_PROMPT, params, PromptResponse)

    async def cancel(self, session_id: str) -> None:
        """Cancel the session's running turn; its prompt() then returns `cancelled`.
        Permission questions still open for it are answered `cancelled`, as ACP asks."""
        for asking in self._asking.pop(session_id, set()):
            asking.cancel()
        await self.peer.notify(SESSION_CANCEL, CancelNotification(session_id=session_id))

    async def all_sessions(self, cwd: str | Path | None = None) -> list[SessionInfo]:
        """Every stored session (of `cwd` when given), following `nextCursor`."""
        sessions: list[SessionInfo] = []
        cursor: str | None = None
        while True:
            page = await self.list_sessions(cwd, cursor)
            sessions.extend(page.sessions)
            if not page.next_cursor:
                return sessions
            cursor = page.next_cursor

    async def run_with_updates(
        self,
        call: Awaitable[_T],
        on_update: Callable[[SessionNotification], object],
        session_id: str | None = None,
    ) -> _T:
        """Await `call` (e.g. `client.prompt(...)`, not yet awaited) while passing
        every update it causes to `on_update`; returns once both are done."""
        with self.updates(session_id) as updates:
            future = asyncio.ensure_future(call)
            try:
                async for notification in updates.until(future):
                    on_update(notification)
            except BaseException:
                future.cancel()
                raise
            return await future

    def updates(self, session_id: str | None = None) -> Updates:
        subscription = Updates(self, session_id)
        if self._peer is not None and self._peer.closed:
            subscription._end()
        else:
            self._subscribers.add(subscription)
        return subscription

    async def _call(self, method: str, params: msgspec.Struct, result_type: type[_T]) -> _T:
        raw = await self.peer.request(method, params)
        try:
            return msgspec.json.decode(raw, type=result_type)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ParleyError(
                ErrorCode.INTERNAL_ERROR, f"parleyd sent an unreadable {method} answer: {exc}"
            ) from exc

    # -- what the daemon sends ---------------------------------------------------

    def _notified(self, method: str, params: msgspec.Raw) -> None:
        if method != SESSION_UPDATE:
            return
        try:
            notification = msgspec.json.decode(params, type=SessionNotification)
        except (msgspec.DecodeError, msgspec.ValidationError):
            # An update kind newer than this client: ACP lets clients skip those.
            return
        for subscription in list(self._subscribers):
            subscription._deliver(notification)

    def _connection_lost(self, reason: ParleyError) -> None:
        for subscription in self._subscribers:
            subscription._end()
        self._subscribers.clear()

    async def _answer_request(self, method: str, params: msgspec.Raw) -> Any:
        if method != SESSION_REQUEST_PERMISSION:
            raise ParleyError(ErrorCode.METHOD_NOT_FOUND, f"the client does not serve {method}")
        try:
            request = msgspec.json.decode(params, type=RequestPermissionRequest)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ParleyError(ErrorCode.INVALID_PARAMS, f"Invalid params: {exc}") from exc
        return RequestPermissionResponse(outcome=await self._ask(request))

    async def _ask(self, request: RequestPermissionRequest) -> RequestPermissionOutcome:
        asking = asyncio.ensure_future(self.permission_handler(request))
        self._asking[request.session_id].add(asking)
        try:
            option_id = await asking
        except asyncio.CancelledError:
            # Our own session/cancel stopped the handler: that is an answer
            # (`cancelled`). A `$/cancel_request` cancels this task itself instead.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            option_id = None
        finally:
            waiting = self._asking[request.session_id]
            waiting.discard(asking)
            if not waiting:
                del self._asking[request.session_id]
        if option_id is None:
            return DeniedOutcome()
        return AllowedOutcome(option_id=option_id)
