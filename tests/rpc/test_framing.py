"""Cutting frames out of the client's bytes, in both framings, whatever the
read boundaries, and staying in sync after a bad frame."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from parleyd.rpc.framing import FrameReader, Framing, FramingError, frame_bytes
from parleyd.rpc.transport import FrameWriter
from tests.rpc.fakes import CollectingSink, read_frames

SMALL_LIMIT = 100
OVERSIZED_LINE = b'{"pad":"' + b"x" * 200 + b'"}'


def is_error(item: bytes | FramingError, *words: str) -> bool:
    return isinstance(item, FramingError) and all(word in item.message for word in words)


def header_frame(body: bytes, *headers: bytes) -> bytes:
    return b"".join(header + b"\r\n" for header in headers) + b"\r\n" + body


# -- NDJSON -------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 2, 7, None], ids=["1", "2", "7", "whole"])
async def test_ndjson_frames_survive_any_read_boundary(step: int | None) -> None:
    data = b'{"a":1}\n{"b":[1,2,"\\n"]}\n{"c":"\xc3\xa9"}\n'
    frames, reader = await read_frames(data, step=step)
    assert frames == [b'{"a":1}', b'{"b":[1,2,"\\n"]}', b'{"c":"\xc3\xa9"}']
    assert reader.framing is Framing.NDJSON


async def test_ndjson_skips_blank_lines_between_frames() -> None:
    frames, _ = await read_frames(b'\n\n{"a":1}\n\n   \n\t\r\n{"b":2}\n\n')
    assert frames == [b'{"a":1}', b'{"b":2}']


async def test_ndjson_crlf_line_endings() -> None:
    frames, _ = await read_frames(b'{"a":1}\r\n{"b":2}\r\n', step=1)
    # A trailing CR is JSON whitespace: every frame still decodes.
    assert [msgspec.json.decode(frame) for frame in frames if isinstance(frame, bytes)] == [
        {"a": 1},
        {"b": 2},
    ]


async def test_ndjson_last_frame_without_newline_at_eof() -> None:
    frames, _ = await read_frames(b'{"a":1}\n{"b":2}', step=3)
    assert frames == [b'{"a":1}', b'{"b":2}']


@pytest.mark.parametrize("step", [1, 16, 64])
async def test_ndjson_over_limit_line_is_skipped_and_the_next_frame_comes_through(
    step: int,
) -> None:
    frames, _ = await read_frames(OVERSIZED_LINE + b'\n{"ok":1}\n', limit=SMALL_LIMIT, step=step)
    assert len(frames) == 2
    assert is_error(frames[0], str(SMALL_LIMIT))
    assert frames[1] == b'{"ok":1}'


async def test_ndjson_over_limit_last_line_at_eof_is_an_error() -> None:
    frames, _ = await read_frames(b'{"ok":1}\n' + OVERSIZED_LINE, limit=SMALL_LIMIT)
    assert len(frames) == 2
    assert frames[0] == b'{"ok":1}'
    assert is_error(frames[1], str(SMALL_LIMIT))


async def test_ndjson_over_limit_last_line_read_in_pieces_leaves_no_tail_frame() -> None:
    frames, _ = await read_frames(b'{"ok":1}\n' + OVERSIZED_LINE, limit=SMALL_LIMIT, step=8)
    assert len(frames) == 2
    assert is_error(frames[1], str(SMALL_LIMIT))


async def test_ndjson_over_limit_line_arriving_in_one_read_is_skipped() -> None:
    frames, _ = await read_frames(OVERSIZED_LINE + b'\n{"ok":1}\n', limit=SMALL_LIMIT)
    assert len(frames) == 2
    assert is_error(frames[0], str(SMALL_LIMIT))


# -- Content-Length -----------------------------------------------------------


@pytest.mark.parametrize("step", [1, 5, None], ids=["1", "5", "whole"])
async def test_content_length_with_extra_and_oddly_cased_headers(step: int | None) -> None:
    data = header_frame(
        b'{"a":1}',
        b"Content-Length: 7",
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8",
    ) + header_frame(b'{"b":"\xc3\xa9"}', b"content-type: x", b"CONTENT-LENGTH:10")
    frames, reader = await read_frames(data, step=step)
    assert frames == [b'{"a":1}', b'{"b":"\xc3\xa9"}']
    assert reader.framing is Framing.CONTENT_LENGTH


async def test_content_length_body_may_hold_newlines_and_header_lookalikes() -> None:
    body = b'{"text":"a\nContent-Length: 99\r\n\r\n"}'
    frames, _ = await read_frames(header_frame(body, b"Content-Length: %d" % len(body)))
    assert frames == [body]


GOOD = header_frame(b"{}", b"Content-Length: 2")


@pytest.mark.parametrize("value", [b"seven", b"-1", b"+2", b"2_0", b"0x2", b""])
async def test_an_unusable_content_length_is_an_error_and_reading_resyncs(value: bytes) -> None:
    # The bad block's body has no known end: it is skipped up to the next header block.
    bad = header_frame(b'{"id": 1}', b"Content-Length: " + value, b"Content-Type: x")
    frames, _ = await read_frames(bad + GOOD + GOOD, step=3)
    assert len(frames) == 3
    assert is_error(frames[0], "Content-Length")
    assert frames[1:] == [b"{}", b"{}"]


async def test_an_unusable_block_is_reported_before_more_input_arrives() -> None:
    # A client may wait for the error before it sends the next frame.
    stream = asyncio.StreamReader()
    stream.feed_data(b"Content-Length: six\r\n\r\n{}")
    frames = FrameReader(stream, 1 << 20).frames()
    assert is_error(await asyncio.wait_for(anext(frames), 5), "six")
    stream.feed_data(GOOD)
    stream.feed_eof()
    assert [frame async for frame in frames] == [b"{}"]


async def test_two_different_content_lengths_are_an_error() -> None:
    frames, _ = await read_frames(
        header_frame(b"{}", b"Content-Length: 2", b"Content-Length: 7") + GOOD
    )
    assert len(frames) == 2
    assert is_error(frames[0], "two different Content-Length values", "2", "7")
    assert frames[1] == b"{}"


async def test_a_repeated_equal_content_length_is_accepted() -> None:
    frames, _ = await read_frames(header_frame(b"{}", b"Content-Length: 2", b"content-length: 2"))
    assert frames == [b"{}"]


async def test_missing_content_length_is_an_error_and_the_next_frame_comes_through() -> None:
    frames, _ = await read_frames(
        header_frame(b'{"a":\n1}', b"Content-Type: application/json") + GOOD
    )
    assert len(frames) == 2
    assert is_error(frames[0], "without a Content-Length")
    assert frames[1] == b"{}"


async def test_a_line_that_is_no_header_is_an_error_and_reading_resyncs() -> None:
    frames, _ = await read_frames(GOOD + b"hello world\r\n" + GOOD, step=2)
    assert len(frames) == 3
    assert is_error(frames[1], "malformed header line", "hello world")
    assert frames[0] == frames[2] == b"{}"


async def test_a_body_longer_than_its_length_costs_one_error_not_the_next_frame() -> None:
    # The cut-off tail runs into the next header on the same line; the reader
    # finds that header inside the line.
    body = b'{"jsonrpc": "2.0", "id": 1}'
    data = header_frame(body, b"Content-Length: 10") + GOOD
    frames, _ = await read_frames(data, step=4)
    assert len(frames) == 3
    assert frames[0] == body[:10]
    assert is_error(frames[1], "malformed header line")
    assert frames[2] == b"{}"


async def test_an_endless_header_block_is_an_error() -> None:
    flood = b"".join(b"X-Pad-%d: %b\r\n" % (n, b"y" * 100) for n in range(100))
    frames, _ = await read_frames(b"Content-Length: 2\r\n" + flood + b"\r\n{}" + GOOD)
    assert len(frames) == 2
    assert is_error(frames[0], "header block longer than")
    assert frames[1] == b"{}"


async def test_input_ending_inside_a_header_block_is_an_error() -> None:
    frames, _ = await read_frames(GOOD + b"Content-Length: 5\r\n")
    assert len(frames) == 2
    assert frames[0] == b"{}"
    assert is_error(frames[1], "input ended inside a header")


@pytest.mark.parametrize("step", [1, 7, None], ids=["1", "7", "whole"])
async def test_every_kind_of_bad_block_in_a_row_and_each_costs_one_error(
    step: int | None,
) -> None:
    bad_blocks = [
        header_frame(b'{"x": 1}', b"Content-Length: nope"),
        header_frame(b'{"x": 1}', b"Content-Type: application/json"),
        header_frame(b'{"x": 1}', b"Content-Length: 8", b"Content-Length: 9"),
        b'{"jsonrpc": "2.0", "id": 3, "method": "ndjson in the wrong framing"}\n',
        b"garbage without a colon\r\n",
    ]
    data = GOOD + b"".join(block + GOOD for block in bad_blocks)
    frames, _ = await read_frames(data, step=step)
    assert frames[0::2] == [b"{}"] * (len(bad_blocks) + 1)
    assert all(isinstance(frame, FramingError) for frame in frames[1::2])
    assert len(frames) == 2 * len(bad_blocks) + 1


@pytest.mark.parametrize("step", [1, 8, None], ids=["1", "8", "whole"])
async def test_content_length_body_over_limit_is_skipped(step: int | None) -> None:
    oversized = b"[" + b"1," * 60 + b"1]"
    data = header_frame(oversized, b"Content-Length: %d" % len(oversized)) + header_frame(
        b"{}", b"Content-Length: 2"
    )
    frames, _ = await read_frames(data, limit=SMALL_LIMIT, step=step)
    assert len(frames) == 2
    assert is_error(frames[0], str(len(oversized)), str(SMALL_LIMIT))
    assert frames[1] == b"{}"


async def test_content_length_body_cut_short_by_eof_ends_reading() -> None:
    data = header_frame(b"{}", b"Content-Length: 2") + header_frame(
        b'{"partial', b"Content-Length: 50"
    )
    frames, _ = await read_frames(data, step=4)
    assert frames == [b"{}"]


async def test_stray_newline_between_content_length_messages_is_ignored() -> None:
    frames, _ = await read_frames(
        header_frame(b"{}", b"Content-Length: 2")
        + b"\n"
        + header_frame(b"[]", b"Content-Length: 2")
    )
    assert frames == [b"{}", b"[]"]


async def test_stray_crlf_between_content_length_messages_is_ignored() -> None:
    frames, _ = await read_frames(
        header_frame(b"{}", b"Content-Length: 2")
        + b"\r\n"
        + header_frame(b"[]", b"Content-Length: 2")
    )
    assert frames == [b"{}", b"[]"]


# -- detection and writing ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "framing", "first"),
    [
        (b' \r\n\t\n{"a":1}\n', Framing.NDJSON, b'{"a":1}'),
        (b'[{"a":1}]\n', Framing.NDJSON, b'[{"a":1}]'),
        (GOOD, Framing.CONTENT_LENGTH, b"{}"),
        (b"\r\n  " + GOOD, Framing.CONTENT_LENGTH, b"{}"),
        (
            header_frame(b"{}", b"content-TYPE: x", b"Content-Length: 2"),
            Framing.CONTENT_LENGTH,
            b"{}",
        ),
        (b"Content-Length 2\r\n\r\n{}", Framing.NDJSON, b"Content-Length 2\r"),
        (b'hello\n{"a":1}\n', Framing.NDJSON, b"hello"),
        (b"Content-Len", Framing.NDJSON, b"Content-Len"),
    ],
    ids=[
        "whitespace-then-brace",
        "bracket",
        "header",
        "whitespace-then-header",
        "content-type-first",
        "no-colon",
        "garbage",
        "cut-short-at-eof",
    ],
)
async def test_content_length_framing_only_when_the_first_line_is_a_header(
    data: bytes, framing: Framing, first: bytes
) -> None:
    frames, reader = await read_frames(data, step=1)
    assert reader.framing is framing
    assert frames[0] == first


async def test_a_garbage_first_line_costs_one_frame_not_the_connection() -> None:
    frames, _ = await read_frames(b'hello\n{"id":1}\n')
    assert frames == [b"hello", b'{"id":1}']


@pytest.mark.parametrize("data", [b"", b" \r\n\n\t"])
async def test_no_frames_and_no_framing_from_blank_input(data: bytes) -> None:
    frames, reader = await read_frames(data)
    assert frames == []
    assert reader.framing is None


def test_frame_bytes() -> None:
    body = '{"text":"é"}'.encode()
    assert frame_bytes(body, Framing.NDJSON) == body + b"\n"
    # The length counts bytes, not characters.
    assert frame_bytes(body, Framing.CONTENT_LENGTH) == b"Content-Length: 13\r\n\r\n" + body


@pytest.mark.parametrize("framing", list(Framing))
async def test_what_the_writer_frames_the_reader_cuts_back(framing: Framing) -> None:
    bodies = [b'{"a":1}', '{"text":"é\\n"}'.encode(), b"[]"]
    sink = CollectingSink()
    writer = FrameWriter(sink, framing)
    for body in bodies:
        writer.write_nowait(body)
    await writer.close()
    assert sink.closed

    frames, reader = await read_frames(bytes(sink.data), step=3)
    assert frames == bodies
    assert reader.framing is framing
