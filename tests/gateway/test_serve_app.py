"""`http.server.serve_app`: a control-plane-only process (roles api, controller) on the built-in
listener, so its head limits hold there too (uvicorn's protocol has none)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from podium.http.server import serve_app
from tests.conftest import free_port
from tests.gateway.test_http_limits import LIMITS, exchange, status
from tests.gateway.test_listener import control_plane


@pytest.fixture
async def app_addr() -> AsyncIterator[tuple[str, int]]:
    port = free_port()
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_app(control_plane(), "127.0.0.1", port, should_exit=stop, started=started, limits=LIMITS)
    )
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield "127.0.0.1", port
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def test_the_app_is_served_bodies_and_streams(app_addr: tuple[str, int]) -> None:
    async with httpx.AsyncClient(base_url=f"http://{app_addr[0]}:{app_addr[1]}", timeout=5) as c:
        r = await c.post("/v0/echo?a=1", content=b"abc")
        assert r.json() == {"len": 3, "query": "a=1", "path": "/v0/echo"}
        assert (await c.get("/v0/stream")).text == "part0\npart1\npart2\n"
        assert (await c.get("/v0/boom")).status_code == 500


async def test_its_head_and_body_limits_hold(app_addr: tuple[str, int]) -> None:
    big = b"GET /v0/stream HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (LIMITS.max_head_bytes + 10) + b"\r\n\r\n"
    assert status(await exchange(app_addr, big)) == 431
    body = b"POST /v0/echo HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (LIMITS.max_body_bytes + 1)
    assert status(await exchange(app_addr, body)) == 413


async def test_a_slow_head_is_cut_with_408(app_addr: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*app_addr)
    try:
        writer.write(b"GET /v0/stream HTTP/1.1\r\nx-slow: ")
        got = b""
        async with asyncio.timeout(5):
            while not got.endswith(b"}"):  # a byte every 50 ms keeps the connection active, not its head
                writer.write(b"z")
                with contextlib.suppress(TimeoutError):
                    got += await asyncio.wait_for(reader.read(65536), 0.05)
        assert status(got) == 408
    finally:
        writer.close()
