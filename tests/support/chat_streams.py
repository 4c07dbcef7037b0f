"""Model responses that say what a test needs or call the tools it needs,
streamed as OpenAI's Chat Completions API streams them (calls as in the
recorded `tests/fixtures/providers/openai_chat/parallel_tool_calls.sse`: each
call's id and name first, then its arguments in fragments, then the finish
reason, the usage and `[DONE]`). Served by `ReplayServer`, they reach the
daemon's real provider like any recording."""

from __future__ import annotations

import json
from typing import Any

from parleyd.offline.script import PlannedToolCall
from tests.support.replay_server import ReplayServer


def text_stream(*pieces: str) -> bytes:
    """One response that says `pieces`, one delta each, and stops."""
    return _stream([{"content": piece} for piece in pieces], "stop")


def tool_calls_stream(*calls: PlannedToolCall) -> bytes:
    """One response whose only content is `calls`, made at once."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
    for index, call in enumerate(calls):
        function = {"name": call.name, "arguments": ""}
        opening = {"index": index, "id": call.id, "type": "function", "function": function}
        deltas.append({"tool_calls": [opening]})
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in call.argument_pieces()
        ]
    usage = {"prompt_tokens": 75, "completion_tokens": 53, "total_tokens": 128}
    return _stream(deltas, "tool_calls", usage)


def _stream(
    deltas: list[dict[str, Any]], finish_reason: str, usage: dict[str, int] | None = None
) -> bytes:
    chunks: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas
    ]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
    if usage:
        chunks.append({"choices": [], "usage": usage})
    head = {"id": "chatcmpl-written", "object": "chat.completion.chunk", "model": "gpt-4o-mini"}
    events = b"".join(b"data: %b\n\n" % json.dumps({**head, **chunk}).encode() for chunk in chunks)
    return events + b"data: [DONE]\n\n"


# Two commands run side by side, for the tests that cancel one of them: the
# sleeper says "started" once its pid is written and would sleep for a minute;
# the waiter finishes only once the sleeper is gone, so what it prints shows it
# ran on past the cancel of the other.
SLEEPER = PlannedToolCall(
    "call_sleeper", "run_shell", {"command": "echo $$ > sleeper.pid; echo started; sleep 60"}
)
WAITER_SAW = "the sleeper is gone"
WAITER = PlannedToolCall(
    "call_waiter",
    "run_shell",
    {
        "command": 'until [ -e sleeper.pid ] && ! kill -0 "$(cat sleeper.pid)" 2>/dev/null; '
        f"do sleep 0.05; done; echo {WAITER_SAW}"
    },
)


def serve_two_calls(provider: ReplayServer) -> None:
    """Queue the response that makes both calls, and a recorded answer for the
    model's next response, once their results are in."""
    provider.enqueue(200, "text/event-stream", tool_calls_stream(SLEEPER, WAITER))
    provider.enqueue_fixture("openai_chat/text_usage_chunk")
