"""An idle `podium up` does little per endpoint: the autoscaler's store adapter parses a spec once per
change (not every 0.25 s), and the autoscaler decides nothing for endpoints never requested at 0."""

from __future__ import annotations

from typing import Any

import pytest

import podium.autoscaler.loop as autoscaler_loop
import podium.services.scaling as scaling
from podium.autoscaler.loop import Autoscaler
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
    ep = (await world.store.list_endpoints())[0].id
    autoscaler.wake(ep)  # a first request: it scales up at once, and is decided on from then on
    for task in list(autoscaler._waking.values()):
        await task
    assert (await world.store.get_endpoint(ep)).desired_replicas == 1
    await autoscaler.tick()
    assert decided[0] == 4
