"""Each provider adapter's events per second beside the raw cost of reading the same bytes.

A recorded stream of each provider (the longest of its captures in the test
fixtures) is fed in network-sized pieces to the adapter's parser, and, for the
baseline, to the framing reader alone (SSE, or Ollama's NDJSON lines): the
ratio is what understanding the events costs on top of finding them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report import Row

from parleyd.providers.anthropic import parse_anthropic_stream
from parleyd.providers.gemini import parse_gemini_stream
from parleyd.providers.ndjson import read_ndjson
from parleyd.providers.ollama import parse_ollama_stream
from parleyd.providers.openai_chat import parse_chat_stream
from parleyd.providers.openai_responses import parse_responses_stream
from parleyd.providers.sse import read_sse

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "providers"
# About what one read of a busy stream holds.
PIECE = 1024
Reader = Callable[[AsyncIterator[bytes]], AsyncIterator[list[Any]]]
Parser = Callable[[AsyncIterator[list[Any]]], AsyncIterator[object]]


@dataclass(frozen=True)
class Adapter:
    provider: str
    capture: str
    read: Reader
    parse: Parser


ADAPTERS = [
    Adapter("openai", "openai_chat/together_think_tags.sse", read_sse, parse_chat_stream),
    Adapter(
        "openai-responses",
        "openai_responses/reasoning_summary.sse",
        read_sse,
        parse_responses_stream,
    ),
    Adapter(
        "anthropic",
        "anthropic/web_search_server_tool_citations.sse",
        read_sse,
        parse_anthropic_stream,
    ),
    Adapter("gemini", "gemini/thought_parts_with_signature.sse", read_sse, parse_gemini_stream),
    Adapter("ollama", "ollama/thinking.ndjson", read_ndjson, parse_ollama_stream),
]


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    for at in range(0, len(body), PIECE):
        yield body[at : at + PIECE]


async def _framed(adapter: Adapter, body: bytes) -> int:
    """What the framing alone finds: the number of wire events."""
    return sum([len(batch) async for batch in adapter.read(_pieces(body))])


async def _parsed(adapter: Adapter, body: bytes) -> int:
    return len([event async for event in adapter.parse(adapter.read(_pieces(body)))])


async def _seconds(run: Callable[[], Any], repeats: int) -> float:
    began = time.perf_counter()
    for _ in range(repeats):
        await run()
    return time.perf_counter() - began


async def run(repeats: int) -> list[Row]:
    rows: list[Row] = []
    for adapter in ADAPTERS:
        body = (FIXTURES / adapter.capture).read_bytes()
        wire_events = await _framed(adapter, body)
        await _parsed(adapter, body)  # untimed: loads the code paths
        framing = await _seconds(lambda a=adapter, b=body: _framed(a, b), repeats)
        parsing = await _seconds(lambda a=adapter, b=body: _parsed(a, b), repeats)
        rows.append(
            Row(
                measurement=f"{adapter.provider} adapter, wire events/s ({adapter.capture})",
                unit="/s",
                parley=wire_events * repeats / parsing,
                baseline=wire_events * repeats / framing,
                baseline_name="framing alone",
                detail={"wire_events": wire_events, "bytes": len(body), "repeats": repeats},
            )
        )
    return rows
