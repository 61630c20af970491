"""An adapter registered on (or deleted from) a deployed base rolls in as a new revision instead of a
409: the controller (fake runtime, prober and gateway over a real SQLite store and the real catalog)
rolls the base's endpoint surge-first to replicas started with the new adapter set, the base key keeps
its replicas throughout, and the adapter's key joins the route only once no older replica serves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from podium.catalog import Catalog
from podium.controller.loop import Controller
from podium.core.specs import EndpointSpec
from podium.gateway.routes import adapter_routing_key
from podium.gateway.routing import RouteTable
from podium.http.message import Request
from podium.models.files import ModelFiles
from podium.models.service import ModelService, NewUpload
from podium.models.wiring import deployments_of, roll_base
from podium.services.endpoints import EndpointService
from podium.services.validation import SourceValidator
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store
from tests.controller.fakes import Clock, FakeGateway, FakeProber, FakeRuntime
from tests.controller.test_controller import TUNING
from tests.models.ggufs import gguf_bytes


async def _upload(svc: ModelService, name: str, data: bytes, base: str | None = None) -> str:
    row = await svc.create_upload(NewUpload(name, len(data), base=base))
    done = await svc.write_chunk(row.id, 0, data)
    assert done.status == "ready"
    return done.id


def _has_lora(runtime: FakeRuntime, replica_id: str) -> bool:
    return any(a.startswith("--lora=acme/pirate=") for a in runtime.launches[replica_id].command or [])


async def test_adapter_on_a_deployed_base_rolls_in_then_routes_and_rolls_out_on_delete(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    runtime, prober, gateway, clock = FakeRuntime(name="local"), FakeProber(), FakeGateway(), Clock()
    ctl = Controller(store, runtime, gateway, tuning=TUNING, catalog=catalog, clock=clock, prober=prober)
    endpoints = EndpointService(store, ctl.hint, SourceValidator(catalog, "local"))

    async def deployments(name: str) -> list[tuple[str, str]]:
        return await deployments_of(store, name)

    async def no_volume(name: str) -> str:
        raise AssertionError(name)

    async def roll(base: str, change: str) -> list[str]:
        return await roll_base(store, ctl.hint, base, change)

    svc = ModelService(store, ModelFiles(tmp_path / "models"), deployments, no_volume, catalog.set_custom_models,
                       roll=roll)  # fmt: skip

    async def tick() -> None:
        await ctl.tick()
        route = gateway.routes[ep]
        assert len(route.replicas) >= 2  # surge first: the base key never loses a replica
        now = await store.get_endpoint(ep)
        if now is not None and {r.revision for r in route.replicas} != {now.generation}:
            assert key not in dict(route.adapters)  # old replicas lack it: not routed yet

    try:
        await _upload(svc, "acme/base", gguf_bytes(pad=2000))
        spec = {"name": "b", "template": {"model_name": "acme/base"}, "scaling": {"min_replicas": 2, "max_replicas": 2}}
        ep = (await endpoints.create(EndpointSpec.model_validate(spec), "dedicated")).record.row.id
        row = await store.get_endpoint(ep)
        assert row is not None
        key = adapter_routing_key(row.routing_key, "acme/pirate")
        for _ in range(6):
            await ctl.tick()
        old = {r.id for r in await store.live_replicas(ep) if r.state == "ready"}
        assert len(old) == 2 and not any(_has_lora(runtime, r) for r in old)

        prober.all_healthy = False  # the surge replica boots but is not ready yet
        prober.healthy_addresses = {r.address or "" for r in await store.live_replicas(ep)}
        lora = await _upload(svc, "acme/pirate", gguf_bytes(kind="adapter"), base="acme/base")  # no 409
        revs = await store.revisions.of(ep)
        assert [(r.number, r.changes) for r in revs] == [(1, "created"), (2, "adapters (+acme/pirate)")]
        for _ in range(3):
            await tick()
        new = [r for r in await store.live_replicas(ep) if r.generation == 2]
        assert len(new) == 1, new
        assert _has_lora(runtime, new[0].id), runtime.launches[new[0].id].command
        assert key not in {k for k, _ in gateway.routes[ep].adapters}

        prober.all_healthy = True
        for _ in range(40):
            await tick()
            live = await store.live_replicas(ep)
            if {r.generation for r in live} == {2} and len(live) == 2 and key in dict(gateway.routes[ep].adapters):
                break
        live = await store.live_replicas(ep)
        assert {r.generation for r in live} == {2} and all(_has_lora(runtime, r.id) for r in live)
        table = RouteTable()
        table.put(gateway.routes[ep])
        body = orjson.dumps({"model": key, "messages": [{"role": "user", "content": "hi"}]})
        routed = table.resolve(Request("POST", "/v1/chat/completions", b"/v1/chat/completions", b"", [], body))
        assert orjson.loads(routed.body)["model"] == "acme/pirate"

        path = Path((await svc.get(lora)).path)
        assert (await svc.delete(lora)).name == "acme/pirate"  # in use: rolled out, not refused
        assert not await asyncio.to_thread(path.exists)
        assert [m.name for m in await svc.list()] == ["acme/base"]
        assert (await store.revisions.get(ep, 3)).changes == "adapters (-acme/pirate)"  # type: ignore[union-attr]
        await tick()
        assert gateway.routes[ep].adapters == ()  # its key leaves the route at once
        for _ in range(40):
            await tick()
            if {r.generation for r in await store.live_replicas(ep)} == {3}:
                break
        assert not any(_has_lora(runtime, r.id) for r in await store.live_replicas(ep))
    finally:
        await store.close()
