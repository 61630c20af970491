"""What the controller tells the gateway when waiting for a replica cannot help (issue 19 item 5): the
route carries the failure while the latest start failed and nothing is starting, and when the endpoint
has failed; not while a start is under way, nor after a replica that served crashed."""

from __future__ import annotations

from podium.core.states import ReplicaState
from tests.controller.test_controller import TUNING, World
from tests.controller.test_crash_loop import _ready_replica


async def _starting(world: World, ep: str) -> str:
    live = [r for r in await world.store.live_replicas(ep) if r.state == ReplicaState.STARTING]
    assert live, await world.states(ep)
    return live[0].id


async def test_a_failed_start_is_published_until_the_next_one_begins(world: World) -> None:
    world.prober.all_healthy = False  # nothing gets ready: every start fails by exiting
    ep = await world.create()
    await world.settle(1)
    assert world.gateway.routes[ep].failure is None  # the first start is under way: hold
    world.runtime.exit(await _starting(world, ep), code=127, detail="exited with code 127")
    await world.settle(1)
    route = world.gateway.routes[ep]
    assert route.failure is not None and "exited with code 127" in route.failure
    row = await world.store.get_endpoint(ep)
    assert route.failure_retry_at == row.backoff_until > world.clock.now  # the gateway's Retry-After
    world.clock.now += 0.2
    await world.settle(1)
    assert world.gateway.routes[ep] == route  # unchanged between ticks: gateways are not sent it again
    world.clock.now = row.backoff_until + 0.1
    await world.settle(1)
    assert await world.states(ep) == ["starting"] and world.gateway.routes[ep].failure is None


async def test_a_failed_endpoint_is_published_without_a_retry(world: World) -> None:
    world.prober.all_healthy = False
    ep = await world.create()
    for _ in range(TUNING.max_failures):
        await world.settle(1)
        world.runtime.exit(await _starting(world, ep), code=1, detail="no such image")
        await world.settle(1)
        world.clock.now += 120
    await world.settle(1)
    assert (await world.store.get_endpoint(ep)).state == "failed"
    route = world.gateway.routes[ep]
    assert route.failure is not None and "no such image" in route.failure and route.failure_retry_at is None


async def test_a_crash_after_serving_is_waited_out(world: World) -> None:
    ep = await world.create()
    rid = await _ready_replica(world, ep)
    world.runtime.exit(rid, code=-9, detail="killed")
    await world.settle(1)
    assert (await world.store.get_endpoint(ep)).consecutive_failures == 1
    assert world.gateway.routes[ep].replicas == () and world.gateway.routes[ep].failure is None
