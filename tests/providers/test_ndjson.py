"""The NDJSON reader: lines, batches per read, blank lines and chunk boundaries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from parleyd.providers.ndjson import read_ndjson


async def batches(*chunks: bytes) -> list[list[bytes]]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [batch async for batch in read_ndjson(source())]


async def lines(*chunks: bytes) -> list[bytes]:
    return [line for batch in await batches(*chunks) for line in batch]


def every_split(body: bytes) -> list[list[bytes]]:
    """The body whole, byte by byte, and cut in two at every position."""
    return [[body], [body[i : i + 1] for i in range(len(body))]] + [
        [body[:cut], body[cut:]] for cut in range(1, len(body))
    ]


async def test_each_read_gives_the_lines_it_completed_as_one_batch() -> None:
    assert await batches(b'{"a":1}\n{"a":', b'2}\n{"a":3}\n{"a":4}\n{"a"', b":5}\n") == [
        [b'{"a":1}'],
        [b'{"a":2}', b'{"a":3}', b'{"a":4}'],
        [b'{"a":5}'],
    ]


async def test_a_read_that_ends_no_line_yields_nothing() -> None:
    assert await batches(b'{"a":', b"1", b"}", b"\n") == [[b'{"a":1}']]


@pytest.mark.parametrize("body", [b'{"done":true}', b'{"a":1}\n{"done":true}'])
async def test_a_last_line_without_newline_comes_at_the_end(body: bytes) -> None:
    assert (await batches(body))[-1] == [b'{"done":true}']


@pytest.mark.parametrize(
    "body", [b"\n\n", b"   \n", b"\r\n", b"\t\n", b"", b"\n  \n\r\n"], ids=repr
)
async def test_blank_lines_are_skipped(body: bytes) -> None:
    assert await lines(b'{"a":1}\n', body, b'{"a":2}\n', body) == [b'{"a":1}', b'{"a":2}']


async def test_whitespace_after_the_last_line_is_no_line() -> None:
    assert await batches(b'{"a":1}\n', b" \r") == [[b'{"a":1}']]


async def test_empty_reads_change_nothing() -> None:
    assert await batches(b"", b'{"a":1}', b"", b"\n", b"") == [[b'{"a":1}']]


async def test_crlf_lines_keep_a_carriage_return_that_json_reads_as_whitespace() -> None:
    received = await lines(b'{"a":1}\r\n{"a":2}\r\n')
    assert received == [b'{"a":1}\r', b'{"a":2}\r']
    assert [msgspec.json.decode(line) for line in received] == [{"a": 1}, {"a": 2}]


async def test_a_long_line_read_byte_by_byte_is_one_line() -> None:
    line = b'{"text":"' + b"x" * 20_000 + b'"}'
    body = line + b"\n"
    assert await batches(*(body[i : i + 1] for i in range(len(body)))) == [[line]]


BODY = (
    '{"message":{"content":"h\u00e9 \U0001f60a \u4e16"}}\n'
    "\n"
    '{"message":{"thinking":"a\\nb"}}\r\n'
    '{"done":true}'
).encode()


@pytest.mark.parametrize("chunks", every_split(BODY), ids=lambda chunks: f"{len(chunks)}-pieces")
async def test_chunk_boundaries_do_not_matter(chunks: list[bytes]) -> None:
    # `\n` is never part of a multibyte UTF-8 character, so a character cut
    # between two reads is whole again in its line.
    received = await lines(*chunks)
    assert [msgspec.json.decode(line) for line in received] == [
        {"message": {"content": "h\u00e9 \U0001f60a \u4e16"}},
        {"message": {"thinking": "a\nb"}},
        {"done": True},
    ]
