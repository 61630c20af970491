"""Every fate a request can meet, with real sockets: the slot always comes back."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import httpx
import pytest

from tests.gateway.conftest import FakeReplica, Harness, eventually, make_route

CHAT = {"model": "my-model", "messages": [{"role": "user", "content": "hi"}]}


def in_flight(h: Harness) -> int:
    return h.gateway.stats()["ep-test"].in_flight


async def test_stream_first_chunk_arrives_before_the_replica_finishes(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica]))
    async with (
        harness.client() as c,
        c.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True, "gate": True}) as r,
    ):
        assert r.status_code == 200
        lines = r.aiter_lines()
        first = await asyncio.wait_for(anext(lines), 3)
        assert first.startswith("data: ") and "tok0" in first
        assert replica.active == 1  # the replica is still inside the request
        replica.gate.set()
        rest = [line async for line in lines if line]
    assert rest[-1] == "data: [DONE]" and len(rest) == 3
    assert in_flight(harness) == 0


async def test_client_disconnect_cancels_upstream_and_frees_the_slot(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], max_concurrency=1))
    body = {**CHAT, "stream": True, "gate": True}
    async with harness.client() as c, c.stream("POST", "/v1/chat/completions", json=body) as r:
        await anext(r.aiter_lines())
        assert in_flight(harness) == 1
        assert harness.gateway.replica_in_flight("rep-0") == 1
    # leaving the block closed the client connection mid-stream
    await eventually(lambda: in_flight(harness) == 0 and replica.cancelled == 1)
    assert harness.gateway.replica_in_flight("rep-0") == 0
    async with harness.client() as c:  # the one slot is usable again
        assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_replica_dying_mid_stream_cuts_the_stream_and_frees_the_slot(
    harness: Harness, replica: FakeReplica
) -> None:
    harness.gateway.set_route(make_route([replica]))
    body = {**CHAT, "stream": True, "chunks": 5, "die_after": 2}
    got: list[str] = []
    async with harness.client() as c:
        try:
            async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                got.extend([line async for line in r.aiter_lines() if line])
        except httpx.HTTPError:
            pass  # a cut chunked stream: the client must not see a clean end
        else:
            raise AssertionError(f"stream ended cleanly: {got}")
    assert "data: [DONE]" not in got
    await eventually(lambda: in_flight(harness) == 0)
    async with harness.client() as c:
        assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200


async def test_slow_replica_hits_the_request_timeout(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], request_timeout_s=0.3))
    async with harness.client() as c:
        t0 = time.monotonic()
        r = await c.post("/v1/chat/completions", json={**CHAT, "sleep": 5})
        elapsed = time.monotonic() - t0
    assert r.status_code == 504 and "timeout" in r.json()["error"]["message"]
    assert 0.25 < elapsed < 2
    assert in_flight(harness) == 0
    await eventually(lambda: replica.cancelled == 1)


async def test_slow_replica_within_timeout_is_served(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], request_timeout_s=3))
    async with harness.client() as c:
        r = await c.post("/v1/chat/completions", json={**CHAT, "sleep": 0.3})
    assert r.status_code == 200


async def test_queue_overflow_is_503_with_retry_after(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], max_concurrency=1, queue_size=1))
    async with harness.client() as c:
        slow = asyncio.create_task(c.post("/v1/chat/completions", json={**CHAT, "sleep": 0.5}))
        await eventually(lambda: in_flight(harness) == 1)
        queued = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))
        await eventually(lambda: harness.gateway.stats()["ep-test"].queued == 1)
        r = await c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "queue_full"
        assert harness.gateway.stats()["ep-test"].oldest_wait_s > 0
        assert (await slow).status_code == 200
        assert (await queued).status_code == 200
    assert harness.gateway.stats()["ep-test"].queued == 0 and in_flight(harness) == 0


async def test_queue_timeout_is_503(harness: Harness, replica: FakeReplica) -> None:
    harness.gateway.set_route(make_route([replica], max_concurrency=1, queue_timeout_s=0.2))
    async with harness.client() as c:
        slow = asyncio.create_task(c.post("/v1/chat/completions", json={**CHAT, "sleep": 1}))
        await eventually(lambda: in_flight(harness) == 1)
        t0 = time.monotonic()
        r = await c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 503 and "retry-after" in r.headers
        assert r.json()["error"]["code"] == "queue_timeout"
        assert 0.15 < time.monotonic() - t0 < 0.9
        assert (await slow).status_code == 200
    assert harness.gateway.stats()["ep-test"].queued == 0


async def test_cold_start_holds_then_serves_when_a_replica_is_published(harness: Harness, replica: FakeReplica) -> None:
    gw = harness.gateway
    gw.set_route(make_route([]))
    async with harness.client() as c:
        held = [asyncio.create_task(c.post("/v1/chat/completions", json=CHAT)) for _ in range(3)]
        await eventually(lambda: gw.stats()["ep-test"].queued == 3)
        assert harness.wakes == ["ep-test"]  # woken once for three requests
        await asyncio.sleep(0.2)
        assert not any(t.done() for t in held)
        t0 = time.monotonic()
        gw.set_route(make_route([replica]))
        results = await asyncio.gather(*held)
        assert time.monotonic() - t0 < 1
    assert [r.status_code for r in results] == [200, 200, 200]
    stats = gw.stats()["ep-test"]
    assert stats.queued == 0 and stats.in_flight == 0 and stats.last_request_at is not None


async def test_cold_start_timeout_is_503_and_wakes_again_later(harness: Harness) -> None:
    harness.gateway.set_route(make_route([], cold_start_timeout_s=0.2))
    async with harness.client() as c:
        r = await c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 503 and r.json()["error"]["code"] == "cold_start_timeout"
        assert "retry-after" in r.headers
        await c.post("/v1/chat/completions", json=CHAT)
    assert harness.wakes == ["ep-test", "ep-test"]


async def test_stopping_an_endpoint_fails_held_requests_with_404(harness: Harness) -> None:
    harness.gateway.set_route(make_route([]))
    async with harness.client() as c:
        held = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))
        await eventually(lambda: harness.gateway.stats()["ep-test"].queued == 1)
        harness.gateway.set_route(make_route([], enabled=False))
        r = await held
    assert r.status_code == 404 and "stopped" in r.json()["error"]["message"]


async def test_a_failed_start_answers_held_and_new_requests_at_once(harness: Harness, replica: FakeReplica) -> None:
    gw = harness.gateway
    gw.set_route(make_route([], cold_start_timeout_s=600))
    failing = make_route(
        [],
        cold_start_timeout_s=600,
        failure="its latest start failed: exited with code 127",
        failure_retry_at=time.time() + 7,
    )
    async with harness.client() as c:
        held = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))
        await eventually(lambda: gw.stats()["ep-test"].queued == 1)
        gw.set_route(failing)  # the controller publishes why no replica is coming
        r = await asyncio.wait_for(held, 2)
        t0 = time.monotonic()
        again = await c.post("/v1/chat/completions", json=CHAT)
        assert time.monotonic() - t0 < 1
        for resp in (r, again):
            assert resp.status_code == 503, resp.text
            err = resp.json()["error"]
            assert err["code"] == "endpoint_failed" and "exited with code 127" in err["message"]
            assert 5 <= int(resp.headers["retry-after"]) <= 8  # until the controller's next try
        gw.set_route(replace(failing, failure=None, failure_retry_at=None))  # a new start is under way: hold
        held = asyncio.create_task(c.post("/v1/chat/completions", json=CHAT))
        await eventually(lambda: gw.stats()["ep-test"].queued == 1)
        gw.set_route(make_route([replica]))
        assert (await asyncio.wait_for(held, 2)).status_code == 200
    assert gw.stats()["ep-test"].queued == 0


async def test_a_failed_endpoint_says_so_with_a_long_retry_after(harness: Harness) -> None:
    harness.gateway.set_route(
        make_route([], failure="failed after 5 failed starts: no such image", failure_retry_at=None)
    )
    async with harness.client() as c:
        r = await c.post("/v1/chat/completions", json=CHAT)
    assert r.status_code == 503 and r.json()["error"]["code"] == "endpoint_failed"
    assert "no such image" in r.json()["error"]["message"] and int(r.headers["retry-after"]) == 30


async def test_slots_spread_over_replicas(harness: Harness, replica: FakeReplica) -> None:
    second = FakeReplica()
    await second.start()
    try:
        route = make_route([replica, second], max_concurrency=4)
        harness.gateway.set_route(route)
        async with harness.client() as c:
            results = await asyncio.gather(
                *(c.post("/v1/chat/completions", json={**CHAT, "sleep": 0.2}) for _ in range(8))
            )
        assert all(r.status_code == 200 for r in results)
        assert len(replica.seen) == 4 and len(second.seen) == 4  # 4 slots each, all 8 at once
    finally:
        await second.stop()


async def test_draining_replica_keeps_its_count_after_leaving_the_route(harness: Harness, replica: FakeReplica) -> None:
    route = make_route([replica])
    harness.gateway.set_route(route)
    async with harness.client() as c:
        task = asyncio.create_task(c.post("/v1/chat/completions", json={**CHAT, "sleep": 0.3}))
        await eventually(lambda: harness.gateway.replica_in_flight("rep-0") == 1)
        harness.gateway.set_route(replace(route, replicas=()))
        assert harness.gateway.replica_in_flight("rep-0") == 1
        assert (await task).status_code == 200
    assert harness.gateway.replica_in_flight("rep-0") == 0


@pytest.mark.parametrize("warm", [False, True], ids=["task-path", "fast-path"])
async def test_a_slow_reader_pushes_back_on_the_replica(harness: Harness, replica: FakeReplica, warm: bool) -> None:
    """The gateway must not buffer a whole response for a client that reads slowly."""
    harness.gateway.set_route(make_route([replica]))
    async with harness.client() as c:
        if warm:
            assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
        hits = harness.gateway.fast_hits
        async with c.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True, "big_mib": 96}) as r:
            stream = r.aiter_raw()
            received = len(await anext(stream))
            await asyncio.sleep(0.5)  # the client reads nothing meanwhile
            assert replica.written < 48 * 2**20, f"replica wrote {replica.written} bytes to a stalled client"
            async for part in stream:
                received += len(part)
        assert received == 96 * 2**20
        assert harness.gateway.fast_hits == hits + (1 if warm else 0)
    assert in_flight(harness) == 0
