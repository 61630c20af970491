"""Template replicas (issue 18): a template's own start timeout (big weights take longer than the
server's 600 s to load) replaces the server's; each start says in its events whether the region's
model cache holds the weights (hit) or the replica downloads them (miss)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from podium.catalog import Catalog
from podium.controller.gpu_pool import GpuPool
from podium.controller.loop import Controller
from podium.core.specs import EndpointSpec, TemplateSource
from podium.services.endpoints import EndpointService
from podium.services.validation import SourceValidator
from podium.settings import ControllerTuning
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store
from tests.controller.fakes import Clock, FakeGateway, FakeProber, FakeRuntime

TUNING = ControllerTuning(start_timeout_s=30, drain_timeout_s=5, max_failures=3, backoff_base_s=1)
SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


OPS = """
regions:
  - name: local
    model_cache_dir: {cache}
templates:
  - model_name: {smol}
    start_timeout_s: 100
  - model_name: org/tiny
    engine: llama.cpp
    flavors:
      - name: base
        description: a hub model for cache events
        gpus: [{{gpu_type: cpu, gpu_counts: [0]}}]
"""


@pytest.fixture
async def parts(
    tmp_path: Path,
) -> AsyncIterator[tuple[Store, FakeRuntime, FakeProber, Clock, Controller, EndpointService]]:
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "slow.yaml").write_text(OPS.format(smol=SMOL, cache=tmp_path / "cache"))
    catalog = Catalog.load([ops], detect_gpus=lambda: None, cpu_count=lambda: 4)
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    runtime, prober, clock = FakeRuntime(), FakeProber(), Clock()
    controller = Controller(
        store, runtime, FakeGateway(), tuning=TUNING, catalog=catalog, clock=clock, prober=prober, gpus=GpuPool({})
    )
    endpoints = EndpointService(store, controller.hint, SourceValidator(catalog, "local"))
    try:
        yield store, runtime, prober, clock, controller, endpoints
    finally:
        await store.close()


async def test_the_template_start_timeout_replaces_the_servers(parts) -> None:
    store, runtime, prober, clock, controller, endpoints = parts
    spec = EndpointSpec(name="slow", template=TemplateSource(model_name=SMOL))
    ep = (await endpoints.create(spec, "template")).record.row.id
    prober.all_healthy = False
    await controller.tick()
    (rid,) = [r.id for r in await store.live_replicas(ep)]
    clock.now += TUNING.start_timeout_s + 1  # past the server's 30 s: a template sized 100 s keeps loading
    await controller.tick()
    assert rid not in runtime.killed and [r.id for r in await store.live_replicas(ep)] == [rid]
    clock.now += 100
    await controller.tick()
    assert rid in runtime.killed
    assert "within 100s" in ((await store.get_endpoint(ep)).last_error or "")


async def test_replica_events_say_whether_the_model_cache_has_the_weights(parts, tmp_path: Path) -> None:
    store, _, _, _, controller, endpoints = parts
    ep = await endpoints.create(EndpointSpec(name="t", template=TemplateSource(model_name="org/tiny")), "template")
    eid = ep.record.row.id
    await controller.tick()
    messages = [e.message for e in await store.events(eid) if e.kind == "model_cache"]
    assert messages and messages[0].startswith("model cache miss: org/tiny is not in")
    snapshot = tmp_path / "cache" / "hub" / "models--org--tiny" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc")
    later = await endpoints.create(EndpointSpec(name="t2", template=TemplateSource(model_name="org/tiny")), "template")
    await controller.tick()
    messages = [e.message for e in await store.events(later.record.row.id) if e.kind == "model_cache"]
    assert any(m.startswith("model cache hit: org/tiny is in") for m in messages), messages
    smol = await endpoints.create(EndpointSpec(name="s", template=TemplateSource(model_name=SMOL)), "template")
    await controller.tick()
    local = [e.message for e in await store.events(smol.record.row.id) if e.kind == "model_cache"]
    assert local == ["weights SmolLM2-135M-Instruct.Q4_1.gguf are a local path: no model cache involved"]
