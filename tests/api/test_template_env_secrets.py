"""Template endpoints take `env_secrets` through /v0/endpoints (issue 18: gated models need HF_TOKEN),
validated like a container's; the secret's value never appears in any answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from podium.catalog import Catalog
from podium.controller.launch import CONTAINER_MODEL_CACHE, launch_spec, workload_of
from podium.core.specs import stored_spec
from podium.runtime.base import VolumeBind
from podium.services.control_plane import build_control_plane
from podium.settings import Settings
from podium.store.repos import Store
from tests.api.conftest import Hints, _client

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
TOKEN = "hf_secret_value_never_shown"


@pytest.fixture
async def real(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Hints]]:
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    async for x in _client(tmp_path, catalog):
        yield x


async def test_template_env_secrets_are_checked_stored_and_never_echoed(real) -> None:
    client, _, _ = real
    body = {"name": "gated", "template": {"model_name": SMOL, "env_secrets": {"HF_TOKEN": "hf-token"}}}
    missing = await client.post("/v0/endpoints", json=body)
    assert missing.status_code == 422, missing.text
    assert missing.json()["error"]["message"].startswith("template.env_secrets.HF_TOKEN")
    bad_key = {**body, "template": {"model_name": SMOL, "env_secrets": {"bad key": "hf-token"}}}
    assert (await client.post("/v0/endpoints", json=bad_key)).status_code == 422
    made = await client.post("/v0/secrets", json={"name": "hf-token", "payload": {"HF_TOKEN": TOKEN}})
    assert made.status_code == 201 and TOKEN not in made.text
    ok = await client.post("/v0/endpoints", json=body)
    assert ok.status_code == 201, ok.text
    ep = ok.json()
    assert ep["spec"]["template"]["env_secrets"] == {"HF_TOKEN": "hf-token"}
    answers = [ok.text]
    for path in (
        f"/v0/endpoints/{ep['id']}",
        "/v0/endpoints",
        f"/v0/endpoints/{ep['id']}/events",
        "/v0/secrets/hf-token",
    ):
        answers.append((await client.get(path)).text)
    assert all(TOKEN not in a for a in answers)
    in_use = await client.delete("/v0/secrets/hf-token")
    assert in_use.status_code == 409 and ep["id"] in in_use.json()["error"]["message"]


OPERATOR_FILE = """
template_env_secrets: {HF_TOKEN: hf-token, EXTRA: other}
regions:
  - name: local
    model_cache_dir: {cache}
    template_env_secrets: {EXTRA: region-extra}
templates:
  - model_name: HuggingFaceTB/SmolLM2-135M-Instruct
    start_timeout_s: 1800
"""


async def test_region_and_catalog_defaults_reach_the_replica_with_the_cache(tmp_path: Path) -> None:
    """What the controller hands the runtime: the catalog's and region's env secrets resolved, the
    endpoint's own winning; in containers the region's model cache bound at HF_HOME; the template's
    own start timeout."""
    ops = tmp_path / "ops"
    ops.mkdir()
    cache = tmp_path / "models"
    (ops / "region.yaml").write_text(OPERATOR_FILE.replace("{cache}", str(cache)))
    catalog = Catalog.load([ops], detect_gpus=lambda: None, cpu_count=lambda: 2)
    async for client, store, _ in _client(tmp_path, catalog):
        for name, payload in (("hf-token", {"HF_TOKEN": TOKEN}), ("region-extra", {"EXTRA": "from-region"})):
            assert (await client.post("/v0/secrets", json={"name": name, "payload": payload})).status_code == 201
        await client.post("/v0/secrets", json={"name": "mine", "payload": {"EXTRA": "from-endpoint"}})
        plain = (await client.post("/v0/endpoints", json={"name": "a", "template": {"model_name": SMOL}})).json()
        own = {"model_name": SMOL, "env_secrets": {"EXTRA": "mine"}}
        mine = (await client.post("/v0/endpoints", json={"name": "b", "template": own})).json()
        plane = build_control_plane(Settings(data_dir=tmp_path), store, catalog)
        launches = {}
        for ep, container in ((plain, False), (plain, True), (mine, False)):
            row = await store.get_endpoint(ep["id"])
            spec = stored_spec(row.spec_json)
            work = workload_of(spec, row.routing_key, catalog)
            assert work.start_timeout_s == 1800
            launches[(ep["id"], container)] = await launch_spec(
                replica_id="r", row=row, spec=spec, work=work, gpus=(), refs=plane, container_runtime=container
            )
        local, in_container = launches[(plain["id"], False)], launches[(plain["id"], True)]
        assert local.env["HF_TOKEN"] == TOKEN and local.env["EXTRA"] == "from-region"
        assert local.env["HF_HOME"] == str(cache) and local.volumes == ()
        assert launches[(mine["id"], False)].env["EXTRA"] == "from-endpoint"
        assert in_container.env["HF_HOME"] == CONTAINER_MODEL_CACHE
        assert in_container.volumes == (VolumeBind(str(cache), CONTAINER_MODEL_CACHE, False),)
        assert TOKEN not in (await client.get(f"/v0/endpoints/{plain['id']}")).text
