"""What the proxy forwards, both ways, on both paths: hop-by-hop headers dropped (the standard set
and those a `Connection` header names), X-Forwarded-For appended to (RFC 7230 / RFC 7239), and
X-Forwarded-Proto/-Host added when absent.

The first request to a replica opens a connection (the task path); the next finds it pooled (the
callback fast path): each test checks both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from podium.http.message import connection_options
from tests.gateway.conftest import FakeReplica, Harness, make_route

CHAT = {"model": "my-model", "messages": [{"role": "user", "content": "hi"}]}


async def test_hop_by_hop_dropped_and_forwarded_for_appended_on_both_paths(
    harness: Harness, replica: FakeReplica
) -> None:
    harness.gateway.set_route(make_route([replica]))
    sent = {
        "connection": "keep-alive, X-Secret",
        "x-secret": "s3cret",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "proxy-authorization": "Basic eA==",
        "x-forwarded-for": "203.0.113.7",
        "x-kept": "yes",
    }
    async with harness.client(headers=sent) as c:
        for _ in range(2):
            hits = harness.gateway.fast_hits
            assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
        assert harness.gateway.fast_hits == hits + 1  # the second one took the fast path
    host = harness.url.removeprefix("http://")
    for seen in replica.seen:
        headers = seen["headers"]
        for name in ("x-secret", "keep-alive", "te", "proxy-authorization"):
            assert name not in headers, (name, headers)
        assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
        assert headers["x-forwarded-proto"] == "http"
        assert headers["x-forwarded-host"] == host
        assert headers["x-kept"] == "yes"


async def test_connection_close_naming_a_header_and_several_forwarded_for(
    harness: Harness, replica: FakeReplica
) -> None:
    harness.gateway.set_route(make_route([replica]))
    body = b'{"model":"my-model"}'
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw.example\r\nconnection: close, x-secret\r\n"
        b"x-secret: s3cret\r\nx-forwarded-for: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n"
        b"x-forwarded-proto: https\r\nx-forwarded-host: public.example\r\ncontent-length: %d\r\n\r\n%s"
    ) % (len(body), body)
    for _ in range(2):  # a fresh upstream connection, then a pooled one
        reader, writer = await asyncio.open_connection(*harness.url.removeprefix("http://").split(":"))
        writer.write(head)
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 200")
        writer.close()
    assert harness.gateway.fast_hits >= 1
    for seen in replica.seen:
        headers = seen["headers"]
        assert "x-secret" not in headers
        assert headers["x-forwarded-for"] == "10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1"
        assert headers["x-forwarded-proto"] == "https"  # a TLS proxy in front said so: kept
        assert headers["x-forwarded-host"] == "public.example"


@pytest.fixture
async def chatty_replica() -> AsyncIterator[FakeReplica]:
    """A replica whose answers carry a header that their own `Connection` declares hop-by-hop."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.startswith(b"content-length"))
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nconnection: keep-alive, x-internal\r\nx-internal: 1\r\n"
                    b"x-public: 2\r\ncontent-length: 2\r\n\r\n{}"
                )
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield FakeReplica(port=server.sockets[0].getsockname()[1])
    finally:
        server.close()


async def test_replica_hop_by_hop_headers_do_not_reach_the_client(
    harness: Harness, chatty_replica: FakeReplica
) -> None:
    harness.gateway.set_route(make_route([chatty_replica]))
    async with harness.client() as c:
        for _ in range(2):
            hits = harness.gateway.fast_hits
            r = await c.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 200 and r.headers["x-public"] == "2"
            assert "x-internal" not in r.headers
        assert harness.gateway.fast_hits == hits + 1


def test_connection_options() -> None:
    assert connection_options(b"keep-alive") == frozenset()
    assert connection_options(b"close, X-Secret ,upgrade,, Foo") == {b"x-secret", b"foo"}


async def test_the_asgi_host_forwards_the_client_address(replica: FakeReplica) -> None:
    from podium.gateway.app import Gateway

    gateway = Gateway(wake=lambda _e: None)
    gateway.set_route(make_route([replica]))
    transport = httpx.ASGITransport(app=gateway, client=("198.51.100.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        r = await c.post("/v1/chat/completions", json=CHAT, headers={"x-forwarded-for": "10.1.1.1"})
        assert r.status_code == 200
    assert replica.seen[-1]["headers"]["x-forwarded-for"] == "10.1.1.1, 198.51.100.9"
    await gateway.aclose()
