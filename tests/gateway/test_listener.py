"""The built-in listener as a host for the control plane's FastAPI app, and raw HTTP/1.1 details."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from podium.gateway.app import Gateway
from podium.gateway.server import serve
from tests.conftest import free_port
from tests.gateway.conftest import FakeReplica, make_route


def control_plane() -> FastAPI:
    app = FastAPI()

    @app.post("/v0/echo")
    async def echo(request: Request) -> dict[str, object]:
        body = await request.body()
        return {"len": len(body), "query": request.url.query, "path": request.url.path}

    @app.get("/v0/stream")
    async def stream() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"part{i}\n".encode()
                await asyncio.sleep(0.01)

        return StreamingResponse(parts(), media_type="text/plain")

    @app.get("/v0/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


@pytest.fixture(params=["fast", "uvicorn"])
async def served(request: pytest.FixtureRequest, replica: FakeReplica) -> AsyncIterator[str]:
    gateway = Gateway(wake=lambda _e: None)
    gateway.set_route(make_route([replica]))
    port = free_port()
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve(
            gateway,
            control_plane(),
            "127.0.0.1",
            port,
            started=started,
            should_exit=stop,
            listener=request.param,
        )
    )
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await gateway.aclose()


async def test_fallback_gets_bodies_queries_and_streams(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as c:
        big = b"x" * 300_000
        r = await c.post("/v0/echo?a=1&b=%20", content=big)
        assert r.json() == {"len": 300_000, "query": "a=1&b=%20", "path": "/v0/echo"}
        async with c.stream("GET", "/v0/stream") as s:
            assert [line async for line in s.aiter_lines()] == ["part0", "part1", "part2"]
        assert (await c.get("/v0/missing")).status_code == 404
        # and the gateway on the same port and connection
        r = await c.post("/v1/chat/completions", json={"model": "my-model", "messages": []})
        assert r.status_code == 200


async def test_fallback_error_is_500_and_the_listener_lives_on(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as c:
        assert (await c.get("/v0/boom")).status_code == 500
        assert (await c.get("/v0/stream")).status_code == 200


async def raw_exchange(url: str, data: bytes, until: bytes = b"", timeout: float = 3) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    got = b""
    try:
        async with asyncio.timeout(timeout):
            while chunk := await reader.read(65536):
                got += chunk
                if until and got.count(until) >= 1 and got.endswith(until):
                    break
    finally:
        writer.close()
    return got


async def test_pipelined_requests_are_answered_in_order(served: str) -> None:
    one = b'{"model":"my-model","n":1}'
    req = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(one), one)
    last = b"GET /v0/missing HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    got = await raw_exchange(served, req * 3 + last)
    assert got.count(b"HTTP/1.1 200") == 3 and got.count(b"HTTP/1.1 404") == 1
    assert got.rindex(b"HTTP/1.1 200") < got.index(b"HTTP/1.1 404")


async def test_http10_and_malformed_requests(served: str) -> None:
    got = await raw_exchange(served, b"GET /v1/models HTTP/1.0\r\n\r\n")
    assert got.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) and b'"object":"list"' in got
    got = await raw_exchange(served, b"NOT HTTP AT ALL\r\n\r\n")
    assert b" 400 " in got.split(b"\r\n", 1)[0]


async def test_shutdown_cuts_a_held_stream_after_the_grace_and_frees_its_slot(replica: FakeReplica) -> None:
    gateway = Gateway(wake=lambda _e: None)
    gateway.set_route(make_route([replica]))
    port = free_port()
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve(gateway, control_plane(), "127.0.0.1", port, started=started, should_exit=stop, graceful_timeout_s=0.3)
    )
    await asyncio.wait_for(started.wait(), 10)
    body = {"model": "my-model", "stream": True, "gate": True}
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url) as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = r.aiter_lines()
        await anext(lines)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        stop.set()
        await asyncio.wait_for(task, 5)  # serve returns: idle connections closed, busy ones cut
        assert loop.time() - t0 < 2
        with pytest.raises(httpx.HTTPError):
            async for _ in lines:
                pass
    for _ in range(100):
        if gateway.stats()["ep-test"].in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert gateway.stats()["ep-test"].in_flight == 0
    await gateway.aclose()
