"""One region's runtime unreachable pauses only that region's endpoints (issue 12, issue 19 item 2).

Two fake backends behind the real RegionalBackend: `local` always answers, `west` raises
RuntimeUnavailable while `down`. The controller runs its real loop over a real SQLite store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from podium.controller.gpu_pool import GpuPool
from podium.controller.loop import Controller
from podium.core.specs import ContainerSource, EndpointSpec, Scaling
from podium.core.states import ReplicaState
from podium.runtime.base import LaunchSpec, ReplicaObservation, RuntimeUnavailable
from podium.runtime.regional import RegionalBackend
from podium.services.endpoints import EndpointService
from podium.services.validation import SourceValidator
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store
from tests.controller.fakes import Clock, FakeGateway, FakeProber, FakeRuntime
from tests.controller.test_controller import TUNING

WEST_DOWN = "docker engine at unix:///nowhere.sock cannot be reached"


class DownableRuntime(FakeRuntime):
    """A region's engine that can be switched off: every call raises RuntimeUnavailable meanwhile."""

    down: bool = False

    def _check(self) -> None:
        if self.down:
            raise RuntimeUnavailable(WEST_DOWN)

    async def start(self, spec: LaunchSpec) -> ReplicaObservation:
        self._check()
        return await super().start(spec)

    async def poll(self, replica_id: str) -> ReplicaObservation:
        self._check()
        return await super().poll(replica_id)

    async def stop(self, replica_id: str, grace_s: float = 10.0) -> None:
        self._check()
        await super().stop(replica_id, grace_s)

    async def kill(self, replica_id: str) -> None:
        self._check()
        await super().kill(replica_id)

    async def list(self) -> list[ReplicaObservation]:
        self._check()
        return await super().list()

    async def close(self) -> None:
        """Like the docker and Ray backends: stops only what this process started or adopted (nothing,
        for a region down since start-up), so an engine that is down has nothing to be asked."""
        if not self.down:
            await super().close()


@dataclass
class Regions:
    store: Store
    local: FakeRuntime
    west: DownableRuntime
    clock: Clock
    endpoints: EndpointService

    def controller(self) -> Controller:
        runtime = RegionalBackend({"local": self.local, "west": self.west}, "local")
        return Controller(
            self.store, runtime, FakeGateway(), tuning=TUNING, clock=self.clock, prober=FakeProber(), gpus=GpuPool({})
        )

    async def create(self, name: str, region: str) -> str:
        spec = EndpointSpec(
            name=name,
            container=ContainerSource(command="server --port $PORT"),
            scaling=Scaling(min_replicas=1, max_replicas=1),
            compute={"region": region},  # type: ignore[arg-type]
        )
        return (await self.endpoints.create(spec, "container")).record.row.id

    async def ready(self, endpoint_id: str) -> list[str]:
        return [r.id for r in await self.store.live_replicas(endpoint_id) if r.state == ReplicaState.READY]

    async def kinds(self, endpoint_id: str) -> list[str]:
        return [e.kind for e in await self.store.events(endpoint_id)]

    async def until(self, what: str, cond: Callable[[], Awaitable[bool]]) -> None:
        """Poll with a deadline; the fake clock moves on meanwhile (backoffs and rechecks pass)."""
        deadline = time.monotonic() + 5.0
        while not await cond():
            assert time.monotonic() < deadline, f"never: {what}"
            self.clock.now += 1.0
            await asyncio.sleep(0.02)


@pytest.fixture
async def regions(tmp_path: Path) -> AsyncIterator[Regions]:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    endpoints = EndpointService(store, lambda *_: None, SourceValidator(None, "local"))
    yield Regions(store, FakeRuntime(), DownableRuntime(), Clock(), endpoints)
    await store.close()


async def running(controller: Controller) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(controller.run(stop))


async def halt(controller: Controller, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    controller.hint()  # end the wait between ticks now
    await asyncio.wait_for(task, 5.0)


async def test_a_region_going_down_leaves_the_other_starting_and_replacing(regions: Regions) -> None:
    local_ep, west_ep = await regions.create("here", "local"), await regions.create("there", "west")
    controller = regions.controller()
    stop, task = await running(controller)
    try:
        await regions.until("both regions serve", lambda: _all_ready(regions, local_ep, west_ep))
        (west_rid,) = await regions.ready(west_ep)
        regions.west.down = True
        await regions.until("west's endpoint shows its engine", lambda: _error_is(regions, west_ep, WEST_DOWN))
        assert "runtime_unavailable" in await regions.kinds(west_ep)
        (crashed,) = await regions.ready(local_ep)
        regions.local.exit(crashed)
        controller.hint()
        await regions.until("local replaced", lambda: _replaced(regions, local_ep, crashed))
        assert (await regions.store.get_endpoint(local_ep)).last_error != WEST_DOWN  # type: ignore[union-attr]
        assert "runtime_unavailable" not in await regions.kinds(local_ep)
        assert await regions.ready(west_ep) == [west_rid]  # not counted as lost while unseen
        regions.west.down = False
        await regions.until("west recovers", lambda: _error_is(regions, west_ep, None))
        assert "runtime_available" in await regions.kinds(west_ep)
        assert await regions.ready(west_ep) == [west_rid]
        assert (await regions.kinds(west_ep)).count("runtime_unavailable") == 1  # once per outage
    finally:
        await halt(controller, stop, task)


async def test_a_region_down_at_start_up_is_adopted_when_it_returns(regions: Regions) -> None:
    local_ep, west_ep = await regions.create("here", "local"), await regions.create("there", "west")
    first = regions.controller()
    stop, task = await running(first)
    await regions.until("both regions serve", lambda: _all_ready(regions, local_ep, west_ep))
    await halt(first, stop, task)  # an abrupt restart: replicas and their rows stay
    (west_rid,) = await regions.ready(west_ep)
    (local_rid,) = await regions.ready(local_ep)
    regions.west.down = True
    second = regions.controller()
    stop, task = await running(second)
    try:
        await regions.until("west's endpoint shows its engine", lambda: _error_is(regions, west_ep, WEST_DOWN))
        assert "replica_adopted" in await regions.kinds(local_ep)  # the reachable region at once
        regions.local.exit(local_rid)
        second.hint()
        await regions.until("local replaced", lambda: _replaced(regions, local_ep, local_rid))
        assert await regions.ready(west_ep) == [west_rid]  # neither lost nor adopted yet
        assert "replica_adopted" not in await regions.kinds(west_ep)
        regions.west.down = False
        await regions.until("west adopted", lambda: _has(regions, west_ep, "replica_adopted"))
        await regions.until("west recovers", lambda: _error_is(regions, west_ep, None))
        assert await regions.ready(west_ep) == [west_rid]
    finally:
        await halt(second, stop, task)


async def test_every_region_down_then_one_back_serves_it_and_keeps_the_other_waiting(regions: Regions) -> None:
    """The whole runtime down (no region answers), then the local region back: its endpoint starts,
    while the west one keeps its error without a spurious runtime_available in between."""
    local = DownableRuntime()
    local.down = regions.west.down = True
    regions.local = local
    local_ep, west_ep = await regions.create("here", "local"), await regions.create("there", "west")
    controller = regions.controller()
    stop, task = await running(controller)
    try:
        await regions.until("both show the outage", lambda: _errors_are(regions, WEST_DOWN, local_ep, west_ep))
        local.down = False
        await regions.until("local serves", lambda: _all_ready(regions, local_ep))
        await regions.until("local's error cleared", lambda: _error_is(regions, local_ep, None))
        assert "runtime_available" in await regions.kinds(local_ep)
        assert WEST_DOWN in ((await regions.store.get_endpoint(west_ep)).last_error or "")  # type: ignore[union-attr]
        assert "runtime_available" not in await regions.kinds(west_ep)
        assert not await regions.store.live_replicas(west_ep)
    finally:
        await halt(controller, stop, task)


async def test_shutdown_leaves_a_never_adopted_region_as_it_is(regions: Regions) -> None:
    """The reachable region's replicas stop as usual; the never adopted one's stay, rows and all."""
    local_ep, west_ep = await regions.create("here", "local"), await regions.create("there", "west")
    first = regions.controller()
    stop, task = await running(first)
    await regions.until("both serve", lambda: _all_ready(regions, local_ep, west_ep))
    await halt(first, stop, task)
    (west_rid,) = await regions.ready(west_ep)
    regions.west.down = True
    second = regions.controller()
    stop, task = await running(second)
    await regions.until("west's endpoint shows its engine", lambda: _error_is(regions, west_ep, WEST_DOWN))
    await halt(second, stop, task)
    await second.shutdown()
    assert await regions.ready(west_ep) == [west_rid]  # its row stays live for the next start to adopt
    assert west_rid in regions.west.replicas
    assert not regions.local.replicas and not await regions.store.live_replicas(local_ep)


async def _all_ready(regions: Regions, *endpoint_ids: str) -> bool:
    return all([await regions.ready(e) for e in endpoint_ids])


async def _replaced(regions: Regions, endpoint_id: str, old: str) -> bool:
    ready = await regions.ready(endpoint_id)
    return bool(ready) and old not in ready


async def _error_is(regions: Regions, endpoint_id: str, error: str | None) -> bool:
    row = await regions.store.get_endpoint(endpoint_id)
    return row is not None and (row.last_error == error if error is None else error in (row.last_error or ""))


async def _has(regions: Regions, endpoint_id: str, kind: str) -> bool:
    return kind in await regions.kinds(endpoint_id)


async def _errors_are(regions: Regions, error: str, *endpoint_ids: str) -> bool:
    return all([await _error_is(regions, e, error) for e in endpoint_ids])
