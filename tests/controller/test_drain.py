"""A drain waits for the replica's in-flight requests without asking the gateways 20 times a second."""

from __future__ import annotations

import asyncio

from tests.controller.fakes import FakeGateway
from tests.controller.test_controller import World


class AskedGateway(FakeGateway):
    asked: int = 0

    def replica_in_flight(self, replica_id: str) -> int:
        self.asked += 1
        return super().replica_in_flight(replica_id)


async def test_drain_backs_off_and_still_ends_when_in_flight_does(world: World) -> None:
    gateway = AskedGateway()
    world.controller.gateway = world.controller.replicas.gateway = gateway
    ep = await world.create()
    await world.settle(3)
    (rid,) = [r.id for r in await world.store.live_replicas(ep)]
    gateway.in_flight[rid] = 1
    await world.endpoints.delete(ep)
    await world.settle(1)
    await asyncio.sleep(1.5)  # a long request: at 50 ms polls the gateway would be asked ~30 times
    assert rid not in world.runtime.stopped
    assert gateway.asked <= 10
    gateway.in_flight[rid] = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while rid not in world.runtime.stopped and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert rid in world.runtime.stopped  # within the backoff's longest pause (1 s)
