"""A template's own start timeout (issue 18: big weights take longer than the server's 600 s to load)
replaces the server's for its replicas; other endpoints keep the server's."""

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


@pytest.fixture
async def parts(
    tmp_path: Path,
) -> AsyncIterator[tuple[Store, FakeRuntime, FakeProber, Clock, Controller, EndpointService]]:
    ops = tmp_path / "ops"
    ops.mkdir()
    (ops / "slow.yaml").write_text(f"templates:\n  - model_name: {SMOL}\n    start_timeout_s: 100\n")
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
