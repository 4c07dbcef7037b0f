"""The JSON-RPC engine in-process: dispatch, errors, batches, cancellation both
ways, answering everything at the end, the listener token, and the pygls
internals server.py relies on (see its module docstring), all seen from the wire."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from pygls.exceptions import JsonRpcInvalidParams

from parley_protocol.jsonrpc import ErrorCode
from parleyd.rpc.access import AccessToken
from parleyd.rpc.framing import FramingError
from parleyd.rpc.server import PeerError, RpcError, RpcServer, decode_params
from parleyd.rpc.transport import FrameWriter
from tests.rpc.fakes import CollectingSink

DEEP = b"[" * 100_000 + b"]" * 100_000


class Greet(msgspec.Struct):
    name: str
    times: int = 1


class Harness:
    """An RpcServer wired to a collecting sink, with a handful of handlers."""

    def __init__(self, access: AccessToken | None = None) -> None:
        self.server = RpcServer(access)
        self.protocol = self.server.protocol
        self.sink = CollectingSink()
        self.writer = FrameWriter(self.sink)
        self.protocol.frame_writer = self.writer
        self.noted: asyncio.Queue[str] = asyncio.Queue()
        self.hang_started = asyncio.Event()
        self._unread: collections.deque[Any] = collections.deque()
        self._parsed = 0
        self._barriers = itertools.count()
        self._register()

    def _register(self) -> None:
        server = self.server

        @server.request("initialize", dict[str, Any])
        async def initialize(params: dict[str, Any]) -> dict[str, Any]:
            return {"protocolVersion": 1}

        @server.request("greet", Greet)
        async def greet(params: Greet) -> dict[str, str]:
            return {"text": " ".join([f"hello {params.name}"] * params.times)}

        @server.request("hang", dict[str, Any])
        async def hang(params: dict[str, Any]) -> None:
            self.hang_started.set()
            await asyncio.Future()

        @server.request("boom", dict[str, Any])
        async def boom(params: dict[str, Any]) -> None:
            raise RuntimeError("handler bug")

        @server.request("refuse", dict[str, Any])
        async def refuse(params: dict[str, Any]) -> None:
            raise RpcError(ErrorCode.RESOURCE_NOT_FOUND, "no such session", {"id": "s1"})

        @server.notification("note", Greet)
        async def note(params: Greet) -> None:
            await asyncio.sleep(0)
            self.noted.put_nowait(params.name)

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.receive(msgspec.json.encode({"jsonrpc": "2.0", **message}))

    async def initialize(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.send({"id": 0, "method": "initialize", "params": params or {"protocolVersion": 1}})
        return await self.next_reply()

    async def next_reply(self) -> Any:
        """The next frame written: an answer object, or a batch's array of them."""
        async with asyncio.timeout(5):
            while not self._parse():
                self.sink.written.clear()
                await self.sink.written.wait()
        return self._unread.popleft()

    def _parse(self) -> bool:
        end = self.sink.data.rfind(b"\n") + 1
        if end > self._parsed:
            lines = bytes(self.sink.data[self._parsed : end]).splitlines()
            self._unread.extend(msgspec.json.decode(line) for line in lines)
            self._parsed = end
        return bool(self._unread)

    async def replies_until(self, msg_id: object) -> list[Any]:
        """Every frame written up to and including the answer to `msg_id`."""
        frames = [await self.next_reply()]
        while not (isinstance(frames[-1], dict) and frames[-1].get("id") == msg_id):
            frames.append(await self.next_reply())
        return frames

    async def before_barrier(self) -> list[Any]:
        """What the messages sent so far had written by the time a request
        sent now is answered: nothing, for messages that get no answer."""
        barrier = f"barrier-{next(self._barriers)}"
        self.send({"id": barrier, "method": "greet", "params": {"name": "barrier"}})
        return (await self.replies_until(barrier))[:-1]

    async def error_of(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        reply = await self.next_reply()
        assert reply["id"] == message.get("id")
        error: dict[str, Any] = reply["error"]
        return error


@pytest.fixture
async def rpc() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.server.finish_requests(grace=0)  # stops handlers that hang


@pytest.fixture
async def ready(rpc: Harness) -> Harness:
    assert (await rpc.initialize())["result"] == {"protocolVersion": 1}
    return rpc


async def test_responses_carry_the_request_id(ready: Harness) -> None:
    ready.send({"id": 7, "method": "greet", "params": {"name": "ada", "times": 2}})
    ready.send({"id": "req-x", "method": "greet", "params": {"name": "bob"}})
    assert [await ready.next_reply(), await ready.next_reply()] == [
        {"jsonrpc": "2.0", "id": 7, "result": {"text": "hello ada hello ada"}},
        {"jsonrpc": "2.0", "id": "req-x", "result": {"text": "hello bob"}},
    ]


@pytest.mark.parametrize(
    ("params", "named"),
    [({"name": 5}, "$.name"), ({"times": 2}, "`name`"), (None, "`name`")],
    ids=["wrong-type", "missing", "absent-params"],
)
async def test_invalid_params_name_the_field(
    ready: Harness, params: dict[str, Any] | None, named: str
) -> None:
    message: dict[str, Any] = {"id": 1, "method": "greet"}
    if params is not None:
        message["params"] = params
    error = await ready.error_of(message)
    assert error["code"] == ErrorCode.INVALID_PARAMS
    assert named in error["message"]


def test_params_nested_too_deeply_are_invalid_params() -> None:
    with pytest.raises(JsonRpcInvalidParams, match="nested too deeply"):
        decode_params(msgspec.Raw(b'{"name": "a", "extra": ' + DEEP + b"}"), Greet)


async def test_unknown_method(ready: Harness) -> None:
    error = await ready.error_of({"id": 2, "method": "session/teleport", "params": {}})
    assert error["code"] == ErrorCode.METHOD_NOT_FOUND
    assert "session/teleport" in error["message"]


async def test_requests_before_initialize_are_refused(rpc: Harness) -> None:
    error = await rpc.error_of({"id": 1, "method": "greet", "params": {"name": "a"}})
    assert error["code"] == ErrorCode.NOT_INITIALIZED
    assert "'greet'" in error["message"]
    await rpc.initialize()
    rpc.send({"id": 2, "method": "greet", "params": {"name": "a"}})
    assert (await rpc.next_reply())["result"] == {"text": "hello a"}


async def test_notifications_before_initialize_are_ignored(rpc: Harness) -> None:
    rpc.send({"method": "note", "params": {"name": "early"}})
    await rpc.initialize()
    rpc.send({"method": "note", "params": {"name": "late"}})
    assert await asyncio.wait_for(rpc.noted.get(), 5) == "late"


@pytest.mark.parametrize(
    "frame",
    [
        b'{"jsonrpc": "2.0", "id": 1, "method":',
        b"\xff\xfe",
        b"",
        DEEP,
        b'{"jsonrpc": "2.0", "id": 1, "method": "greet", "params": ' + DEEP + b"}",
        FramingError("too big"),
    ],
    ids=["truncated", "not-utf8", "empty", "deep", "deep-params", "framing-error"],
)
async def test_unparsable_frames_get_a_parse_error_with_null_id(
    ready: Harness, frame: bytes | FramingError
) -> None:
    ready.protocol.receive(frame)
    reply = await ready.next_reply()
    assert reply["id"] is None
    assert reply["error"]["code"] == ErrorCode.PARSE_ERROR


@pytest.mark.parametrize(
    "frame",
    [b"5", b'"text"', b"null", b'{"jsonrpc": "2.0", "id": 1.5, "method": "greet"}'],
    ids=["number", "string", "null", "float-id"],
)
async def test_json_that_is_no_message_is_an_invalid_request(ready: Harness, frame: bytes) -> None:
    ready.protocol.receive(frame)
    reply = await ready.next_reply()
    assert (reply["id"], reply["error"]["code"]) == (None, ErrorCode.INVALID_REQUEST)


async def test_wrong_jsonrpc_version_is_an_invalid_request(ready: Harness) -> None:
    ready.protocol.receive(b'{"jsonrpc": "1.0", "id": 4, "method": "greet"}')
    reply = await ready.next_reply()
    assert (reply["id"], reply["error"]["code"]) == (4, ErrorCode.INVALID_REQUEST)


async def test_notifications_run_and_are_never_answered(ready: Harness) -> None:
    ready.send({"method": "note", "params": {"name": 42}})  # bad params: dropped
    ready.send({"method": "unknown/note", "params": {}})
    ready.send({"method": "note", "params": {"name": "n1"}})
    assert await ready.before_barrier() == []
    assert await asyncio.wait_for(ready.noted.get(), 5) == "n1"


async def test_an_id_in_use_is_refused_until_its_request_is_answered(ready: Harness) -> None:
    ready.send({"id": 5, "method": "hang", "params": {}})
    error = await ready.error_of({"id": 5, "method": "greet", "params": {"name": "a"}})
    assert error["code"] == ErrorCode.INVALID_REQUEST
    assert "in progress" in error["message"]
    ready.send({"method": "$/cancel_request", "params": {"requestId": 5}})
    assert (await ready.next_reply())["error"]["code"] == ErrorCode.REQUEST_CANCELLED
    ready.send({"id": 5, "method": "greet", "params": {"name": "a"}})
    assert (await ready.next_reply())["result"] == {"text": "hello a"}


# -- batches --------------------------------------------------------------------


def greet(msg_id: object, name: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "greet", "params": {"name": name}}


async def test_a_batch_is_answered_with_one_array_in_its_order(ready: Harness) -> None:
    batch = [
        greet(1, "a"),
        {"jsonrpc": "2.0", "method": "note", "params": {"name": "in-batch"}},
        5,
        {"jsonrpc": "2.0", "id": 2, "method": "session/teleport"},
        greet(3, "b"),
    ]
    ready.protocol.receive(msgspec.json.encode(batch))
    answers = await ready.next_reply()
    assert [(a["id"], a.get("result"), a.get("error", {}).get("code")) for a in answers] == [
        (1, {"text": "hello a"}, None),
        (None, None, ErrorCode.INVALID_REQUEST),
        (2, None, ErrorCode.METHOD_NOT_FOUND),
        (3, {"text": "hello b"}, None),
    ]
    assert await asyncio.wait_for(ready.noted.get(), 5) == "in-batch"


async def test_a_batch_waits_for_its_slowest_request(ready: Harness) -> None:
    ready.protocol.receive(
        msgspec.json.encode([greet(1, "a"), {"jsonrpc": "2.0", "id": 2, "method": "hang"}])
    )
    await asyncio.wait_for(ready.hang_started.wait(), 5)
    assert await ready.before_barrier() == []
    ready.send({"method": "$/cancel_request", "params": {"requestId": 2}})
    first, second = await ready.next_reply()
    assert first["result"] == {"text": "hello a"}
    assert (second["id"], second["error"]["code"]) == (2, ErrorCode.REQUEST_CANCELLED)


async def test_a_batch_of_notifications_gets_no_answer(ready: Harness) -> None:
    notes = [{"jsonrpc": "2.0", "method": "note", "params": {"name": n}} for n in "xy"]
    ready.protocol.receive(msgspec.json.encode(notes))
    assert await ready.before_barrier() == []
    assert [await asyncio.wait_for(ready.noted.get(), 5) for _ in notes] == ["x", "y"]


async def test_an_empty_batch_is_one_invalid_request(ready: Harness) -> None:
    ready.protocol.receive(b"[]")
    reply = await ready.next_reply()
    assert (reply["id"], reply["error"]["code"]) == (None, ErrorCode.INVALID_REQUEST)


async def test_initialize_and_a_request_in_one_batch(rpc: Harness) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}
    rpc.protocol.receive(msgspec.json.encode([init, greet(2, "a")]))
    assert [answer.get("result") for answer in await rpc.next_reply()] == [
        {"protocolVersion": 1},
        {"text": "hello a"},
    ]


# -- cancellation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "key"),
    [("$/cancelRequest", "id"), ("$/cancel_request", "requestId")],
    ids=["lsp", "acp"],
)
async def test_cancel_notification_cancels_a_running_request(
    ready: Harness, method: str, key: str
) -> None:
    ready.send({"id": 11, "method": "hang", "params": {}})
    await asyncio.wait_for(ready.hang_started.wait(), 5)
    ready.send({"method": method, "params": {key: 11}})
    reply = await ready.next_reply()
    assert reply["id"] == 11
    assert reply["error"]["code"] == ErrorCode.REQUEST_CANCELLED


async def test_a_cancel_hook_replaces_cancelling(ready: Harness) -> None:
    calls: list[str] = []
    ready.protocol.cancel_hooks["p-1"] = lambda: calls.append("hook")
    ready.send({"id": "p-1", "method": "hang", "params": {}})
    ready.send({"method": "$/cancel_request", "params": {"requestId": "p-1"}})
    assert await ready.before_barrier() == []
    assert calls == ["hook"]
    # Still running: its id is still in use.
    error = await ready.error_of({"id": "p-1", "method": "greet", "params": {"name": "a"}})
    assert "in progress" in error["message"]


async def test_a_finished_request_drops_its_cancel_hook(ready: Harness) -> None:
    calls: list[str] = []
    ready.protocol.cancel_hooks[5] = lambda: calls.append("hook")
    ready.send({"id": 5, "method": "greet", "params": {"name": "a"}})
    await ready.next_reply()
    ready.send({"method": "$/cancel_request", "params": {"requestId": 5}})
    assert await ready.before_barrier() == []
    assert calls == []


async def test_cancel_with_bad_params_is_ignored(ready: Harness) -> None:
    ready.send({"id": 12, "method": "hang", "params": {}})
    ready.send({"method": "$/cancel_request", "params": {"id": 12}})  # ACP wants requestId
    ready.send({"method": "$/cancelRequest", "params": {"id": [12]}})
    ready.send({"method": "$/cancelRequest", "params": {"id": 1}})  # nothing runs as 1
    assert await ready.before_barrier() == []
    ready.send({"method": "$/cancelRequest", "params": {"id": 12}})
    assert (await ready.next_reply())["error"]["code"] == ErrorCode.REQUEST_CANCELLED


async def test_internal_error_carries_no_traceback(ready: Harness) -> None:
    error = await ready.error_of({"id": 3, "method": "boom", "params": {}})
    assert error == {"code": ErrorCode.INTERNAL_ERROR, "message": "RuntimeError: handler bug"}


async def test_rpc_error_keeps_its_code_and_data(ready: Harness) -> None:
    error = await ready.error_of({"id": 4, "method": "refuse", "params": {}})
    assert error == {
        "code": ErrorCode.RESOURCE_NOT_FOUND,
        "message": "no such session",
        "data": {"id": "s1"},
    }


# -- the end of the connection --------------------------------------------------


@pytest.mark.parametrize("steps", [0, 1, 2, 5])
async def test_every_request_received_is_answered_at_the_end(ready: Harness, steps: int) -> None:
    # However far the handlers got, and whether or not pygls' done-callbacks
    # that write their answers have run yet, finishing answers them all.
    for n in range(3):
        ready.send(greet(n, f"n{n}"))
    for _ in range(steps):
        await asyncio.sleep(0)
    await ready.server.finish_requests()
    await ready.writer.close()
    assert [(await ready.next_reply())["id"] for _ in range(3)] == [0, 1, 2]


async def test_a_request_that_outlasts_the_grace_is_cancelled_and_answered_once(
    ready: Harness,
) -> None:
    ready.send({"id": 9, "method": "hang", "params": {}})
    await asyncio.wait_for(ready.hang_started.wait(), 5)
    await ready.server.finish_requests(grace=0.01)
    reply = await ready.next_reply()
    assert (reply["id"], reply["error"]["code"]) == (9, ErrorCode.REQUEST_CANCELLED)
    assert "connection closed" in reply["error"]["message"]
    # The cancelled handler's own answer does not follow.
    assert await ready.before_barrier() == []


# -- the token of a TCP listener ------------------------------------------------


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[tuple[Harness, AccessToken]]:
    with AccessToken.issued(tmp_path / "listen" / "tcp.token") as access:
        harness = Harness(access)
        yield harness, access
        await harness.server.finish_requests(grace=0)


def with_token(token: object) -> dict[str, Any]:
    return {"protocolVersion": 1, "_meta": {"parley": {"token": token}}}


async def test_the_token_file_is_private_and_holds_the_token(
    guarded: tuple[Harness, AccessToken],
) -> None:
    _, access = guarded
    assert access.file.stat().st_mode & 0o777 == 0o600
    assert access.file.parent.stat().st_mode & 0o777 == 0o700
    assert access.file.read_text().strip() == access.value
    assert len(access.value) >= 32


async def test_the_token_file_goes_when_the_listener_does(tmp_path: Path) -> None:
    with AccessToken.issued(tmp_path / "t.token") as first:
        pass
    assert not first.file.exists()
    with AccessToken.issued(tmp_path / "t.token") as second:
        assert second.value != first.value


@pytest.mark.parametrize(
    "params",
    [
        {"protocolVersion": 1},
        with_token("not-the-token"),
        with_token(12345),
        {"protocolVersion": 1, "_meta": {"parley": "token"}},
        {"protocolVersion": 1, "_meta": {"token": "x"}},
    ],
    ids=["absent", "wrong", "not-a-string", "parley-not-an-object", "outside-parley"],
)
async def test_a_listener_refuses_initialize_without_its_token(
    guarded: tuple[Harness, AccessToken], params: dict[str, Any]
) -> None:
    harness, access = guarded
    reply = await harness.initialize(params)
    assert reply["error"]["code"] == ErrorCode.AUTH_REQUIRED
    assert "_meta.parley.token" in reply["error"]["message"]
    assert str(access.file) in reply["error"]["message"]
    error = await harness.error_of({"id": 1, "method": "greet", "params": {"name": "a"}})
    assert error["code"] == ErrorCode.AUTH_REQUIRED
    assert "'greet'" in error["message"]


async def test_a_listener_admits_the_client_with_its_token(
    guarded: tuple[Harness, AccessToken],
) -> None:
    harness, access = guarded
    harness.send({"method": "note", "params": {"name": "before"}})
    assert (await harness.initialize(with_token(access.value)))["result"] == {"protocolVersion": 1}
    harness.send({"method": "note", "params": {"name": "after"}})
    harness.send(greet(1, "a"))
    assert (await harness.next_reply())["result"] == {"text": "hello a"}
    assert await asyncio.wait_for(harness.noted.get(), 5) == "after"


# -- our requests to the client ---------------------------------------------


async def send_request(harness: Harness) -> tuple[asyncio.Task[msgspec.Raw], int]:
    """Start a request to the client; return its task and the id it went out with."""
    task = asyncio.create_task(
        harness.protocol.request("session/request_permission", {"toolCallId": "c1"})
    )
    sent = await harness.next_reply()
    assert (sent["method"], sent["params"]) == ("session/request_permission", {"toolCallId": "c1"})
    return task, sent["id"]


async def test_request_to_the_client_resolves_on_its_response(ready: Harness) -> None:
    # The client's own request 1 is in flight: ids are per direction.
    ready.send({"id": 1, "method": "hang", "params": {}})
    task, msg_id = await send_request(ready)
    assert msg_id == 1
    ready.send({"id": msg_id, "result": {"outcome": {"outcome": "selected", "optionId": "allow"}}})
    result = await asyncio.wait_for(task, 1)
    assert msgspec.json.decode(result) == {"outcome": {"outcome": "selected", "optionId": "allow"}}
    # The client's request 1 was not answered by the client's response 1.
    assert await ready.before_barrier() == []
    second, second_id = await send_request(ready)
    assert second_id == 2
    second.cancel()


async def test_request_to_the_client_raises_peer_error_on_an_error_response(
    ready: Harness,
) -> None:
    task, msg_id = await send_request(ready)
    ready.send({"id": msg_id, "error": {"code": -32601, "message": "no permissions here"}})
    with pytest.raises(PeerError, match="no permissions here") as caught:
        await asyncio.wait_for(task, 1)
    assert caught.value.code == -32601


async def test_cancelled_request_to_the_client_sends_cancel_request(
    ready: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    task, msg_id = await send_request(ready)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ready.next_reply() == {
        "jsonrpc": "2.0",
        "method": "$/cancel_request",
        "params": {"requestId": msg_id},
    }
    # The client's late answer is expected, not a protocol fault; a second one is.
    with caplog.at_level(logging.WARNING, logger="parleyd.rpc.server"):
        ready.send({"id": msg_id, "result": None})
        assert caplog.records == []
        ready.send({"id": msg_id, "result": None})
        assert "unknown request id" in caplog.text
    assert await ready.before_barrier() == []


async def test_fail_pending_requests_wakes_waiters(ready: Harness) -> None:
    first, _ = await send_request(ready)
    second, _ = await send_request(ready)
    ready.protocol.fail_pending_requests("the client closed the connection")
    for task in (first, second):
        with pytest.raises(PeerError, match="closed the connection"):
            await asyncio.wait_for(task, 1)


async def test_request_without_a_connected_client_fails_at_once(ready: Harness) -> None:
    await ready.writer.close()
    with pytest.raises(PeerError, match="not connected"):
        await ready.protocol.request("session/request_permission", {})


async def test_response_to_an_unknown_id_is_ignored(
    ready: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="parleyd.rpc.server"):
        ready.send({"id": 99, "result": {}})
    assert "unknown request id 99" in caplog.text
    assert await ready.before_barrier() == []
