"""The callback fast path (a free slot and a pooled connection): the same fates, same guarantees."""

from __future__ import annotations

import asyncio

import httpx

from tests.gateway.conftest import FakeReplica, Harness, eventually, make_route

CHAT = {"model": "my-model", "messages": [{"role": "user", "content": "hi"}]}


async def warm(h: Harness, replica: FakeReplica, c: httpx.AsyncClient) -> int:
    """One request so the gateway holds a pooled connection; returns fast_hits so far."""
    assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
    replica.seen.clear()
    return h.gateway.fast_hits


def in_flight(h: Harness) -> int:
    return h.gateway.stats()["ep-test"].in_flight


async def test_plain_and_streamed_answers_take_the_fast_path(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], served_model_name="served"))
    async with harness.client() as c:
        hits = await warm(harness, replica, c)
        r = await c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 200 and r.json()["echo"]["model"] == "served"
        async with c.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True, "gate": True}) as s:
            lines = s.aiter_lines()
            assert "tok0" in await asyncio.wait_for(anext(lines), 3)
            replica.gate.set()
            assert [x async for x in lines if x][-1] == "data: [DONE]"
        r = await c.put("/e/my-app/x?q=1", content=b"abc")
        assert r.json()["echo"]["path"] == "/x?q=1"
        r = await c.head("/e/my-app/x")
        assert r.status_code == 200 and r.content == b""
    assert harness.gateway.fast_hits >= hits + 3
    assert in_flight(harness) == 0


async def test_client_disconnect_on_the_fast_path_frees_the_slot(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], max_concurrency=1))
    body = {**CHAT, "stream": True, "gate": True}
    async with harness.client() as c:
        hits = await warm(harness, replica, c)
        async with c.stream("POST", "/v1/chat/completions", json=body) as s:
            await anext(s.aiter_lines())
            assert in_flight(harness) == 1
    assert harness.gateway.fast_hits == hits + 1
    await eventually(lambda: in_flight(harness) == 0 and replica.cancelled == 1)
    assert harness.gateway.replica_in_flight("rep-0") == 0


async def test_replica_dying_on_the_fast_path_cuts_the_stream(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica]))
    async with harness.client() as c:
        hits = await warm(harness, replica, c)
        got: list[str] = []
        try:
            body = {**CHAT, "stream": True, "chunks": 5, "die_after": 2}
            async with c.stream("POST", "/v1/chat/completions", json=body) as s:
                got.extend([x async for x in s.aiter_lines() if x])
        except httpx.HTTPError:
            pass
        else:
            raise AssertionError(f"stream ended cleanly: {got}")
        assert harness.gateway.fast_hits == hits + 1
        await eventually(lambda: in_flight(harness) == 0)
        assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_timeout_on_the_fast_path_is_504(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], request_timeout_s=0.3))
    async with harness.client() as c:
        hits = await warm(harness, replica, c)
        r = await c.post("/v1/chat/completions", json={**CHAT, "sleep": 3})
    assert r.status_code == 504 and harness.gateway.fast_hits == hits + 1
    assert in_flight(harness) == 0
    await eventually(lambda: replica.cancelled == 1)


async def test_pooled_connection_closed_by_the_replica_is_retried_afresh(harness: Harness) -> None:
    """A replica that closes a kept-alive connection instead of answering its next request (the
    race every keep-alive pool meets): the request is retried on a fresh connection."""
    answered: list[int] = []

    async def one_answer_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.startswith(b"content-length")))
            await reader.readexactly(length)
            answered.append(1)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # the next request on this connection: hang up
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(one_answer_per_connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stub = FakeReplica(port=port)
    harness.gateway.set_route(make_route([stub]))
    try:
        async with harness.client() as c:
            for _ in range(3):
                r = await c.post("/v1/chat/completions", json=CHAT)
                assert r.status_code == 200 and r.text == "ok"
    finally:
        server.close()
    assert len(answered) == 3
    assert harness.gateway.fast_hits >= 1  # the 2nd and 3rd requests tried a pooled connection first
    assert in_flight(harness) == 0


async def test_replica_hanging_up_mid_head_is_502_on_both_paths(harness: Harness) -> None:
    async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.startswith(b"content-length")))
                body = await reader.readexactly(length)
                if b"ok" in body:
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    await writer.drain()
                    continue
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-")
                await writer.drain()
                break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(half_answer, "127.0.0.1", 0)
    harness.gateway.set_route(make_route([FakeReplica(port=server.sockets[0].getsockname()[1])]))
    try:
        async with harness.client() as c:
            r = await c.post("/v1/chat/completions", json=CHAT)  # a new connection: the task path
            assert r.status_code == 502, r.text
            assert (await c.post("/v1/chat/completions", json={**CHAT, "ok": 1})).status_code == 200
            hits = harness.gateway.fast_hits
            r = await c.post("/v1/chat/completions", json=CHAT)  # the pooled connection: the fast path
            assert r.status_code == 502 and harness.gateway.fast_hits == hits + 1
    finally:
        server.close()
    assert in_flight(harness) == 0
