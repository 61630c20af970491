"""An idle `podium up` does little per endpoint: the autoscaler's store adapter parses a spec once per
change (not every 0.25 s), and the autoscaler decides nothing for endpoints never requested at 0."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

import podium.autoscaler.loop as autoscaler_loop
import podium.services.scaling as scaling
from podium.autoscaler.loop import QUIET_INTERVAL_S, Autoscaler
from podium.services.scaling import StoreScalingAdapter
from tests.controller.test_controller import World


async def _stats() -> dict[str, Any]:
    return {}


async def test_idle_endpoints_cost_no_parse_and_no_decision(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(3):
        await world.create(min_replicas=0)
    parsed, decided = [0], [0]
    real_parse, real_decide = scaling.stored_spec, autoscaler_loop.decide

    def counting_parse(text: str) -> Any:
        parsed[0] += 1
        return real_parse(text)

    def counting_decide(*args: Any, **kwargs: Any) -> Any:
        decided[0] += 1
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(scaling, "stored_spec", counting_parse)
    monkeypatch.setattr(autoscaler_loop, "decide", counting_decide)
    autoscaler = Autoscaler(StoreScalingAdapter(world.store), [_stats], on_change=lambda: None)
    await autoscaler.tick()
    assert parsed[0] == 3 and decided[0] == 3  # the first look decides each one (at 0)
    for _ in range(5):
        await autoscaler.tick()
    assert parsed[0] == 3  # specs unchanged: not parsed again
    assert decided[0] == 3  # never requested, at 0: nothing to decide
    assert autoscaler.quiet  # so it ticks at QUIET_INTERVAL_S, not every 0.25 s
    ep = (await world.store.list_endpoints())[0].id
    autoscaler.wake(ep)  # a first request: it scales up at once, and is decided on from then on
    for task in list(autoscaler._waking.values()):
        await task
    assert (await world.store.get_endpoint(ep)).desired_replicas == 1
    await autoscaler.tick()
    assert decided[0] == 4 and not autoscaler.quiet


async def test_an_idle_controller_tick_reads_endpoints_and_replicas_once(world: World) -> None:
    for _ in range(3):
        await world.create(min_replicas=0)
    await world.settle(2)
    statements = [0]

    def seen(*_: Any) -> None:
        statements[0] += 1

    event.listen(world.store.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await world.controller.tick()
    finally:
        event.remove(world.store.engine.sync_engine, "before_cursor_execute", seen)
    assert statements[0] == 2  # nothing live to observe: no second read


async def test_a_wake_up_ends_a_quiet_pause(world: World) -> None:
    ep = await world.create(min_replicas=0)
    autoscaler = Autoscaler(StoreScalingAdapter(world.store), [_stats], on_change=lambda: None)
    ticks = [0]
    real_tick = autoscaler.tick

    async def counting_tick() -> None:
        ticks[0] += 1
        await real_tick()

    autoscaler.tick = counting_tick  # type: ignore[method-assign]
    stop = asyncio.Event()
    running = asyncio.create_task(autoscaler.run(stop))
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + 3
        while not (autoscaler.quiet and ticks[0] >= 2) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert autoscaler.quiet
        before, woken_at = ticks[0], loop.time()
        autoscaler.wake(ep)
        while ticks[0] == before and loop.time() < woken_at + 2:
            await asyncio.sleep(0.01)
        assert loop.time() - woken_at < QUIET_INTERVAL_S / 2  # not the rest of the 1 s quiet pause
    finally:
        stop.set()
        await running
