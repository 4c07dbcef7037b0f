"""Thousands of frames, valid and broken in every way a wire can break, piped
into the real daemon in each framing: every request with an id gets exactly
one answer, each unreadable frame exactly one error, stdout holds frames and
nothing else, and a last valid request is still answered.

The mix is random but seeded, so a failure replays exactly. Each kind of frame
knows what it must get back: the ids it must be answered under, and how many
errors without an id (the daemon could not read one) it costs.
"""

from __future__ import annotations

import collections
import json
import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import PARLEYD, offline_env
from tests.support.raw_daemon import split_frames

SEED = 20240607
FRAMES_PER_FRAMING = 1500
DEPTH = 5000


@dataclass
class Case:
    """The bytes of one or more frames, and what the daemon owes for them."""

    data: bytes
    ids: list[Any] = field(default_factory=list)
    unreadable: int = 0


class Fuzzer:
    def __init__(self, framing: str, rng: random.Random) -> None:
        self.framing = framing
        self.rng = rng
        self._next_id = 0

    def new_id(self) -> Any:
        self._next_id += 1
        # Both kinds of id JSON-RPC allows, and integers past 64 bits.
        return self.rng.choice([self._next_id, f"r-{self._next_id}", 10**30 + self._next_id])

    def frame(self, body: bytes) -> bytes:
        if self.framing == "content-length":
            return b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        return body + b"\n"

    # -- messages -------------------------------------------------------------

    def request(self) -> tuple[dict[str, Any], Any]:
        msg_id = self.new_id()
        method, params = self.rng.choice(
            [
                ("session/list", {}),
                ("session/list", {"cursor": 1e300}),
                ("session/new", {"cwd": 42}),
                ("session/new", {"cwd": "relative"}),
                ("session/prompt", {"sessionId": "sess_none", "prompt": []}),
                ("session/teleport", {}),
                ("initialize", {"protocolVersion": 1}),
            ]
        )
        return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}, msg_id

    def notification(self) -> dict[str, Any]:
        return self.rng.choice(
            [
                {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": "sess_x"}},
                {"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": -1}},
                {"jsonrpc": "2.0", "method": "unknown/note"},
            ]
        )

    def garbage(self) -> bytes:
        # No colon and a first byte no header name has: never blank, JSON or a header.
        alphabet = b"abcxyz{}[],\"'\\ 0123456789\t\x00\x7f\xc3\xff"
        noise = bytes(self.rng.choice(alphabet) for _ in range(self.rng.randint(1, 60)))
        return b"<" + noise

    # -- cases for both framings ----------------------------------------------

    def valid(self) -> Case:
        message, msg_id = self.request()
        return Case(self.frame(json.dumps(message).encode()), ids=[msg_id])

    def notified(self) -> Case:
        return Case(self.frame(json.dumps(self.notification()).encode()))

    def not_json(self) -> Case:
        return Case(self.frame(self.garbage()), unreadable=1)

    def truncated(self) -> Case:
        body = json.dumps(self.request()[0]).encode()
        return Case(self.frame(body[: self.rng.randint(1, len(body) - 1)]), unreadable=1)

    def bad_utf8_in_method(self) -> Case:
        message, _ = self.request()
        body = json.dumps(message).encode().replace(b'"method": "', b'"method": "\xff\xfe', 1)
        return Case(self.frame(body), unreadable=1)

    def bad_utf8_in_params(self) -> Case:
        msg_id = self.new_id()
        body = b'{"jsonrpc": "2.0", "id": %b, "method": "session/list", "params": {"cwd": "\xc3"}}'
        return Case(self.frame(body % json.dumps(msg_id).encode()), ids=[msg_id])

    def huge_number_id(self) -> Case:
        body = b'{"jsonrpc": "2.0", "id": 1e999, "method": "session/list"}'
        return Case(self.frame(body), unreadable=1)

    def deep(self) -> Case:
        nested = b"[" * DEPTH + b"]" * DEPTH
        body = b'{"jsonrpc": "2.0", "id": 1, "method": "session/list", "params": {"cwd": %b}}'
        return Case(self.frame(body % nested), unreadable=1)

    def wrong_version(self) -> Case:
        msg_id = self.new_id()
        body = {"jsonrpc": "1.0", "id": msg_id, "method": "session/list"}
        return Case(self.frame(json.dumps(body).encode()), ids=[msg_id])

    def not_a_message(self) -> Case:
        body = self.rng.choice([b"42", b'"text"', b"null", b"{}", b'{"id": {"a": 1}}'])
        return Case(self.frame(body), unreadable=1)

    def batch(self) -> Case:
        elements: list[Any] = []
        case = Case(b"")
        for _ in range(self.rng.randint(1, 5)):
            kind = self.rng.randrange(3)
            if kind == 0:
                message, msg_id = self.request()
                elements.append(message)
                case.ids.append(msg_id)
            elif kind == 1:
                elements.append(self.notification())
            else:
                elements.append(self.rng.choice([7, "x", [], None]))
                case.unreadable += 1
        case.data = self.frame(json.dumps(elements).encode())
        return case

    def empty_batch(self) -> Case:
        return Case(self.frame(b"[]"), unreadable=1)

    # -- cases for one framing ------------------------------------------------

    def bad_header_block(self) -> Case:
        """Content-Length: the block is unusable, so its body is skipped unread."""
        message, _ = self.request()
        body = json.dumps(message).encode()
        headers = self.rng.choice(
            [
                [b"Content-Length: %b" % self.rng.choice([b"ten", b"-4", b"+3", b"0x10", b""])],
                [b"Content-Type: application/vscode-jsonrpc; charset=utf-8"],
                [b"Content-Length: %d" % len(body), b"Content-Length: %d" % (len(body) + 1)],
            ]
        )
        return Case(b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body, unreadable=1)

    def length_too_short(self) -> Case:
        """Content-Length: the first part of the body is read as the frame, the
        rest is not a header: two errors, and the next frame is found."""
        body = json.dumps(self.request()[0]).encode()
        return Case(b"Content-Length: %d\r\n\r\n%b" % (len(body) // 2, body), unreadable=2)

    def valid_then_garbage_line(self) -> Case:
        """Content-Length: a line that is no header, after a frame. (Right after
        an unusable block it would be skipped with that block's body.)"""
        case = self.valid()
        case.data += self.garbage() + b"\r\n"
        case.unreadable = 1
        return case

    def valid_then_ndjson_line(self) -> Case:
        """Content-Length: an NDJSON frame is one line that is no header."""
        case = self.valid()
        case.data += json.dumps(self.request()[0]).encode() + b"\n"
        case.unreadable = 1
        return case

    def unusual_headers(self) -> Case:
        """Content-Length: legal headers, oddly spelt and ordered."""
        message, msg_id = self.request()
        body = json.dumps(message).encode()
        data = b"content-type: application/json\r\nCONTENT-LENGTH:   %d\r\n\r\n%b" % (
            len(body),
            body,
        )
        return Case(data, ids=[msg_id])

    def header_frame_in_ndjson(self) -> Case:
        """NDJSON: a Content-Length frame is a header line (an error), a blank
        line, and its body on the next line."""
        return Case(b"Content-Length: 12\r\n\r\n" + self.garbage() + b"\n", unreadable=2)

    def kinds(self) -> list[Callable[[], Case]]:
        common = [
            self.valid,
            self.valid,
            self.valid,
            self.notified,
            self.not_json,
            self.truncated,
            self.bad_utf8_in_method,
            self.bad_utf8_in_params,
            self.huge_number_id,
            self.deep,
            self.wrong_version,
            self.not_a_message,
            self.batch,
            self.empty_batch,
        ]
        if self.framing == "content-length":
            return [
                *common,
                self.bad_header_block,
                self.length_too_short,
                self.valid_then_garbage_line,
                self.valid_then_ndjson_line,
                self.unusual_headers,
            ]
        return [*common, self.header_frame_in_ndjson]

    def cases(self, count: int) -> list[Case]:
        init = {
            "jsonrpc": "2.0",
            "id": "init",
            "method": "initialize",
            "params": {"protocolVersion": 1},
        }
        first = Case(self.frame(json.dumps(init).encode()), ids=["init"])
        kinds = self.kinds()
        middle = [self.rng.choice(kinds)() for _ in range(count)]
        final = {"jsonrpc": "2.0", "id": "final", "method": "session/list", "params": {}}
        return [first, *middle, Case(self.frame(json.dumps(final).encode()), ids=["final"])]


def _is_response(frame: Any) -> bool:
    if not isinstance(frame, dict) or frame.get("jsonrpc") != "2.0" or "id" not in frame:
        return False
    if "result" in frame:
        return "error" not in frame
    error = frame.get("error")
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), int)
        and isinstance(error.get("message"), str)
    )


@pytest.mark.parametrize("framing", ["ndjson", "content-length"])
def test_every_request_in_a_fuzzed_stream_is_answered_once(tmp_path: Path, framing: str) -> None:
    cases = Fuzzer(framing, random.Random(f"{SEED}-{framing}")).cases(FRAMES_PER_FRAMING)
    run = subprocess.run(
        PARLEYD,
        input=b"".join(case.data for case in cases),
        env=offline_env(tmp_path / "home"),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode(errors="replace")[-2000:]
    assert b"Traceback" not in run.stderr, run.stderr.decode(errors="replace")[-2000:]

    frames = split_frames(run.stdout, framing)
    answers = [item for frame in frames for item in (frame if isinstance(frame, list) else [frame])]
    assert all(_is_response(answer) for answer in answers), [
        answer for answer in answers if not _is_response(answer)
    ][:3]
    answered = collections.Counter(json.dumps(a["id"]) for a in answers if a["id"] is not None)
    expected = collections.Counter(json.dumps(msg_id) for case in cases for msg_id in case.ids)
    assert answered == expected, {
        "missing": list((expected - answered).elements())[:10],
        "unexpected": list((answered - expected).elements())[:10],
    }
    unreadable = [a for a in answers if a["id"] is None]
    assert len(unreadable) == sum(case.unreadable for case in cases)
    assert {a["error"]["code"] for a in unreadable} <= {-32700, -32600}
    final = next(a for a in answers if a["id"] == "final")
    assert final["result"]["sessions"] == []
