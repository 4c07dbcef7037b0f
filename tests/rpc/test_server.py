"""The JSON-RPC engine in-process: dispatch, errors, cancellation both ways, and
the pygls internals server.py relies on (see its module docstring)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from parley_protocol.jsonrpc import ErrorCode
from parleyd.rpc.framing import FramingError
from parleyd.rpc.server import PeerError, RpcError, RpcServer
from parleyd.rpc.transport import FrameWriter
from tests.rpc.fakes import CollectingSink


class Greet(msgspec.Struct):
    name: str
    times: int = 1


class Harness:
    """An RpcServer wired to a collecting sink, with a handful of handlers."""

    def __init__(self) -> None:
        self.server = RpcServer()
        self.protocol = self.server.protocol
        self.sink = CollectingSink()
        self.writer = FrameWriter(self.sink)
        self.protocol.frame_writer = self.writer
        self.notes: list[str] = []
        self.hang_started = asyncio.Event()
        self._seen = 0
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
            self.notes.append(params.name)

    def send(self, message: dict[str, Any]) -> None:
        self.protocol.receive(msgspec.json.encode({"jsonrpc": "2.0", **message}))

    async def initialize(self) -> None:
        self.send({"id": 0, "method": "initialize", "params": {"protocolVersion": 1}})
        assert (await self.replies())[0]["result"] == {"protocolVersion": 1}

    async def replies(self) -> list[dict[str, Any]]:
        """Everything written since the last call, once scheduled handlers have run."""
        await settle()
        self.writer.flush()
        lines = bytes(self.sink.data).splitlines()
        new, self._seen = lines[self._seen :], len(lines)
        return [msgspec.json.decode(line) for line in new]

    async def error_of(self, message: dict[str, Any]) -> dict[str, Any]:
        self.send(message)
        [reply] = await self.replies()
        assert reply["id"] == message.get("id")
        error: dict[str, Any] = reply["error"]
        return error


async def settle() -> None:
    # Handlers run as tasks, and their answers go out from done-callbacks.
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
async def rpc() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    for future in list(harness.protocol._request_futures.values()):
        future.cancel()
    await settle()


@pytest.fixture
async def ready(rpc: Harness) -> Harness:
    await rpc.initialize()
    return rpc


async def test_responses_carry_the_request_id(ready: Harness) -> None:
    ready.send({"id": 7, "method": "greet", "params": {"name": "ada", "times": 2}})
    ready.send({"id": "req-x", "method": "greet", "params": {"name": "bob"}})
    assert await ready.replies() == [
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
    assert (await rpc.replies())[0]["result"] == {"text": "hello a"}


@pytest.mark.parametrize(
    "frame",
    [b'{"jsonrpc": "2.0", "id": 1, "method":', b"\xff\xfe", FramingError("too big")],
    ids=["truncated", "not-utf8", "framing-error"],
)
async def test_unparsable_frames_get_a_parse_error_with_null_id(
    ready: Harness, frame: bytes | FramingError
) -> None:
    ready.protocol.receive(frame)
    [reply] = await ready.replies()
    assert reply["id"] is None
    assert reply["error"]["code"] == ErrorCode.PARSE_ERROR


async def test_wrong_jsonrpc_version_is_an_invalid_request(ready: Harness) -> None:
    ready.protocol.receive(b'{"jsonrpc": "1.0", "id": 4, "method": "greet"}')
    [reply] = await ready.replies()
    assert (reply["id"], reply["error"]["code"]) == (4, ErrorCode.INVALID_REQUEST)


async def test_async_notification_handlers_leave_no_request_futures(ready: Harness) -> None:
    ready.send({"method": "note", "params": {"name": "n1"}})
    ready.send({"method": "note", "params": {"name": 42}})  # bad params: dropped
    ready.send({"method": "unknown/note", "params": {}})
    assert await ready.replies() == []  # notifications are never answered
    assert ready.notes == ["n1"]
    assert ready.protocol._request_futures == {}
    assert ready.protocol._notification_tasks == set()


@pytest.mark.parametrize(
    ("method", "key"),
    [("$/cancelRequest", "id"), ("$/cancel_request", "requestId")],
    ids=["lsp", "acp"],
)
async def test_cancel_notification_cancels_a_running_request(
    ready: Harness, method: str, key: str
) -> None:
    ready.send({"id": 11, "method": "hang", "params": {}})
    await settle()
    assert ready.hang_started.is_set()
    ready.send({"method": method, "params": {key: 11}})
    [reply] = await ready.replies()
    assert reply["id"] == 11
    assert reply["error"]["code"] == ErrorCode.REQUEST_CANCELLED
    assert ready.protocol._request_futures == {}


async def test_a_cancel_hook_replaces_cancelling(ready: Harness) -> None:
    calls: list[str] = []
    ready.protocol.cancel_hooks["p-1"] = lambda: calls.append("hook")
    ready.send({"id": "p-1", "method": "hang", "params": {}})
    await settle()
    ready.send({"method": "$/cancel_request", "params": {"requestId": "p-1"}})
    assert await ready.replies() == []
    assert calls == ["hook"]
    assert not ready.protocol._request_futures["p-1"].done()


async def test_a_finished_request_drops_its_cancel_hook(ready: Harness) -> None:
    ready.protocol.cancel_hooks[5] = lambda: None
    ready.send({"id": 5, "method": "greet", "params": {"name": "a"}})
    await ready.replies()
    assert 5 not in ready.protocol.cancel_hooks


async def test_cancel_with_bad_params_is_ignored(ready: Harness) -> None:
    ready.send({"id": 12, "method": "hang", "params": {}})
    ready.send({"method": "$/cancel_request", "params": {"id": 12}})  # ACP wants requestId
    ready.send({"method": "$/cancelRequest", "params": {"id": [12]}})
    assert await ready.replies() == []
    assert not ready.protocol._request_futures[12].done()


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


# -- our requests to the client ---------------------------------------------


async def send_request(harness: Harness) -> tuple[asyncio.Task[msgspec.Raw], int]:
    """Start a request to the client; return its task and the id it went out with."""
    task = asyncio.create_task(
        harness.protocol.request("session/request_permission", {"toolCallId": "c1"})
    )
    [sent] = await harness.replies()
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
    assert not ready.protocol._request_futures[1].done()
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


async def test_cancelled_request_to_the_client_sends_cancel_request(ready: Harness) -> None:
    task, msg_id = await send_request(ready)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ready.replies() == [
        {"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": msg_id}}
    ]
    # The client's late answer is expected, not an error, and not kept around.
    ready.send({"id": msg_id, "result": None})
    assert await ready.replies() == []
    assert ready.protocol._abandoned == set()
    assert ready.protocol._outgoing == {}


async def test_fail_pending_requests_wakes_waiters(ready: Harness) -> None:
    first, _ = await send_request(ready)
    second, _ = await send_request(ready)
    ready.protocol.fail_pending_requests("the client closed the connection")
    for task in (first, second):
        with pytest.raises(PeerError, match="closed the connection"):
            await asyncio.wait_for(task, 1)
    assert ready.protocol._outgoing == {}


async def test_request_without_a_connected_client_fails_at_once(ready: Harness) -> None:
    ready.writer.close()
    with pytest.raises(PeerError, match="not connected"):
        await ready.protocol.request("session/request_permission", {})


async def test_response_to_an_unknown_id_is_ignored(ready: Harness) -> None:
    ready.send({"id": 99, "result": {}})
    assert await ready.replies() == []
