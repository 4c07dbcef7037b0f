"""The scripted offline model served over HTTP in the OpenAI Chat Completions format.

The daemon talks to it with its ordinary `openai_chat` provider, so the demo runs
the real provider path (httpx, SSE parsing, usage) end to end without a network or
an API key. What to say comes from `script.py`; this module only puts it on the
wire the way OpenAI-compatible servers do (DeepSeek-style `reasoning_content` for
the thinking), and paces it so cancelling a stream mid-answer is observable.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec

from parleyd.offline.http import HttpRequest, HttpResponder, LoopbackService
from parleyd.offline.script import MODEL_ID, PlannedUsage, Reply, plan_reply

# ---------------------------------------------------------------------------
# Wire types. In the omit_defaults ones only optional fields have defaults (None, left
# out as OpenAI leaves out what a delta does not carry); `finish_reason` is always sent
# because clients read its null.


class _FunctionDelta(msgspec.Struct, omit_defaults=True):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDelta(msgspec.Struct, omit_defaults=True):
    index: int
    function: _FunctionDelta
    id: str | None = None
    type: str | None = None


class _Delta(msgspec.Struct, omit_defaults=True):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[_ToolCallDelta] | None = None


class _ChunkChoice(msgspec.Struct):
    index: int
    delta: _Delta
    finish_reason: str | None = None


class _PromptDetails(msgspec.Struct):
    cached_tokens: int = 0


class _CompletionDetails(msgspec.Struct):
    reasoning_tokens: int


class _Usage(msgspec.Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: _PromptDetails
    completion_tokens_details: _CompletionDetails

    @classmethod
    def of(cls, usage: PlannedUsage) -> _Usage:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            prompt_tokens_details=_PromptDetails(),
            completion_tokens_details=_CompletionDetails(reasoning_tokens=usage.reasoning_tokens),
        )


class _Chunk(msgspec.Struct, omit_defaults=True):
    id: str
    object: str
    created: int
    model: str
    choices: list[_ChunkChoice]
    usage: _Usage | None = None


class _Function(msgspec.Struct):
    name: str
    arguments: str


class _ToolCall(msgspec.Struct):
    id: str
    function: _Function
    type: str = "function"


class _Message(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | None
    reasoning_content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _CompletionChoice(msgspec.Struct):
    index: int
    message: _Message
    finish_reason: str


class _Completion(msgspec.Struct):
    id: str
    created: int
    choices: list[_CompletionChoice]
    usage: _Usage
    object: str = "chat.completion"
    model: str = MODEL_ID


class _ModelCard(msgspec.Struct):
    id: str
    created: int = 0
    object: str = "model"
    owned_by: str = "parley"


class _ModelList(msgspec.Struct):
    data: list[_ModelCard]
    object: str = "list"


class _ErrorDetail(msgspec.Struct):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class _ErrorBody(msgspec.Struct):
    error: _ErrorDetail


_JSON = {"Content-Type": "application/json"}
_SSE = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_DONE = b"data: [DONE]\n\n"
_encode = msgspec.json.Encoder().encode


class _BadRequest(Exception):
    """The request cannot be answered; its message goes back in an OpenAI error body."""


def _deltas(reply: Reply) -> Iterator[_Delta]:
    """The reply as stream deltas, in the order a reasoning model sends them."""
    yield _Delta(role="assistant", content="")
    for piece in reply.thinking:
        yield _Delta(reasoning_content=piece)
    for piece in reply.content:
        yield _Delta(content=piece)
    for index, call in enumerate(reply.tool_calls):
        yield _Delta(
            tool_calls=[
                _ToolCallDelta(
                    index=index,
                    id=call.id,
                    type="function",
                    function=_FunctionDelta(name=call.name, arguments=""),
                )
            ]
        )
        for piece in call.argument_pieces():
            yield _Delta(
                tool_calls=[_ToolCallDelta(index=index, function=_FunctionDelta(arguments=piece))]
            )


def _completion(completion_id: str, created: int, reply: Reply) -> _Completion:
    tool_calls = [
        _ToolCall(id=call.id, function=_Function(name=call.name, arguments=call.arguments_json))
        for call in reply.tool_calls
    ]
    message = _Message(
        role="assistant",
        content=reply.text or None,
        reasoning_content=reply.thinking_text or None,
        tool_calls=tool_calls or None,
    )
    return _Completion(
        id=completion_id,
        created=created,
        choices=[_CompletionChoice(index=0, message=message, finish_reason=reply.finish_reason)],
        usage=_Usage.of(reply.usage),
    )


def _parse_request(request: HttpRequest) -> Mapping[str, Any]:
    try:
        body = request.json()
    except msgspec.DecodeError as exc:
        raise _BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise _BadRequest("the request body must be a JSON object with a `messages` list")
    return body


class ScriptedModelServer(LoopbackService):
    """`async with ScriptedModelServer() as model:` then point an OpenAI Chat
    Completions client at `model.base_url` with any API key and model `parley-scripted`.

    `pace` scales every delay of the script: 0 streams as fast as the socket allows
    (tests), 1 is the demo's speed.
    """

    def __init__(self, port: int = 0, pace: float = 1.0) -> None:
        super().__init__(port)
        self._pace = pace
        self._ids = itertools.count(1)
        self._active_streams = 0

    @property
    def base_url(self) -> str:
        if not self.url:
            raise RuntimeError("the scripted model server is not started")
        return f"{self.url}/v1"

    @property
    def active_streams(self) -> int:
        """Streams being written right now: 0 once a client that hung up is noticed."""
        return self._active_streams

    async def _handle(self, request: HttpRequest, responder: HttpResponder) -> None:
        # Clients configured with `.../v1` and with the bare host both work.
        path = request.path.split("?", 1)[0].removeprefix("/v1")
        if (request.method, path) == ("GET", "/models"):
            await self._send_json(responder, 200, _ModelList(data=[_ModelCard(id=MODEL_ID)]))
        elif (request.method, path) == ("POST", "/chat/completions"):
            try:
                body = _parse_request(request)
            except _BadRequest as exc:
                await self._send_error(responder, 400, str(exc), "invalid_request_error")
                return
            await self._complete(body, responder)
        else:
            await self._send_error(
                responder, 404, f"no route for {request.method} {request.path}", "not_found"
            )

    async def _complete(self, body: Mapping[str, Any], responder: HttpResponder) -> None:
        reply = plan_reply(body)
        completion_id = f"chatcmpl-scripted-{next(self._ids)}"
        created = int(time.time())
        if not body.get("stream"):
            await self._send_json(responder, 200, _completion(completion_id, created, reply))
            return
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self._active_streams += 1
        try:
            await self._stream(responder, completion_id, created, reply, include_usage)
        finally:
            self._active_streams -= 1

    async def _stream(
        self,
        responder: HttpResponder,
        completion_id: str,
        created: int,
        reply: Reply,
        include_usage: bool,
    ) -> None:
        def event(choices: list[_ChunkChoice], usage: _Usage | None = None) -> bytes:
            chunk = _Chunk(
                id=completion_id,
                object="chat.completion.chunk",
                created=created,
                model=MODEL_ID,
                choices=choices,
                usage=usage,
            )
            return b"data: " + _encode(chunk) + b"\n\n"

        await responder.start(200, _SSE)
        delay = reply.delay * self._pace
        for number, delta in enumerate(_deltas(reply)):
            # Sleeping between writes is what lets a hung-up client be noticed: the
            # next write fails with ConnectionError and the stream ends there.
            if number and delay:
                await asyncio.sleep(delay)
            await responder.write(event([_ChunkChoice(index=0, delta=delta)]))
        await responder.write(
            event([_ChunkChoice(index=0, delta=_Delta(), finish_reason=reply.finish_reason)])
        )
        if include_usage:
            await responder.write(event([], usage=_Usage.of(reply.usage)))
        await responder.write(_DONE)

    @staticmethod
    async def _send_json(responder: HttpResponder, status: int, body: msgspec.Struct) -> None:
        await responder.start(status, _JSON)
        await responder.write(_encode(body))

    @classmethod
    async def _send_error(
        cls, responder: HttpResponder, status: int, message: str, kind: str
    ) -> None:
        error = _ErrorBody(error=_ErrorDetail(message=message, type=kind))
        await cls._send_json(responder, status, error)
