"""JSON-RPC 2.0 over newline-delimited JSON, both directions at once.

The daemon answers our requests and sends its own (permission questions) and
notifications on the same stream, so one reader task routes every line:
responses to the future waiting for them, requests to a handler task each,
notifications to a callback, in the order they arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

import msgspec

from parley_client.errors import DISCONNECTED, ParleyError
from parley_protocol.acp import CANCEL_REQUEST, CancelRequestNotification
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

log = logging.getLogger(__name__)

RequestHandler = Callable[[str, msgspec.Raw], Awaitable[Any]]
"""Answers one request from the daemon: (method, raw params) -> result. Raising
ParleyError sends that error; the method-not-found case is the handler's to raise."""
NotificationHandler = Callable[[str, msgspec.Raw], None]
CloseHandler = Callable[[ParleyError], None]
FrameObserver = Callable[[Literal["sent", "received"], bytes], None]
"""Sees every frame as raw JSON (no newline), for tracing or protocol checks."""

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Incoming)


class JsonRpcPeer:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_request: RequestHandler,
        on_notification: NotificationHandler,
        on_close: CloseHandler,
        describe_end: Callable[[], Awaitable[str]],
        on_frame: FrameObserver | None = None,
    ) -> None:
        self._reader = reader
        self._on_frame = on_frame
        self._writer = writer
        self._on_request = on_request
        self._on_notification = on_notification
        self._on_close = on_close
        self._describe_end = describe_end
        self._ids = itertools.count(1)
        self._pending: dict[RequestId, asyncio.Future[msgspec.Raw]] = {}
        # The daemon's requests in progress, by id, so `$/cancel_request` can stop one.
        self._serving: dict[RequestId, asyncio.Task[None]] = {}
        # Our requests whose caller stopped waiting: their answers are expected, not strays.
        self._abandoned: set[RequestId] = set()
        self._end: ParleyError | None = None
        self._reading = asyncio.create_task(self._read())

    @property
    def closed(self) -> bool:
        return self._end is not None

    async def wait_closed(self) -> None:
        await asyncio.shield(self._reading)

    async def request(self, method: str, params: Any) -> msgspec.Raw:
        if self._end is not None:
            raise self._end
        msg_id = next(self._ids)
        future: asyncio.Future[msgspec.Raw] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        try:
            await self._send(Request(id=msg_id, method=method, params=params))
            return await future
        except asyncio.CancelledError:
            # The answer may still come (a prompt's, once the daemon has ended the turn).
            self._abandoned.add(msg_id)
            raise
        finally:
            self._pending.pop(msg_id, None)

    async def notify(self, method: str, params: Any) -> None:
        if self._end is not None:
            raise self._end
        await self._send(Notification(method=method, params=params))

    async def _send(self, message: Request | Notification | Response | ErrorResponse) -> None:
        self._write(message)
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise self._end or ParleyError(DISCONNECTED, f"cannot write to parleyd: {exc}") from exc

    def _write(self, message: Request | Notification | Response | ErrorResponse) -> None:
        if not self._writer.is_closing():
            frame = _encoder.encode(message)
            if self._on_frame is not None:
                self._on_frame("sent", frame)
            self._writer.write(frame + b"\n")

    # -- reading ---------------------------------------------------------------

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                if line.strip():
                    self._receive(line)
        except (ConnectionError, ValueError) as exc:
            # ValueError: a line longer than the stream limit; the stream is unusable.
            log.warning("reading from parleyd failed: %s", exc)
        finally:
            self._end = ParleyError(DISCONNECTED, await self._describe_end())
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(self._end)
            for task in self._serving.values():
                task.cancel()
            self._on_close(self._end)

    def _receive(self, line: bytes) -> None:
        if self._on_frame is not None:
            self._on_frame("received", line.strip())
        try:
            message = _decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("ignoring an unreadable line from parleyd: %s", exc)
            return
        if message.method is None:
            self._resolve(message)
        elif message.id is None:
            if message.method == CANCEL_REQUEST:
                self._cancel_serving(message.params)
            else:
                self._on_notification(message.method, message.params)
        else:
            task = asyncio.create_task(self._serve(message.id, message.method, message.params))
            self._serving[message.id] = task

    def _resolve(self, message: Incoming) -> None:
        if message.id in self._abandoned:
            self._abandoned.discard(message.id)
            return
        future = self._pending.get(message.id) if message.id is not None else None
        if future is None or future.done():
            log.warning("ignoring a response to no request of ours (id %r)", message.id)
        elif message.error is not None:
            error = message.error
            data = None if error.data is msgspec.UNSET else error.data
            future.set_exception(ParleyError(error.code, error.message, data))
        else:
            future.set_result(message.result)

    async def _serve(self, msg_id: RequestId, method: str, params: msgspec.Raw) -> None:
        try:
            result = await self._on_request(method, params)
        except asyncio.CancelledError:
            # ACP wants an answer even to a request the daemon gave up on.
            if self._end is None:
                self._write(
                    ErrorResponse(
                        id=msg_id,
                        error=ErrorObject(ErrorCode.REQUEST_CANCELLED, "request cancelled"),
                    )
                )
            return
        except ParleyError as exc:
            reply: Response | ErrorResponse = ErrorResponse(
                id=msg_id, error=ErrorObject(exc.code, exc.message)
            )
        except Exception as exc:
            log.exception("answering %s failed", method)
            reply = ErrorResponse(
                id=msg_id, error=ErrorObject(ErrorCode.INTERNAL_ERROR, f"client error: {exc}")
            )
        else:
            reply = Response(id=msg_id, result=result)
        finally:
            self._serving.pop(msg_id, None)
        with contextlib.suppress(ParleyError):
            await self._send(reply)

    def _cancel_serving(self, params: msgspec.Raw) -> None:
        try:
            target = msgspec.json.decode(params, type=CancelRequestNotification).request_id
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("ignoring %s with bad params: %s", CANCEL_REQUEST, exc)
            return
        task = self._serving.get(target) if target is not None else None
        if task is not None:
            task.cancel()
