"""The balancer and queue logic on its own: reserve/release pairs, FIFO, never negative."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import pytest

from podium.gateway.balancer import EndpointPool, Lease
from podium.gateway.errors import GatewayError
from podium.gateway.routes import EndpointRoute, ReplicaRoute


def route(n_replicas: int = 2, **kw: object) -> EndpointRoute:
    base = EndpointRoute(
        endpoint_id="ep-1",
        routing_key="m",
        app_name="a",
        served_model_name=None,
        enabled=True,
        auth_token_sha256=None,
        max_concurrency=2,
        queue_size=3,
        queue_timeout_s=5,
        cold_start_timeout_s=5,
        request_timeout_s=5,
        replicas=tuple(ReplicaRoute(f"r{i}", f"127.0.0.1:{9000 + i}") for i in range(n_replicas)),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def make_pool(r: EndpointRoute, wakes: list[str] | None = None, seed: int = 1) -> tuple[EndpointPool, dict[str, int]]:
    shared: dict[str, int] = {}
    sink = wakes if wakes is not None else []
    pool = EndpointPool(r, replica_counts=shared, wake=sink.append, clock=lambda: 0.0, rng=random.Random(seed))
    return pool, shared


def test_slots_per_replica_and_release_is_idempotent() -> None:
    pool, shared = make_pool(route(2))
    leases = [pool.try_reserve() for _ in range(4)]
    assert all(leases) and pool.try_reserve() is None
    assert shared == {"r0": 2, "r1": 2} and pool.in_flight == 4
    for lease in leases:
        assert lease is not None
        lease.release()
        lease.release()  # a second release changes nothing
    assert shared == {} and pool.in_flight == 0


def test_least_loaded_of_two_is_chosen() -> None:
    pool, shared = make_pool(route(2, max_concurrency=100))
    held = [pool.try_reserve() for _ in range(50)]
    assert abs(shared["r0"] - shared["r1"]) <= 1  # two replicas: p2c is exact least-loaded
    for lease in held:
        assert lease is not None
        lease.release()


def test_exclude_skips_replicas() -> None:
    pool, _ = make_pool(route(2))
    lease = pool.try_reserve(exclude={"r0"})
    assert lease is not None and lease.replica.replica_id == "r1"
    assert pool.try_reserve(exclude={"r0", "r1"}) is None


async def test_queue_is_fifo_and_bounded() -> None:
    pool, _ = make_pool(route(1, max_concurrency=1, queue_size=2))
    first = await pool.acquire()
    order: list[int] = []

    async def wait(i: int) -> Lease:
        lease = await pool.acquire()
        order.append(i)
        return lease

    waiters = [asyncio.create_task(wait(i)) for i in range(2)]
    await asyncio.sleep(0)
    assert pool.queued == 2
    with pytest.raises(GatewayError) as info:
        await pool.acquire()
    assert info.value.status == 503 and info.value.retry_after
    first.release()
    second = await waiters[0]
    second.release()
    third = await waiters[1]
    third.release()
    assert order == [0, 1] and pool.in_flight == 0 and pool.queued == 0


async def test_cancelled_waiter_leaves_no_trace() -> None:
    pool, shared = make_pool(route(1, max_concurrency=1))
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    assert pool.queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.queued == 0
    held.release()
    assert pool.in_flight == 0 and shared == {}


async def test_waiter_cancelled_right_after_being_handed_a_slot_gives_it_back() -> None:
    pool, shared = make_pool(route(1, max_concurrency=1))
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    held.release()  # hands the slot to the waiter...
    waiter.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.in_flight == 0 and shared == {}


async def test_hold_wakes_once_and_proceeds_when_a_replica_appears() -> None:
    wakes: list[str] = []
    pool, _ = make_pool(route(0), wakes)
    held = [asyncio.create_task(pool.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert wakes == ["ep-1"] and pool.queued == 3
    pool.update(route(1, max_concurrency=2))
    done, pending = await asyncio.wait(held, timeout=0.2)
    assert len(done) == 2 and len(pending) == 1  # two slots; the third waits for one
    for task in done:
        task.result().release()
    (await pending.pop()).release()
    assert pool.in_flight == 0 and pool.queued == 0


async def test_queue_timeout_and_cold_start_timeout() -> None:
    pool, _ = make_pool(route(0, cold_start_timeout_s=0.05))
    with pytest.raises(GatewayError) as info:
        await pool.acquire()
    assert info.value.code == "cold_start_timeout" and pool.queued == 0
    pool.update(route(1, max_concurrency=1, queue_timeout_s=0.05))
    held = await pool.acquire()
    with pytest.raises(GatewayError) as info:
        await pool.acquire()
    assert info.value.code == "queue_timeout"
    held.release()
    assert pool.in_flight == 0 and pool.queued == 0


async def test_random_fates_never_leak_or_go_negative() -> None:
    rng = random.Random(7)
    pool, shared = make_pool(route(3, max_concurrency=2, queue_size=50, queue_timeout_s=0.05))
    lowest = [0]

    async def request() -> None:
        try:
            lease = await pool.acquire()
        except GatewayError:
            return
        try:
            lowest[0] = min(lowest[0], pool.in_flight, *shared.values())
            await asyncio.sleep(rng.random() * 0.01)
            if rng.random() < 0.2:
                raise RuntimeError("replica failed")
        finally:
            lease.release()

    tasks = [asyncio.create_task(request()) for _ in range(300)]
    await asyncio.sleep(0.01)
    for task in rng.sample(tasks, 60):
        task.cancel()  # clients going away, queued or in flight
        if rng.random() < 0.3:
            pool.update(route(rng.randint(0, 3), max_concurrency=2, queue_size=50, queue_timeout_s=0.05))
    pool.update(route(3, max_concurrency=2, queue_size=50, queue_timeout_s=0.05))
    await asyncio.gather(*tasks, return_exceptions=True)
    assert pool.in_flight == 0 and pool.queued == 0 and shared == {} and lowest[0] >= 0


async def test_deadlines_expire_what_is_left_and_only_that() -> None:
    from podium.gateway.deadlines import Deadlines

    class Item:
        def __init__(self) -> None:
            self.expired = 0

        def timed_out(self) -> None:
            self.expired += 1

    deadlines = Deadlines(clock=asyncio.get_running_loop().time)
    late, early, finished = Item(), Item(), Item()
    late_key = deadlines.add(late, 0.25)
    deadlines.add(early, 0.05)
    key = deadlines.add(finished, 0.05)
    deadlines.remove(finished, key)
    await asyncio.sleep(0.2)
    assert (early.expired, finished.expired, late.expired) == (1, 0, 0)
    await asyncio.sleep(0.25)
    assert late.expired == 1
    deadlines.remove(late, late_key)  # after expiry: a no-op
    deadlines.close()
