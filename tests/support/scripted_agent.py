"""An ACP agent that is only a script, to show what a client does with messages the
real daemon never sends.

    python scripted_agent.py PLAN_JSON

PLAN_JSON maps a request method to what the agent does when that request arrives:
`{"send": [message, ...], "result": ...}` sends the messages, waits for the answers
to those of them that are requests, then answers with `result`. A request the plan
does not name gets "method not found"; notifications are ignored.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

METHOD_NOT_FOUND = -32601


def write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def await_answers(lines: TextIO, ids: set[Any]) -> None:
    """Read until the client has answered every request in `ids`, or has gone."""
    while ids and (line := next(lines, None)) is not None:
        message = json.loads(line)
        if "method" not in message:
            ids.discard(message.get("id"))


def serve(plan: dict[str, Any], lines: TextIO) -> None:
    for line in lines:
        message = json.loads(line)
        if "method" not in message or "id" not in message:
            continue
        step = plan.get(message["method"])
        if step is None:
            error = {"code": METHOD_NOT_FOUND, "message": f"no {message['method']} here"}
            write({"jsonrpc": "2.0", "id": message["id"], "error": error})
            continue
        sent = step.get("send", [])
        for out in sent:
            write(out)
        await_answers(lines, {out["id"] for out in sent if "id" in out and "method" in out})
        write({"jsonrpc": "2.0", "id": message["id"], "result": step["result"]})


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]), sys.stdin)
