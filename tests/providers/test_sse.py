"""The SSE reader: line endings, fields, comments and chunk boundaries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from parleyd.providers.sse import SseEvent, SseParser, read_sse


def parse(*chunks: bytes) -> list[SseEvent]:
    parser = SseParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


def every_split(body: bytes) -> list[list[bytes]]:
    """The body whole, byte by byte, and cut in two at every position."""
    return [[body], [body[i : i + 1] for i in range(len(body))]] + [
        [body[:cut], body[cut:]] for cut in range(1, len(body))
    ]


def test_events_with_lf_endings() -> None:
    assert parse(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [
        SseEvent(None, '{"a":1}'),
        SseEvent(None, "[DONE]"),
    ]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline: bytes) -> None:
    body = b"event: delta" + newline + b"data: one" + newline + newline + b"data: two" + newline * 2
    assert parse(body) == [SseEvent("delta", "one"), SseEvent(None, "two")]


def test_crlf_cut_between_chunks_is_one_line_break() -> None:
    # Read as CR + LF, the lone LF would be a blank line and split the event in two.
    assert parse(b"data: a\r", b"\ndata: b\r\n\r\n") == [SseEvent(None, "a\nb")]


def test_cr_then_lf_then_blank_line_across_chunks() -> None:
    assert parse(b"data: a\r", b"\n", b"\n") == [SseEvent(None, "a")]


def test_comments_are_skipped() -> None:
    body = b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: x\n\n"
    assert parse(body) == [SseEvent(None, "x")]


def test_multi_line_data_joins_with_newlines() -> None:
    assert parse(b"data: first\ndata: second\ndata:\n\n") == [SseEvent(None, "first\nsecond\n")]


def test_only_one_space_after_the_colon_is_dropped() -> None:
    assert parse(b"data:tight\n\ndata:  padded\n\n") == [
        SseEvent(None, "tight"),
        SseEvent(None, " padded"),
    ]


def test_event_name_applies_to_one_event_only() -> None:
    assert parse(b"event: error\ndata: {}\n\ndata: {}\n\n") == [
        SseEvent("error", "{}"),
        SseEvent(None, "{}"),
    ]


def test_event_without_data_is_not_dispatched() -> None:
    assert parse(b"event: ping\n\nid: 7\nretry: 100\n\n") == []


@pytest.mark.parametrize("body", [b"data: [DONE]\n", b"data: [DONE]", b"data: [DONE]\r"])
def test_last_event_without_blank_line_is_flushed(body: bytes) -> None:
    assert parse(body) == [SseEvent(None, "[DONE]")]


def test_byte_order_mark_is_dropped() -> None:
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [SseEvent(None, "x")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse(b"data: \xff\n\n") == [SseEvent(None, "\ufffd")]


BODY = (
    ": keep-alive\r\n\r\n"
    'event: message\r\ndata: {"t":"h\u00e9 \U0001f60a \u4e16"}\r\n\r\n'
    "data: a\ndata: b\n\n"
    "data: c\r\rdata: [DONE]\n"
).encode()


@pytest.mark.parametrize("chunks", every_split(BODY), ids=lambda chunks: f"{len(chunks)}-pieces")
def test_chunk_boundaries_do_not_matter(chunks: list[bytes]) -> None:
    assert parse(*chunks) == [
        SseEvent("message", '{"t":"h\u00e9 \U0001f60a \u4e16"}'),
        SseEvent(None, "a\nb"),
        SseEvent(None, "c"),
        SseEvent(None, "[DONE]"),
    ]


async def test_read_sse_batches_the_events_each_piece_of_bytes_completed() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for piece in (b"data: o", b"ne\n\n", b"data: two\n\ndata: three\n\nda", b"ta: four"):
            yield piece

    assert [batch async for batch in read_sse(chunks())] == [
        [SseEvent(None, "one")],
        [SseEvent(None, "two"), SseEvent(None, "three")],
        [SseEvent(None, "four")],
    ]
