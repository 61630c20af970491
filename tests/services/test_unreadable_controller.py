"""The controller with one endpoint whose stored spec no longer parses: that endpoint becomes `failed`
with a reason (last_error and one event); every other endpoint keeps being reconciled and routed,
also after a restart (adoption included); a delete still removes the bad one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from podium.controller.loop import Controller
from podium.core.specs import ContainerSource, EndpointSpec
from podium.services.endpoints import EndpointService
from podium.services.validation import SourceValidator
from podium.settings import ControllerTuning
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store
from tests.controller.fakes import Clock, FakeGateway, FakeProber, FakeRuntime

TUNING = ControllerTuning(start_timeout_s=30, drain_timeout_s=5, max_failures=3, backoff_base_s=1)


@dataclass
class Setup:
    store: Store
    runtime: FakeRuntime
    endpoints: EndpointService

    def controller(self, gateway: FakeGateway) -> Controller:
        return Controller(self.store, self.runtime, gateway, tuning=TUNING, clock=Clock(), prober=FakeProber())

    async def create(self, name: str) -> str:
        spec = EndpointSpec(name=name, container=ContainerSource(command="server --port $PORT"))
        return (await self.endpoints.create(spec, "container")).record.row.id

    async def corrupt(self, endpoint_id: str) -> None:
        row = await self.store.get_endpoint(endpoint_id)
        doc = json.loads(row.spec_json)
        doc["scaling"]["request_timeout_s"] = None  # what `1e400` used to leave behind
        await self.store.update_endpoint(endpoint_id, spec_json=json.dumps(doc))


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    yield Setup(store, FakeRuntime(), EndpointService(store, lambda _=None: None, SourceValidator(None, "local")))
    await store.close()


async def _ticks(controller: Controller, n: int = 3) -> None:
    for _ in range(n):
        await controller.tick()
        await asyncio.sleep(0.01)  # let drain tasks run


async def test_bad_row_is_failed_and_the_others_still_route_after_restart(setup: Setup) -> None:
    gateway = FakeGateway()
    controller = setup.controller(gateway)
    good, bad = await setup.create("good"), await setup.create("bad")
    await _ticks(controller)
    assert len(gateway.routes[good].replicas) == 1 and len(gateway.routes[bad].replicas) == 1

    await setup.corrupt(bad)
    await _ticks(controller)  # no exception: the bad row is isolated
    row = await setup.store.get_endpoint(bad)
    assert row.state == "failed" and "stored spec cannot be read" in row.last_error
    assert "scaling.request_timeout_s" in row.last_error
    failed_events = [e for e in await setup.store.events(bad) if e.kind == "failed"]
    assert len(failed_events) == 1  # once, not once per tick
    assert (await setup.store.get_endpoint(good)).state == "serving"
    assert len(setup.runtime.replicas) == 2  # nothing of the bad one was stopped: its wishes are unknown

    # a restart: adoption probes both replicas, the good endpoint's route is published again
    fresh_gateway = FakeGateway()
    fresh = setup.controller(fresh_gateway)
    await fresh.adopt()
    await _ticks(fresh)
    assert len(fresh_gateway.routes[good].replicas) == 1
    assert (await setup.store.get_endpoint(good)).state == "serving"

    # a new endpoint still starts
    other = await setup.create("other")
    await _ticks(fresh)
    assert len(fresh_gateway.routes[other].replicas) == 1

    # and the bad one can still be deleted: its replicas drain, the row goes
    await setup.endpoints.delete(bad)
    for _ in range(20):
        await _ticks(fresh, 1)
        if await setup.store.get_endpoint(bad) is None:
            break
    assert await setup.store.get_endpoint(bad) is None
    assert bad not in fresh_gateway.routes
    assert len(fresh_gateway.routes[good].replicas) == 1


async def test_autoscaler_targets_skip_the_bad_row(setup: Setup) -> None:
    from podium.services.scaling import StoreScalingAdapter

    good, bad = await setup.create("good"), await setup.create("bad")
    await setup.corrupt(bad)
    targets = await StoreScalingAdapter(setup.store).scaling_targets()
    assert [t.endpoint_id for t in targets] == [good]
