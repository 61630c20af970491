"""The tick's cost does not grow with the number of endpoints: constant SQL statements per tick, and
a route is handed to the gateway only when it changed (real SQLite store, fake runtime and gateway)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from podium.core.specs import ContainerSource, EndpointSpec, Scaling
from podium.gateway.routes import EndpointRoute
from tests.controller.fakes import FakeGateway
from tests.controller.test_controller import World


class CountingGateway(FakeGateway):
    published: int = 0

    def set_route(self, route: EndpointRoute) -> None:
        self.published += 1
        super().set_route(route)


async def _add(world: World, count: int, min_replicas: int) -> None:
    for i in range(count):
        spec = EndpointSpec(
            name=f"ep{i}",
            container=ContainerSource(command="server --port $PORT"),
            scaling=Scaling(min_replicas=min_replicas, max_replicas=1),
        )
        await world.endpoints.create(spec, "container")


async def _statements_per_tick(world: World) -> int:
    count = [0]

    def seen(*_: Any) -> None:
        count[0] += 1

    event.listen(world.store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await world.controller.tick()
    finally:
        event.remove(world.store.engine.sync_engine, "before_cursor_execute", seen)
    return count[0]


async def test_statements_per_tick_do_not_grow_with_endpoints(world: World) -> None:
    await _add(world, 1, min_replicas=1)
    await world.settle(3)
    one = await _statements_per_tick(world)
    await _add(world, 20, min_replicas=1)
    await world.settle(3)
    assert len(world.gateway.routes) == 21 and all(r.replicas for r in world.gateway.routes.values())
    assert await _statements_per_tick(world) == one


async def test_unchanged_routes_are_not_republished(world: World) -> None:
    gateway = CountingGateway()
    world.controller.gateway = world.controller.replicas.gateway = gateway
    await _add(world, 3, min_replicas=1)
    await world.settle(3)
    assert len(gateway.routes) == 3 and all(r.replicas for r in gateway.routes.values())
    before = gateway.published
    await world.settle(3)
    assert gateway.published == before  # nothing changed: nothing handed out again
    ep = next(iter(gateway.routes))
    await world.endpoints.set_enabled(ep, False)
    await world.settle(2)
    assert gateway.published > before and not gateway.routes[ep].enabled
