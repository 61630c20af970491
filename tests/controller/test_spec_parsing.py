"""Along the write path a spec is parsed once per place that needs it: the answer to a write uses the
spec in hand, and the controller parses a stored spec once per change of its JSON."""

from __future__ import annotations

from typing import Any

import pytest

import podium.controller.loop as controller_loop
import podium.services.endpoints as endpoints_module
from tests.controller.test_controller import World


async def test_a_write_parses_the_stored_spec_once_and_the_controller_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ep = await world.create(min_replicas=0)
    await world.settle(1)
    service_parses, controller_parses = [0], [0]
    real_service, real_controller = endpoints_module.stored_spec, controller_loop.stored_spec

    def in_service(text: str) -> Any:
        service_parses[0] += 1
        return real_service(text)

    def in_controller(text: str) -> Any:
        controller_parses[0] += 1
        return real_controller(text)

    monkeypatch.setattr(endpoints_module, "stored_spec", in_service)
    monkeypatch.setattr(controller_loop, "stored_spec", in_controller)
    record = await world.endpoints.set_enabled(ep, False)
    assert not record.spec.enabled and record.row.state == "stopped"
    assert service_parses[0] == 1  # the current spec, read before the write; not the one just written
    await world.settle(3)
    assert controller_parses[0] == 1  # once for the new JSON, not once per tick
    record = await world.endpoints.delete(ep)
    assert record.row.deleting and service_parses[0] == 2
