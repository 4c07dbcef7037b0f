"""Baseline: the least a Python NDJSON JSON-RPC server over stdio can be.

msgspec and asyncio only, answering `initialize` and a method-not-found error
for anything else: the floor for any Python ACP agent's start-up time.
"""

import asyncio
import sys

import msgspec


class _Message(msgspec.Struct):
    method: str = ""
    id: int | str | None = None


_decode = msgspec.json.Decoder(_Message).decode
_encode = msgspec.json.Encoder().encode
_INITIALIZED = {"protocolVersion": 1, "agentCapabilities": {}, "authMethods": []}


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, _ = await loop.connect_write_pipe(asyncio.Protocol, sys.stdout)
    while line := await reader.readline():
        message = _decode(line)
        if message.id is None:
            continue  # a notification wants no answer
        if message.method == "initialize":
            reply = {"jsonrpc": "2.0", "id": message.id, "result": _INITIALIZED}
        else:
            error = {"code": -32601, "message": f"method not found: {message.method}"}
            reply = {"jsonrpc": "2.0", "id": message.id, "error": error}
        transport.write(_encode(reply) + b"\n")


if __name__ == "__main__":
    asyncio.run(main())
