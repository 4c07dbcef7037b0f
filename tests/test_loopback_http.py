"""The loopback HTTP server the offline model and the replay tests share."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from parleyd.offline.http import HttpRequest, HttpResponder, LoopbackHttpServer


async def echo(request: HttpRequest, responder: HttpResponder) -> None:
    await responder.start(200, {"Content-Type": "application/json", "X-Path": request.path})
    await responder.write(request.body[:3])
    await responder.write(b"")  # must not end the body early
    await responder.write(request.body[3:])


async def test_request_and_chunked_response() -> None:
    async with LoopbackHttpServer(echo) as server, httpx.AsyncClient() as client:
        assert server.url.startswith("http://127.0.0.1:")
        response = await client.post(f"{server.url}/v1/x?y=1", json={"a": [1, 2]})
    assert response.status_code == 200
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["x-path"] == "/v1/x?y=1"
    assert response.json() == {"a": [1, 2]}


async def test_each_write_is_one_chunk_on_the_wire() -> None:
    async with LoopbackHttpServer(echo) as server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", int(server.url.rsplit(":", 1)[1])
        )
        for _ in range(2):  # the second request rides the same connection
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert await reader.readuntil(b"0\r\n\r\n") == b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"
        writer.close()
        await writer.wait_closed()


async def test_handler_that_never_starts_gets_a_500() -> None:
    async def silent(request: HttpRequest, responder: HttpResponder) -> None:
        return None

    async with LoopbackHttpServer(silent) as server, httpx.AsyncClient() as client:
        response = await client.get(server.url)
    assert response.status_code == 500


async def test_handler_failure_before_start_is_a_500() -> None:
    async def broken(request: HttpRequest, responder: HttpResponder) -> None:
        raise ValueError("boom")

    async with LoopbackHttpServer(broken) as server, httpx.AsyncClient() as client:
        response = await client.get(server.url)
    assert response.status_code == 500


async def test_handler_failure_mid_response_cuts_the_connection() -> None:
    async def broken(request: HttpRequest, responder: HttpResponder) -> None:
        await responder.start(200, {})
        await responder.write(b"partial")
        raise ValueError("boom")

    async with LoopbackHttpServer(broken) as server, httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(server.url)


async def test_client_leaving_mid_response_does_not_stop_the_server() -> None:
    stopped = asyncio.Event()

    async def endless(request: HttpRequest, responder: HttpResponder) -> None:
        await responder.start(200, {})
        if request.path == "/short":
            await responder.write(b"ok")
            return
        try:
            while True:
                await responder.write(b"x" * 65536)
        finally:
            stopped.set()

    async with LoopbackHttpServer(endless) as server:
        async with httpx.AsyncClient() as client, client.stream("GET", f"{server.url}/long") as r:
            await anext(r.aiter_bytes())
        await asyncio.wait_for(stopped.wait(), timeout=5)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.url}/short")).text == "ok"


async def test_close_ends_a_stalled_handler() -> None:
    async def stall(request: HttpRequest, responder: HttpResponder) -> None:
        await responder.start(200, {})
        await responder.write(b"first")
        await asyncio.sleep(3600)

    server = LoopbackHttpServer(stall)
    await server.start()
    async with httpx.AsyncClient() as client, client.stream("GET", server.url) as response:
        await anext(response.aiter_bytes())
        await asyncio.wait_for(server.close(), timeout=5)
