"""Baseline: a bare pygls `JsonRPCServer` that answers ACP `initialize` over stdio.

pygls reads only Content-Length framing, so the bench frames for it that way.
Nothing else is registered: this is the floor for a pygls-based daemon's
start-up time and idle memory, which Parley is built on.
"""

from typing import Any

from pygls.protocol import JsonRPCProtocol, default_converter
from pygls.server import JsonRPCServer

server = JsonRPCServer(JsonRPCProtocol, default_converter)


@server.feature("initialize")
def initialize(params: Any) -> dict[str, Any]:
    return {"protocolVersion": 1, "agentCapabilities": {}, "authMethods": []}


if __name__ == "__main__":
    server.start_io()
