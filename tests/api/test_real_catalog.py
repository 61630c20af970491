"""The control plane over the shipped catalog (no GPUs here, 2 CPU slots): the documented shapes and
the reservation numbers a user of this machine would see."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from podium.catalog import Catalog
from podium.store.repos import Store
from tests.api.conftest import Hints, _client

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture
async def real(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Hints]]:
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    async for x in _client(tmp_path, catalog):
        yield x


async def test_templates_regions_platforms(real) -> None:
    client, _, _ = real
    templates = (await client.get("/v0/dedicated_endpoints/templates")).json()["templates"]
    assert all({"model_name", "flavor_name", "gpu_type", "gpu_counts", "regions"} <= set(t) for t in templates)
    assert any(t["gpu_type"] == "cpu" and "local" in t["regions"] for t in templates)
    assert any(t["gpu_type"] in ("h100", "h200") for t in templates)
    region = (await client.get("/v0/regions")).json()["regions"][0]
    assert region["name"] == "local" and region["inventory"] == {"cpu": 2}
    platforms = (await client.get("/v0/platforms")).json()["platforms"]
    assert any(p["name"] == "gpu-h100-sxm" and p["presets"] for p in platforms)
    described = (await client.get(f"/v0/templates/{SMOL}")).json()
    assert described["model_name"] == SMOL and described["flavors"][0]["gpus"][0]["gpu_type"] == "cpu"
    assert (await client.get("/v0/templates/no/such-model")).status_code == 404


async def test_dedicated_on_this_machine(real) -> None:
    client, store, _ = real
    smol = await client.post("/v0/dedicated_endpoints", json={"name": "smol", "model_name": SMOL})
    assert smol.status_code == 201, smol.text
    assert (smol.json()["gpu_type"], smol.json()["gpu_count"]) == ("cpu", 0) and smol.json()["routing_key"]
    gpu = {"name": "big", "model_name": "openai/gpt-oss-20b", "gpu_type": "h100", "gpu_count": 1}
    refused = await client.post("/v0/dedicated_endpoints", json=gpu)
    assert refused.status_code == 409 and "capacity 0" in refused.json()["error"]["message"]
    # a GPU type the region has none of is refused even with min 0 (no replica could ever start),
    # with the region's inventory in the message, instead of a first request that times out
    lazy = await client.post("/v0/dedicated_endpoints", json={**gpu, "scaling": {"min_replicas": 0}})
    assert lazy.status_code == 409, lazy.text
    assert "no GPUs, cpu slots 2" in lazy.json()["error"]["message"]
    # the documents' platform name is the same GPU type: the same 409, never an unknown-value 422
    named = await client.post("/v0/dedicated_endpoints", json={**gpu, "gpu_type": "gpu-h100-sxm"})
    assert named.status_code == 409 and "capacity 0" in named.json()["error"]["message"], named.text
    wrong = await client.post("/v0/dedicated_endpoints", json={**gpu, "gpu_count": 3})
    assert wrong.status_code == 422 and wrong.json()["error"]["message"].startswith("gpu_count")
    via_general = await client.post(
        "/v0/endpoints", json={"name": "g", "template": {"model_name": SMOL, "flavor_name": "nope"}}
    )
    assert via_general.status_code == 422
    assert via_general.json()["error"]["message"].startswith("template.flavor_name")
    assert len(await store.list_endpoints()) == 1
