"""The JSON-RPC engine: pygls' dispatch, request futures and cancellation,
with msgspec doing every byte of decoding and encoding.

pygls 2.1's own pipeline is bypassed where it is slow or lossy: its cattrs
converter turns params into namedtuples that lose `_meta`, its notify encodes
with json.dumps and writes stdout with blocking flushes, and async notification
handlers leak entries in `_request_futures`. What is kept: `_handle_request`
(handler lookup, futures per request id, result/error callbacks),
`_handle_cancel_notification` and `_handle_response`. These are internals of the
pinned minor version; tests/rpc exercises every one of them.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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
from parleyd.rpc.framing import FrameReader, FramingError
from parleyd.rpc.transport import FrameWriter

log = logging.getLogger(__name__)

P = TypeVar("P")
RequestHandler = Callable[[P], Awaitable[Any]]
NotificationHandler = Callable[[P], Awaitable[None]]

# How long requests still running when the client closes its end may take.
_FINISH_SECONDS = 10.0

_encoder = msgspec.json.Encoder()
_incoming_decoder = msgspec.json.Decoder(Incoming)


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


class ParleyProtocol(JsonRPCProtocol):
    """pygls' protocol with a msgspec codec and Parley's framing writer."""

    def __init__(self, server: JsonRPCServer, converter: Any) -> None:
        super().__init__(server, converter)
        self.frame_writer: FrameWriter | None = None
        self.initialized = False
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

    # -- incoming ---------------------------------------------------------

    def receive(self, frame: bytes | FramingError) -> None:
        if isinstance(frame, FramingError):
            self._send_error(None, ErrorCode.PARSE_ERROR, f"Parse error: {frame.message}")
            return
        try:
            message = _incoming_decoder.decode(frame)
        except msgspec.ValidationError as exc:
            self._send_error(None, ErrorCode.INVALID_REQUEST, f"Invalid Request: {exc}")
            return
        except msgspec.DecodeError as exc:
            self._send_error(None, ErrorCode.PARSE_ERROR, f"Parse error: {exc}")
            return
        self._dispatch(message)

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
        if method == "initialize":
            # Set here, not in the handler: a client may pipeline session/new
            # right behind initialize, and handlers run as tasks in order.
            self.initialized = True
        elif not self.initialized:
            self._send_error(
                msg_id,
                ErrorCode.NOT_INITIALIZED,
                f"'{method}' was sent before 'initialize': send initialize first",
            )
            return
        self._handle_request(msg_id, method, params)

    def _notification(self, method: str, params: msgspec.Raw) -> None:
        if method in ("$/cancel_request", "$/cancelRequest"):
            self._cancel_request(method, params)
            return
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
        except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
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

    # -- outgoing ---------------------------------------------------------

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
        self.cancel_hooks.pop(msg_id, None)
        if error is not None:
            # Internal errors carry a traceback in `data`: that goes to the log, not the client.
            data = msgspec.UNSET if error.code == ErrorCode.INTERNAL_ERROR else error.data
            self._write(
                ErrorResponse(id=msg_id, error=ErrorObject(error.code, error.message, data))
            )
        else:
            self._write(Response(id=msg_id, result=result))

    def _send_error(self, msg_id: RequestId | None, code: ErrorCode, message: str) -> None:
        self._write(ErrorResponse(id=msg_id, error=ErrorObject(int(code), message)))

    def _write(self, message: object) -> None:
        if self.frame_writer is not None:
            self.frame_writer.write_nowait(_encoder.encode(message))

    async def send_notification(self, method: str, params: Any) -> None:
        """Send and wait while the client lags: streaming backpressure."""
        if self.frame_writer is not None:
            await self.frame_writer.send(
                _encoder.encode(Notification(method=method, params=params))
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

    def __init__(self) -> None:
        super().__init__(ParleyProtocol, converter_factory=_no_converter)

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
        async for frame in reader.frames():
            if reader.framing is not None:
                writer.framing = reader.framing
            self.protocol.receive(frame)
        self.protocol.fail_pending_requests("the client closed the connection")

    async def finish_requests(self) -> None:
        """Let the requests already received be answered: a script may pipe its
        requests in and close stdin before the answers are written."""
        # pygls types these as concurrent futures; for coroutine handlers,
        # the only kind registered here, they are asyncio tasks.
        futures: list[Any] = list(self.protocol._request_futures.values())
        running: list[asyncio.Future[Any]] = [
            task for task in futures if isinstance(task, asyncio.Future) and not task.done()
        ]
        if running:
            await asyncio.wait(running, timeout=_FINISH_SECONDS)


def _no_converter() -> Any:
    # Params never reach cattrs: they stay msgspec.Raw until a handler decodes them.
    import cattrs

    return cattrs.Converter()
