"""The controller against a fake runtime, prober and gateway, over a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podium.controller.gpu_pool import GpuPool
from podium.controller.loop import Controller
from podium.core.specs import ContainerSource, EndpointSpec, Scaling
from podium.services.endpoints import EndpointService
from podium.services.validation import SourceValidator
from podium.settings import ControllerTuning
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store
from tests.controller.fakes import Clock, FakeGateway, FakeProber, FakeRuntime

TUNING = ControllerTuning(start_timeout_s=30, drain_timeout_s=5, max_failures=3, backoff_base_s=1)


@dataclass
class World:
    store: Store
    runtime: FakeRuntime
    prober: FakeProber
    gateway: FakeGateway
    clock: Clock
    controller: Controller
    endpoints: EndpointService

    async def create(self, min_replicas: int = 1, max_replicas: int | None = None, **compute: object) -> str:
        spec = EndpointSpec(
            name="ep",
            container=ContainerSource(command="server --port $PORT"),
            scaling=Scaling(min_replicas=min_replicas, max_replicas=max_replicas or max(1, min_replicas)),
            compute=compute or {},  # type: ignore[arg-type]
        )
        return (await self.endpoints.create(spec, "container")).record.row.id

    async def settle(self, ticks: int = 3) -> None:
        for _ in range(ticks):
            await self.controller.tick()
            await asyncio.sleep(0.01)  # let drain tasks run

    async def states(self, endpoint_id: str) -> list[str]:
        return sorted(r.state for r in await self.store.live_replicas(endpoint_id))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    runtime, prober, gateway, clock = FakeRuntime(), FakeProber(), FakeGateway(), Clock()
    controller = Controller(
        store, runtime, gateway, tuning=TUNING, clock=clock, prober=prober, gpus=GpuPool({"h100": [0, 1]})
    )
    endpoints = EndpointService(store, controller.hint, SourceValidator(None, "local"))
    yield World(store, runtime, prober, gateway, clock, controller, endpoints)
    await store.close()


async def test_start_probe_ready_route(world: World) -> None:
    ep = await world.create(min_replicas=2)
    world.prober.all_healthy = False
    await world.settle(1)
    assert await world.states(ep) == ["starting", "starting"]
    assert world.gateway.routes[ep].replicas == ()  # not routable before its health check passes
    launch = next(iter(world.runtime.launches.values()))
    assert launch.command == ["server", "--port", "$PORT"] and launch.env["PODIUM_ENDPOINT_ID"] == ep
    world.prober.all_healthy = True
    await world.settle(2)
    assert await world.states(ep) == ["ready", "ready"]
    assert len(world.gateway.routes[ep].replicas) == 2
    assert (await world.store.get_endpoint(ep)).state == "serving"


async def test_crash_restarts_and_gives_up_after_max_failures(world: World) -> None:
    ep = await world.create()
    world.prober.all_healthy = False
    for attempt in range(TUNING.max_failures):
        await world.settle(1)
        (rid,) = [r.id for r in await world.store.live_replicas(ep)]
        world.runtime.exit(rid)
        await world.settle(1)
        row = await world.store.get_endpoint(ep)
        assert row.consecutive_failures == attempt + 1
        assert "exited with code 1" in (row.last_error or "")
        world.clock.now += 120  # past any backoff
    await world.settle(2)
    assert await world.states(ep) == []
    assert (await world.store.get_endpoint(ep)).state == "failed"
    kinds = [e.kind for e in await world.store.events(ep)]
    assert "failed" in kinds and kinds.count("replica_failed") == TUNING.max_failures


async def test_backoff_holds_the_restart(world: World) -> None:
    ep = await world.create()
    await world.settle(1)
    (rid,) = [r.id for r in await world.store.live_replicas(ep)]
    world.prober.all_healthy = False
    world.runtime.exit(rid)
    await world.settle(2)
    assert await world.states(ep) == []  # backoff of 1 s not over: nothing started
    world.clock.now += 1.5
    await world.settle(1)
    assert await world.states(ep) == ["starting"]


async def test_start_timeout_fails_replica(world: World) -> None:
    ep = await world.create()
    world.prober.all_healthy = False
    await world.settle(1)
    (rid,) = [r.id for r in await world.store.live_replicas(ep)]
    world.clock.now += TUNING.start_timeout_s + 1
    await world.settle(1)
    assert rid in world.runtime.killed
    assert "not healthy on /health" in ((await world.store.get_endpoint(ep)).last_error or "")


async def test_delete_drains_then_removes(world: World) -> None:
    ep = await world.create()
    await world.settle(3)
    (rid,) = [r.id for r in await world.store.live_replicas(ep)]
    world.gateway.in_flight[rid] = 1
    await world.endpoints.delete(ep)
    await world.settle(2)
    assert rid not in world.runtime.stopped  # waits for the in-flight request
    assert world.gateway.routes[ep].replicas == ()  # but takes no new ones
    world.gateway.in_flight[rid] = 0
    deadline = asyncio.get_running_loop().time() + 3
    while rid not in world.runtime.stopped and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)  # the drain asks again within its backoff (at most 1 s)
    await world.settle(2)
    assert rid in world.runtime.stopped
    assert await world.store.get_endpoint(ep) is None and ep not in world.gateway.routes


async def test_gpus_assigned_without_sharing_and_capacity_event(world: World) -> None:
    ep = await world.create(min_replicas=3, gpu_type="h100", gpu_count=1)
    await world.settle(2)
    gpus = sorted(s.gpus for s in world.runtime.launches.values())
    assert gpus == [(0,), (1,)]  # two GPUs, two replicas; the third waits for capacity
    row = await world.store.get_endpoint(ep)
    assert "no free h100 GPUs" in (row.last_error or "")
    # a replica ends -> its GPU is released and the waiting replica starts on it
    rid = next(iter(world.runtime.replicas))
    freed = world.runtime.launches[rid].gpus
    world.runtime.exit(rid)
    world.clock.now += 120
    await world.settle(2)
    live_gpus = sorted(world.runtime.launches[r].gpus for r in world.runtime.replicas)
    assert freed in live_gpus and len(live_gpus) == 2


async def test_adoption_after_restart(world: World, tmp_path: Path) -> None:
    ep = await world.create()
    await world.settle(3)
    (rid,) = [r.id for r in await world.store.live_replicas(ep)]
    orphan = await world.runtime.start(
        next(iter(world.runtime.launches.values())).__class__(replica_id="rep-orphan", endpoint_id=ep, command=["x"])
    )
    # a new controller (as after kill -9 of podium up) over the same store and runtime
    fresh = Controller(world.store, world.runtime, FakeGateway(), tuning=TUNING, clock=world.clock, prober=world.prober)
    await fresh.adopt()
    assert orphan.replica_id in world.runtime.killed
    await fresh.tick()
    assert await world.states(ep) == ["ready"]
    assert [r.id for r in await world.store.live_replicas(ep)] == [rid]  # adopted, not replaced
    assert [r.replica_id for r in fresh.gateway.routes[ep].replicas] == [rid]  # type: ignore[attr-defined]


async def test_adoption_ends_a_replica_that_no_longer_answers(world: World) -> None:
    ep = await world.create()
    await world.settle(3)
    (rid,) = [r.id for r in await world.store.live_replicas(ep)]
    world.prober.all_healthy = False
    fresh = Controller(world.store, world.runtime, FakeGateway(), tuning=TUNING, clock=world.clock, prober=world.prober)
    await fresh.adopt()
    assert rid in world.runtime.killed
    await fresh.tick()
    assert [r.id for r in await world.store.live_replicas(ep)] != [rid]  # replaced by a new one


async def test_usage_is_booked_when_replicas_end(world: World) -> None:
    ep = await world.create()
    await world.settle(3)
    world.clock.now += 100
    await world.endpoints.set_enabled(ep, False)
    await world.settle(3)
    rows = await world.store.usage_rows(0)
    assert len(rows) == 1 and rows[0].endpoint_id == ep


async def test_ready_replica_that_stops_answering_is_replaced(world: World) -> None:
    ep = await world.create()
    await world.settle(3)
    (rid,) = [r.id for r in await world.store.live_replicas(ep)]
    world.prober.all_healthy = False
    for _ in range(TUNING.unhealthy_after):
        world.clock.now += TUNING.probe_interval_ready_s + 0.1
        await world.settle(1)
    await world.settle(2)
    assert rid in world.runtime.stopped  # taken out of routing, drained, stopped
    assert rid not in [r.replica_id for r in world.gateway.routes[ep].replicas]
    assert [r.state for r in await world.store.live_replicas(ep)] == ["starting"]  # its replacement
    assert "replica_unhealthy" in [e.kind for e in await world.store.events(ep)]


async def test_adopted_replicas_keep_their_gpus(world: World) -> None:
    ep = await world.create(min_replicas=2, gpu_type="h100", gpu_count=1)
    await world.settle(3)
    held = sorted(s.gpus for s in world.runtime.launches.values())
    assert held == [(0,), (1,)]
    fresh = Controller(
        world.store,
        world.runtime,
        FakeGateway(),
        tuning=TUNING,
        clock=world.clock,
        prober=world.prober,
        gpus=GpuPool({"h100": [0, 1]}),
    )
    await fresh.adopt()
    assert fresh.replicas.gpus.free("h100") == 0  # both devices still belong to the adopted replicas
    await fresh.tick()
    assert len(await world.store.live_replicas(ep)) == 2 and len(world.runtime.launches) == 2  # nothing new
