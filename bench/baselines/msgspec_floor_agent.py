"""Baseline: the least CPU a Python ACP agent can spend on one streamed delta.

msgspec and asyncio only. It answers `initialize` and `session/new`, and runs a
`session/prompt` as parleyd's hot path does, at its barest: POST the
OpenAI-compatible server at OPENAI_BASE_URL, decode each SSE chunk of the
stream, and write each text delta to stdout as one `session/update`
`agent_message_chunk` frame. It keeps no history, logs nothing, checks little,
and serves one prompt at a time.
"""

import asyncio
import os
import sys
from urllib.parse import urlsplit

import msgspec


class _Params(msgspec.Struct):
    sessionId: str = ""


class _Request(msgspec.Struct):
    method: str = ""
    id: int | str | None = None
    params: _Params = msgspec.field(default_factory=_Params)


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta


class _ChatChunk(msgspec.Struct):
    choices: list[_Choice]


class _Text(msgspec.Struct):
    text: str
    type: str = "text"


class _MessageChunk(msgspec.Struct):
    content: _Text
    sessionUpdate: str = "agent_message_chunk"


class _UpdateParams(msgspec.Struct):
    sessionId: str
    update: _MessageChunk


class _Notification(msgspec.Struct):
    params: _UpdateParams
    method: str = "session/update"
    jsonrpc: str = "2.0"


_decode_request = msgspec.json.Decoder(_Request).decode
_decode_chunk = msgspec.json.Decoder(_ChatChunk).decode
_encode = msgspec.json.Encoder().encode
_INITIALIZED = {"protocolVersion": 1, "agentCapabilities": {}, "authMethods": []}
_BODY = _encode(
    {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "bench"}]}
)


async def _stream(session_id: str, out: asyncio.WriteTransport) -> None:
    base = urlsplit(os.environ["OPENAI_BASE_URL"])
    reader, writer = await asyncio.open_connection(base.hostname, base.port)
    writer.write(
        b"POST %b/chat/completions HTTP/1.1\r\nHost: %b\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%b"
        % (base.path.encode(), base.netloc.encode(), len(_BODY), _BODY)
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"the model server answered {status!r}")
    while await reader.readline() not in (b"\r\n", b""):
        pass  # headers: the bench provider always sends its body chunked
    pending = b""
    while size := int(await reader.readline(), 16):
        pending += (await reader.readexactly(size + 2))[:-2]
        *events, pending = pending.split(b"\n\n")
        for event in events:
            data = event.removeprefix(b"data: ")
            if data == b"[DONE]":
                continue
            for choice in _decode_chunk(data).choices:
                if choice.delta.content:
                    update = _MessageChunk(_Text(choice.delta.content))
                    out.write(_encode(_Notification(_UpdateParams(session_id, update))) + b"\n")
    writer.close()


def _answer(request: _Request, result: object) -> bytes:
    return _encode({"jsonrpc": "2.0", "id": request.id, "result": result}) + b"\n"


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
    sessions = 0
    while line := await reader.readline():
        request = _decode_request(line)
        if request.id is None:
            continue  # a notification wants no answer
        if request.method == "initialize":
            out.write(_answer(request, _INITIALIZED))
        elif request.method == "session/new":
            sessions += 1
            out.write(_answer(request, {"sessionId": f"floor-{sessions}"}))
        elif request.method == "session/prompt":
            await _stream(request.params.sessionId, out)
            out.write(_answer(request, {"stopReason": "end_turn"}))
        else:
            error = {"code": -32601, "message": f"method not found: {request.method}"}
            out.write(_encode({"jsonrpc": "2.0", "id": request.id, "error": error}) + b"\n")


if __name__ == "__main__":
    asyncio.run(main())
