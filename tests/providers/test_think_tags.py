"""Splitting <think> blocks out of content, wherever the chunks are cut."""

from __future__ import annotations

import itertools

import pytest

from parleyd.providers.think_tags import Piece, ThinkTagSplitter


def split(*chunks: str) -> list[Piece]:
    """The splitter's output for these chunks, with adjacent pieces of one kind merged."""
    splitter = ThinkTagSplitter()
    pieces = [piece for chunk in chunks for piece in splitter.feed(chunk)] + splitter.flush()
    assert all(text for _, text in pieces), "empty pieces are noise"
    merged: list[Piece] = []
    for thinking, group in itertools.groupby(pieces, key=lambda piece: piece[0]):
        merged.append((thinking, "".join(text for _, text in group)))
    return merged


CASES: dict[str, list[Piece]] = {
    "<think>plan</think>answer": [(True, "plan"), (False, "answer")],
    "\n <think>\nplan\n</think>\n\nanswer": [(True, "\nplan\n"), (False, "\n\nanswer")],
    "no tags at all": [(False, "no tags at all")],
    "say <think> later": [(False, "say <think> later")],
    "x<think>a</think>": [(False, "x<think>a</think>")],
    "<think>a</think>b<think>c</think>": [(True, "a"), (False, "b<think>c</think>")],
    "<think>a</thin b</think>c": [(True, "a</thin b"), (False, "c")],
    "<think>a <think> b</think>c": [(True, "a <think> b"), (False, "c")],
    "<think></think>text": [(False, "text")],
    "<think>never closed <": [(True, "never closed <")],
    "<thi": [(False, "<thi")],
    "<thinking>": [(False, "<thinking>")],
    "   ": [(False, "   ")],
    "<think>\u00e9\U0001f60a</think>\u4e16": [(True, "\u00e9\U0001f60a"), (False, "\u4e16")],
}


@pytest.mark.parametrize(("content", "expected"), CASES.items())
def test_whole_content(content: str, expected: list[Piece]) -> None:
    assert split(content) == expected


@pytest.mark.parametrize(("content", "expected"), CASES.items())
def test_every_cut_gives_the_same_output(content: str, expected: list[Piece]) -> None:
    assert split(*content) == expected  # one character at a time
    for first, second in itertools.combinations(range(1, len(content)), 2):
        assert split(content[:first], content[first:second], content[second:]) == expected


def test_a_tag_cut_across_chunks_is_recognised() -> None:
    assert split("<th", "ink>pla", "n</th", "ink>done") == [(True, "plan"), (False, "done")]


def test_only_a_possible_tag_is_held_back() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("<think>abc</th") == [(True, "abc")]
    assert splitter.feed("ese are") == [(True, "</these are")]
    assert splitter.feed("</think>ok") == [(False, "ok")]


def test_plain_text_streams_without_delay() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("Hello") == [(False, "Hello")]
    assert splitter.feed("<think>") == [(False, "<think>")]


def test_leading_whitespace_waits_for_the_first_word() -> None:
    splitter = ThinkTagSplitter()
    assert splitter.feed("\n") == []
    assert splitter.feed("Hi") == [(False, "\nHi")]
