"""A controller that loses its leader lease stops acting without stopping anything (issue 12 item 5):
starts in flight are cancelled, nothing is stopped or killed, the rows stay for the next leader."""

from __future__ import annotations

import asyncio

from podium.runtime.base import LaunchSpec, ReplicaObservation
from tests.controller.test_controller import World


async def test_abandon_cancels_a_start_in_flight_and_stops_nothing(world: World) -> None:
    entered = asyncio.Event()

    async def hanging_start(spec: LaunchSpec) -> ReplicaObservation:
        entered.set()
        await asyncio.Event().wait()  # a start that takes as long as it likes (Ray waiting for room)
        raise AssertionError("unreachable")

    world.runtime.start = hanging_start  # type: ignore[method-assign]
    ep = await world.create(min_replicas=1)
    await world.controller.tick()
    await asyncio.wait_for(entered.wait(), 5)
    starting = list(world.controller.replicas._starting.values())
    assert starting and not starting[0].done()
    await world.controller.replicas.abandon()
    assert starting[0].cancelled()
    assert world.runtime.stopped == [] and world.runtime.killed == []
    assert await world.states(ep) == ["pending"]  # left as it is: the next leader's adoption decides
