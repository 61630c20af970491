"""Crash loops: a replica that passes readiness and dies on its first request, again and again,
fails the endpoint (it must not restart forever looking `serving`); a replica that stays up
clears the count. Engine templates are ready only once they complete a token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from podium.controller.observe import Observer
from podium.controller.probe import Prober, ProbeTarget
from podium.core.states import ReplicaState
from podium.runtime.base import LaunchSpec
from podium.settings import ControllerTuning
from podium.store.tables import ReplicaRow
from tests.controller.fakes import Clock, FakeProber, FakeRuntime
from tests.controller.test_controller import TUNING, World

SIGILL = "killed by signal SIGILL"


async def _ready_replica(world: World, ep: str) -> str:
    for _ in range(5):
        await world.settle(1)
        live = [r for r in await world.store.live_replicas(ep) if r.state == ReplicaState.READY]
        if live:
            return live[0].id
        world.clock.now += 120  # past any restart backoff
    raise AssertionError("no replica became ready")


async def test_replica_dying_on_first_request_is_a_crash_loop(world: World) -> None:
    ep = await world.create()
    for attempt in range(TUNING.max_failures):
        rid = await _ready_replica(world, ep)
        assert (await world.store.get_endpoint(ep)).state == "serving"
        world.runtime.exit(rid, code=-4, detail=SIGILL)  # its first request killed it
        await world.settle(1)
        assert (await world.store.get_endpoint(ep)).consecutive_failures == attempt + 1
        world.clock.now += 120
    await world.settle(2)
    row = await world.store.get_endpoint(ep)
    assert row.state == "failed"
    assert SIGILL in (row.last_error or "")
    assert world.gateway.routes[ep].replicas == ()
    messages = [e.message for e in await world.store.events(ep) if e.kind == "failed"]
    assert messages and "crash loop" in messages[0] and SIGILL in messages[0]


async def test_a_replica_that_stays_up_clears_the_crash_count(world: World) -> None:
    ep = await world.create()
    rid = await _ready_replica(world, ep)
    world.runtime.exit(rid, code=-4, detail=SIGILL)
    await world.settle(1)
    world.clock.now += 120
    await _ready_replica(world, ep)
    assert (await world.store.get_endpoint(ep)).consecutive_failures == 1  # ready is not yet stable
    world.clock.now += TUNING.stable_after_s + TUNING.probe_interval_ready_s
    await world.settle(1)
    assert (await world.store.get_endpoint(ep)).consecutive_failures == 0


# --- readiness by generation: the observer with a real prober against real HTTP servers ---


@asynccontextmanager
async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _engine(generates: bool) -> web.Application:
    """An engine that lists its model; its first completion either works or kills the connection
    (what a SIGILL in the engine looks like from outside)."""

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m"}]})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read())
        if not generates:
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError
        return web.json_response({"choices": [{"text": "!"}], "model": body["model"]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/completions", completions)
    return app


async def test_prober_generates_only_when_the_engine_completes() -> None:
    prober = Prober(timeout_s=2, generate_timeout_s=5)
    try:
        async with _serve(_engine(True)) as good:
            assert await prober.healthy(good, "/v1/models")
            assert await prober.generates(good, "m")
        async with _serve(_engine(False)) as bad:
            assert await prober.healthy(bad, "/v1/models")  # lists its model...
            assert not await prober.generates(bad, "m")  # ...but cannot generate
    finally:
        await prober.close()


async def test_engine_template_is_ready_only_after_a_completion(world: World) -> None:
    ready: list[str] = []

    async def on_ready(r: ReplicaRow, took: float) -> None:
        ready.append(r.id)

    async def on_failed(r: ReplicaRow, reason: str, crash: bool) -> None:
        raise AssertionError(reason)

    runtime, prober, clock = FakeRuntime(), FakeProber(all_generate=False), Clock()
    observer = Observer(world.store, runtime, ControllerTuning(), clock, on_ready, on_failed, prober)
    ep = await world.create(min_replicas=0)
    obs = await runtime.start(LaunchSpec(replica_id="r-gen", endpoint_id=ep, command=["x"]))
    await world.store.add_replica(
        ReplicaRow(
            id=obs.replica_id, endpoint_id=ep, generation=1, state=ReplicaState.STARTING, backend="fake",
            gpus="", detail="", created_at=clock(), address=obs.address, started_at=clock(),
        )
    )  # fmt: skip
    target = {ep: ProbeTarget("/v1/models", generate_model="m")}
    for _ in range(5):
        await observer.observe(await world.store.live_replicas(ep), target)
        await asyncio.sleep(0)
    assert ready == [] and prober.generated and prober.generated[0][1] == "m"
    prober.all_generate = True
    for _ in range(5):
        await observer.observe(await world.store.live_replicas(ep), target)
        await asyncio.sleep(0)
    assert ready == [obs.replica_id]
    await observer.close()
