"""The JSON-RPC engine: pygls' dispatch, request futures and cancellation,
with msgspec doing every byte of decoding and encoding.

pygls 2.1's own pipeline is bypassed where it is slow or lossy: its cattrs
converter turns params into namedtuples that lose `_meta`, its notify encodes
with json.dumps and writes stdout with blocking flushes, async notification
handlers leak entries in `_request_futures`, and it has no batches. What is
kept: `_handle_request` (handler lookup via `fm.features`, a future per request
id in `_request_futures`, `msg_id` in a context variable), `_send_handler_result`
as the done-callback that answers, and `_handle_cancel_notification`. These are
internals of the pinned minor version; tests/rpc exercises every one of them.

Whether a request has been answered is tracked here, not read off pygls'
futures: a handler can be finished while the done-callback that writes its
answer has yet to run, and the daemon must not exit in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from lsprotocol.types import ResponseError
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import JsonRPCProtocol
from pygls.server import JsonRPCServer

from parley_protocol.jsonrpc import (
    ErrorCode,
    ErrorObject,
    ErrorResponse,
    Incoming,
    Notification,
    Request,
    RequestId,
    Response,
)
from parley_protocol.parley import ListenerAuth
from parleyd.rpc.framing import FrameReader, FramingError
from parleyd.rpc.transport import FrameWriter

if TYPE_CHECKING:
    # Only listeners have a token; stdio never imports what issues one.
    from parleyd.rpc.access import AccessToken

log = logging.getLogger(__name__)

P = TypeVar("P")
RequestHandler = Callable[[P], Awaitable[Any]]
NotificationHandler = Callable[[P], Awaitable[None]]

# How long requests still running when the client closes its end may take.
FINISH_SECONDS = 10.0

_encoder = msgspec.json.Encoder()
_frame_decoder = msgspec.json.Decoder(Incoming | list[msgspec.Raw])
_incoming_decoder = msgspec.json.Decoder(Incoming)
_TOO_DEEP = "JSON nested too deeply"


class RpcError(JsonRpcException):
    """Raise from a handler to answer with this code and message."""

    def __init__(self, code: ErrorCode, message: str, data: Any = None) -> None:
        super().__init__(message=message, code=int(code), data=data)


class PeerError(Exception):
    """The client answered one of our requests with an error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code


def decode_params(raw: msgspec.Raw, params_type: type[P]) -> P:
    """Params straight from raw JSON into their Struct; absent params count as `{}`."""
    try:
        return msgspec.json.decode(bytes(raw) if len(raw) else b"{}", type=params_type)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise JsonRpcInvalidParams(message=f"Invalid params: {exc}") from None
    except RecursionError:
        raise JsonRpcInvalidParams(message=f"Invalid params: {_TOO_DEEP}") from None


class _ParleyAuthMeta(msgspec.Struct):
    parley: ListenerAuth | None = None


class _InitializeAuth(msgspec.Struct):
    meta: _ParleyAuthMeta | None = msgspec.field(default=None, name="_meta")


def _presented_token(params: msgspec.Raw) -> str | None:
    """`_meta.parley.token` of an initialize request, if it is there and a string."""
    try:
        auth = msgspec.json.decode(bytes(params) if len(params) else b"{}", type=_InitializeAuth)
    except (msgspec.DecodeError, RecursionError):
        return None
    return auth.meta.parley.token if auth.meta and auth.meta.parley else None


class _Batch:
    """The answers to one JSON-RPC batch: sent together, as one array in the
    order of the batch's elements, once its last request is answered. A batch
    of notifications only gets no answer at all, as JSON-RPC 2.0 says."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        self._answers: list[bytes] = []
        self._missing = 0
        self._sealed = False

    def reserve(self) -> int:
        """A place for the answer of a request that is answered later."""
        self._answers.append(b"")
        self._missing += 1
        return len(self._answers) - 1

    def fill(self, index: int, body: bytes) -> None:
        self._answers[index] = body
        self._missing -= 1
        self._send_when_complete()

    def add(self, body: bytes) -> None:
        self._answers.append(body)

    def seal(self) -> None:
        """Every element has been dispatched: no more places will be reserved."""
        self._sealed = True
        self._send_when_complete()

    def _send_when_complete(self) -> None:
        if self._sealed and not self._missing and self._answers:
            self._send(b"[" + b",".join(self._answers) + b"]")


# Where a request's answer goes: straight to the wire, or into its batch's place.
_AnswerSlot = tuple[_Batch, int] | None


class ParleyProtocol(JsonRPCProtocol):
    """pygls' protocol with a msgspec codec and Parley's framing writer."""

    def __init__(self, server: JsonRPCServer, converter: Any) -> None:
        super().__init__(server, converter)
        self.frame_writer: FrameWriter | None = None
        self.initialized = False
        # The client closed its end: it can answer nothing more.
        self.input_closed = False
        # Set for a connection any local process can open (a TCP listener).
        self.access: AccessToken | None = None
        # Told of each admitted request and notification as it is read, before
        # its handler is even scheduled (see AcpAgent's control requests).
        self.on_arrival: Callable[[str, msgspec.Raw], None] | None = None
        self._ids = itertools.count(1)
        # Our own requests to the client, apart from pygls' `_request_futures`
        # (the client's requests): both sides number their ids from 1.
        self._outgoing: dict[RequestId, asyncio.Future[msgspec.Raw]] = {}
        # Requests we stopped waiting for: the client still answers them (ACP
        # asks it to), and such a late answer is expected, not a protocol fault.
        self._abandoned: set[RequestId] = set()
        self._notification_tasks: set[asyncio.Task[None]] = set()
        # Request id -> hook that turns a `$/cancel_request` into a semantic
        # cancel (session/prompt answers `cancelled`, not an error).
        self.cancel_hooks: dict[RequestId, Callable[[], None]] = {}
        # Request id -> what follows its answer, once it succeeded: the
        # notifications about a session the client learns of in the answer.
        self.after_answer: dict[RequestId, Callable[[], None]] = {}
        # Every request accepted and not yet answered; an id in here is in use.
        self._unanswered: dict[RequestId, _AnswerSlot] = {}
        self._all_answered = asyncio.Event()
        self._all_answered.set()
        # The batch whose elements are being dispatched, which collects their answers.
        self._batch: _Batch | None = None

    # -- incoming ---------------------------------------------------------

    def receive(self, frame: bytes | FramingError) -> None:
        if isinstance(frame, FramingError):
            self._send_error(None, ErrorCode.PARSE_ERROR, f"Parse error: {frame.message}")
            return
        try:
            message = _frame_decoder.decode(frame)
        except msgspec.ValidationError as exc:
            self._send_error(None, ErrorCode.INVALID_REQUEST, f"Invalid Request: {exc}")
            return
        except msgspec.DecodeError as exc:
            self._send_error(None, ErrorCode.PARSE_ERROR, f"Parse error: {exc}")
            return
        except RecursionError:
            self._send_error(None, ErrorCode.PARSE_ERROR, f"Parse error: {_TOO_DEEP}")
            return
        if isinstance(message, list):
            self._receive_batch(message)
        else:
            self._dispatch(message)

    def _receive_batch(self, elements: list[msgspec.Raw]) -> None:
        if not elements:
            self._send_error(None, ErrorCode.INVALID_REQUEST, "Invalid Request: an empty batch")
            return
        batch = self._batch = _Batch(self._write_body)
        try:
            for element in elements:
                try:
                    message = _incoming_decoder.decode(element)
                except msgspec.DecodeError as exc:
                    self._send_error(None, ErrorCode.INVALID_REQUEST, f"Invalid Request: {exc}")
                else:
                    self._dispatch(message)
        finally:
            self._batch = None
        batch.seal()

    def _dispatch(self, message: Incoming) -> None:
        if message.jsonrpc != "2.0":
            self._send_error(
                message.id, ErrorCode.INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"'
            )
            return
        context = contextvars.copy_context()
        if message.method is not None:
            if message.id is not None:
                context.run(self._request, message.id, message.method, message.params)
            else:
                context.run(self._notification, message.method, message.params)
        elif message.id is not None and (len(message.result) or message.error is not None):
            context.run(self._handle_response, message.id, message.result, message.error)
        else:
            self._send_error(
                message.id,
                ErrorCode.INVALID_REQUEST,
                "Invalid Request: neither a method nor a result or error",
            )

    def _request(self, msg_id: RequestId, method: str, params: msgspec.Raw) -> None:
        if msg_id in self._unanswered:
            self._send_error(
                msg_id,
                ErrorCode.INVALID_REQUEST,
                "Invalid Request: this id belongs to a request still in progress",
            )
            return
        refusal = self._admission(method, params)
        if refusal is not None:
            self._send_error(msg_id, *refusal)
            return
        self._unanswered[msg_id] = (
            None if self._batch is None else (self._batch, self._batch.reserve())
        )
        self._all_answered.clear()
        if self.on_arrival is not None:
            self.on_arrival(method, params)
        self._handle_request(msg_id, method, params)

    def _admission(self, method: str, params: msgspec.Raw) -> tuple[ErrorCode, str] | None:
        """Why the connection may not make this request yet, if it may not."""
        if method == "initialize":
            if self.access is not None and not self.access.admits(_presented_token(params)):
                return ErrorCode.AUTH_REQUIRED, self.access.how_to_present
            # Set here, not in the handler: a client may pipeline session/new
            # right behind initialize, and handlers run as tasks in order.
            self.initialized = True
            return None
        if self.initialized:
            return None
        if self.access is not None:
            before = f"'{method}' was sent before an accepted 'initialize'"
            return ErrorCode.AUTH_REQUIRED, f"{before}: {self.access.how_to_present}"
        return (
            ErrorCode.NOT_INITIALIZED,
            f"'{method}' was sent before 'initialize': send initialize first",
        )

    def _notification(self, method: str, params: msgspec.Raw) -> None:
        if not self.initialized:
            # Nothing a notification could act on exists yet, and on a TCP
            # listener the sender may not even be admitted.
            log.warning("ignoring notification %r sent before initialize", method)
            return
        if method in ("$/cancel_request", "$/cancelRequest"):
            self._cancel_request(method, params)
            return
        if self.on_arrival is not None:
            self.on_arrival(method, params)
        handler = self.fm.features.get(method)
        if handler is None:
            # JSON-RPC forbids answering a notification; `$/` ones may be ignored.
            log.warning("ignoring notification for unknown method %r", method)
            return
        # Run outside pygls' `_execute_handler`, which would park the task in
        # `_request_futures` under a random id forever.
        task = asyncio.ensure_future(handler(params))
        self._notification_tasks.add(task)
        task.add_done_callback(self._notification_done)

    def _notification_done(self, task: asyncio.Task[None]) -> None:
        self._notification_tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("notification handler failed", exc_info=exc)

    def _cancel_request(self, method: str, params: msgspec.Raw) -> None:
        key = "requestId" if method == "$/cancel_request" else "id"
        try:
            target = msgspec.json.decode(bytes(params) or b"{}", type=dict[str, RequestId])[key]
        except (msgspec.DecodeError, KeyError, RecursionError):
            log.warning("ignoring %s with bad params %r", method, bytes(params)[:200])
            return
        if (hook := self.cancel_hooks.get(target)) is not None:
            hook()
        else:
            self._handle_cancel_notification(target)

    def _handle_response(self, msg_id: RequestId, result: Any = None, error: Any = None) -> None:
        future = self._outgoing.pop(msg_id, None)
        if msg_id in self._abandoned:
            self._abandoned.discard(msg_id)
            log.debug("late answer to abandoned request %r", msg_id)
        elif future is None or future.done():
            log.warning("response to unknown request id %r", msg_id)
        elif error is not None:
            future.set_exception(PeerError(error.code, error.message))
        else:
            future.set_result(result)

    # -- answers ----------------------------------------------------------

    def _send_handler_result(self, future: Any, *, msg_id: RequestId) -> None:
        """Answer a finished request. pygls logs every error answer with a
        traceback; an RpcError is an ordinary answer (unknown session, bad cwd)
        and only unexpected exceptions deserve one."""
        self._request_futures.pop(msg_id, None)
        if not future.cancelled() and isinstance(future.exception(), JsonRpcException):
            error = future.exception()
            log.info("request %r answered with error %d: %s", msg_id, error.code, error.message)
            self._send_response(msg_id, error=error.to_response_error())
            return
        super()._send_handler_result(future, msg_id=msg_id)

    def _send_response(
        self, msg_id: RequestId, result: Any = None, error: ResponseError | None = None
    ) -> None:
        """Answer an accepted request: pygls' path for every answer, whatever
        the outcome. A request is answered once; a later answer is dropped."""
        if msg_id not in self._unanswered:
            log.debug("request %r was answered already; dropping another answer", msg_id)
            return
        slot = self._unanswered.pop(msg_id)
        if not self._unanswered:
            self._all_answered.set()
        self.cancel_hooks.pop(msg_id, None)
        following = self.after_answer.pop(msg_id, None)
        message: ErrorResponse | Response
        if error is not None:
            # Internal errors carry a traceback in `data`: that goes to the log, not the client.
            data = msgspec.UNSET if error.code == ErrorCode.INTERNAL_ERROR else error.data
            message = ErrorResponse(id=msg_id, error=ErrorObject(error.code, error.message, data))
        else:
            message = Response(id=msg_id, result=result)
        body = _encoder.encode(message)
        if slot is None:
            self._write_body(body)
            # Out at once, not with the loop iteration's batch: whoever waits
            # for an answer (a cancel) must not also wait for every streaming
            # session's next step.
            if self.frame_writer is not None:
                self.frame_writer.flush()
        else:
            batch, index = slot
            batch.fill(index, body)
        if following is not None and error is None:
            following()

    def _send_error(self, msg_id: RequestId | None, code: ErrorCode, message: str) -> None:
        """Refuse a message that was never accepted as a request."""
        body = _encoder.encode(ErrorResponse(id=msg_id, error=ErrorObject(int(code), message)))
        if self._batch is not None:
            self._batch.add(body)
        else:
            self._write_body(body)

    async def finish(self, grace: float) -> None:
        """Answer every accepted request: with its handler's answer if it comes
        within `grace` seconds, else by cancelling the handler and saying so."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_answered.wait(), grace)
        for msg_id in list(self._unanswered):
            if (future := self._request_futures.get(msg_id)) is not None:
                future.cancel()
            reason = f"cancelled: the connection closed and the request took over {grace:g} s"
            self._send_response(
                msg_id, error=ResponseError(int(ErrorCode.REQUEST_CANCELLED), reason)
            )

    # -- outgoing ---------------------------------------------------------

    def _write_body(self, body: bytes) -> None:
        if self.frame_writer is not None:
            self.frame_writer.write_nowait(body)

    def _write(self, message: object) -> None:
        self._write_body(_encoder.encode(message))

    @staticmethod
    def notification_body(method: str, params: Any) -> bytes:
        """A notification, encoded, for a frame written later (see `outbox.py`)."""
        return _encoder.encode(Notification(method=method, params=params))

    async def send_notification(self, method: str, params: Any) -> None:
        """Send and wait while the client lags: streaming backpressure."""
        if self.frame_writer is not None:
            await self.frame_writer.send(
                _encoder.encode(Notification(method=method, params=params))
            )

    async def send_notifications(self, method: str, params: Iterable[Any]) -> None:
        """Send one notification for each of `params`, in order, as
        `send_notification` would, waiting for a lagging client once per
        write rather than once per message."""
        if self.frame_writer is not None:
            await self.frame_writer.send_all(
                _encoder.encode(Notification(method=method, params=each)) for each in params
            )

    async def request(self, method: str, params: Any) -> msgspec.Raw:
        """Send a request to the client and wait for its raw result."""
        msg_id = next(self._ids)
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._outgoing[msg_id] = future
        try:
            if self.frame_writer is None or self.frame_writer.closed:
                raise PeerError(int(ErrorCode.INTERNAL_ERROR), "the client is not connected")
            await self.frame_writer.send(
                _encoder.encode(Request(id=msg_id, method=method, params=params))
            )
            return await future
        except asyncio.CancelledError:
            self._abandoned.add(msg_id)
            # Tell the client we stopped waiting (ACP `$/cancel_request` works
            # both ways), so it can dismiss a permission dialog, say.
            self._write(Notification(method="$/cancel_request", params={"requestId": msg_id}))
            raise
        finally:
            self._outgoing.pop(msg_id, None)

    def fail_pending_requests(self, reason: str) -> None:
        """The client is gone: wake everything waiting on an answer from it."""
        for future in self._outgoing.values():
            if not future.done():
                future.set_exception(PeerError(int(ErrorCode.INTERNAL_ERROR), reason))


class RpcServer(JsonRPCServer):
    """Registers typed handlers and pumps frames from a reader into the protocol."""

    protocol: ParleyProtocol

    def __init__(self, access: AccessToken | None = None) -> None:
        super().__init__(ParleyProtocol, converter_factory=_no_converter)
        self.protocol.access = access

    def request(
        self, method: str, params_type: type[P]
    ) -> Callable[[RequestHandler[P]], RequestHandler[P]]:
        def register(handler: RequestHandler[P]) -> RequestHandler[P]:
            async def run(raw: msgspec.Raw) -> Any:
                return await handler(decode_params(raw, params_type))

            self.protocol.fm.features[method] = run
            return handler

        return register

    def notification(
        self, method: str, params_type: type[P]
    ) -> Callable[[NotificationHandler[P]], NotificationHandler[P]]:
        def register(handler: NotificationHandler[P]) -> NotificationHandler[P]:
            async def run(raw: msgspec.Raw) -> None:
                try:
                    params = decode_params(raw, params_type)
                except JsonRpcInvalidParams as exc:
                    log.warning("ignoring %s: %s", method, exc.message)
                    return
                await handler(params)

            self.protocol.fm.features[method] = run
            return handler

        return register

    async def serve(self, reader: FrameReader, writer: FrameWriter) -> None:
        """Handle frames until the client closes its end."""
        self.protocol.frame_writer = writer
        try:
            async for frame in reader.frames():
                if reader.framing is not None:
                    writer.framing = reader.framing
                self.protocol.receive(frame)
        finally:
            self.protocol.input_closed = True
            self.protocol.fail_pending_requests("the client closed the connection")

    async def finish_requests(self, grace: float = FINISH_SECONDS) -> None:
        """Answer every request already received: a script may pipe its requests
        in and close stdin before the answers are written."""
        await self.protocol.finish(grace)


def _no_converter() -> Any:
    # Params never reach cattrs: they stay msgspec.Raw until a handler decodes them.
    import cattrs

    return cattrs.Converter()
