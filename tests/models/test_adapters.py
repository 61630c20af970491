"""LoRA adapters: the recipe that loads them (llama.cpp, vLLM), the route that carries their routing
keys, and real HTTP through the gateway to fake replicas (rewrite to the adapter's served name, and
affinity: an adapter's requests stay on one replica while base requests spread)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from podium.catalog import Catalog
from podium.catalog.custom import Adapter, CustomModel
from podium.controller.launch import Workload, route_of
from podium.core.specs import EndpointSpec
from podium.gateway.routes import LEAST_LOAD, PREFIX_CACHE, adapter_routing_key
from podium.gateway.routing import RouteTable
from podium.http.message import Request
from podium.models import llama_server
from podium.roles.codec import route_from_json, route_to_json
from podium.store.tables import EndpointRow
from tests.gateway.conftest import PLATFORM_TOKEN, FakeReplica, Harness, make_route
from tests.models.conftest import Api
from tests.models.ggufs import gguf_bytes
from tests.models.test_models_api import upload

BASE = CustomModel("acme/base", "gguf", "/m/base.gguf", "llama", 1000, 8192, (Adapter("acme/pirate", "/m/p.gguf"),))


def test_gguf_base_with_adapters_runs_the_multi_model_llama_server() -> None:
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    catalog.set_custom_models([BASE])
    recipe = catalog.resolve("acme/base", "base", "cpu", 0, "local")
    assert recipe.command is not None and recipe.command[1:] == ["-m", "podium.models.llama_server"]
    assert "--lora=acme/pirate=/m/p.gguf" in recipe.args and recipe.adapters == ("acme/pirate",)
    assert recipe.args[recipe.args.index("-m") + 1] == "/m/base.gguf"
    catalog.set_custom_models([replace(BASE, adapters=())])
    alone = catalog.resolve("acme/base", "long", "cpu", 0, "local")
    assert alone.command is not None and alone.command[-1] == "podium.worker.llama" and "8192" in alone.args


def test_the_multi_model_server_keeps_only_the_last_tokens_logits() -> None:
    """Else each model entry holds n_ctx rows of the vocabulary (~400 MB at 2k for SmolLM2) and a
    `logprobs` request is the server's 500; through llama_serve it is a 400 naming the field."""
    ns = llama_server.parse(["-m", "/m/base.gguf", "-a", "acme/base", "--lora", "pirate=/m/p.gguf"])
    entries = llama_server.config(ns)["models"]
    assert isinstance(entries, list) and len(entries) == 2
    assert all(e["logits_all"] is False and e["n_batch"] == 64 for e in entries)


def test_safetensors_base_with_adapters_enables_lora_on_vllm() -> None:
    catalog = Catalog.load(detect_gpus=lambda: None, cpu_count=lambda: 2)
    hf = CustomModel("acme/hf", "safetensors", "/m/hf", "LlamaForCausalLM", 16 * 10**9, None, (Adapter("a1", "/m/a1"),))
    catalog.set_custom_models([hf])
    offers = {(t.gpu_type, tuple(t.gpu_counts)) for t in catalog.templates() if t.model_name == "acme/hf"}
    assert ("h100", (1, 2, 4, 8)) in offers and all(g != "cpu" for g, _ in offers)
    recipe = catalog.resolve("acme/hf", "base", "h100", 1, "local")
    assert recipe.command is not None and recipe.command[-3:] == ["vllm", "serve", "/m/hf"]
    assert recipe.args[-3:] == ["--enable-lora", "--lora-modules", "a1=/m/a1"]


def test_route_carries_adapter_keys_across_processes() -> None:
    row = EndpointRow(id="ep-1", routing_key="base-abc12", app_name="base", auth_token_sha256=None, deleting=False)
    spec = EndpointSpec.model_validate({"name": "b", "template": {"model_name": "acme/base", "flavor_name": "base"}})
    work = Workload(None, None, 8000, {}, {}, "/v1/models", "acme/base", adapters=("acme/pirate",))
    route = route_of(row, spec, work, [])
    assert route.adapters == (("base-abc12:acme-pirate", "acme/pirate"),)
    assert route_from_json(orjson.loads(orjson.dumps(route_to_json(route)))) == route


def _request(model: str) -> Request:
    body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    return Request("POST", "/v1/chat/completions", b"/v1/chat/completions", b"", [], body)


def test_route_table_resolves_adapter_keys_and_forgets_them() -> None:
    table = RouteTable()
    route = make_route(served_model_name="acme/base", adapters=(("my-model:pirate", "acme/pirate"),))
    table.put(route)
    routed = table.resolve(_request("my-model:pirate"))
    assert routed.route is route and orjson.loads(routed.body)["model"] == "acme/pirate"
    assert routed.prefix_key is not None
    assert orjson.loads(table.resolve(_request("my-model")).body)["model"] == "acme/base"
    table.put(replace(route, adapters=()))
    assert "my-model:pirate" not in table.by_adapter


@pytest.mark.parametrize("policy", [PREFIX_CACHE, LEAST_LOAD])
async def test_adapter_requests_stick_to_one_replica_base_requests_spread(harness: Harness, policy: str) -> None:
    fakes = [FakeReplica() for _ in range(3)]
    for f in fakes:
        await f.start()
    try:
        key = adapter_routing_key("my-model", "acme/pirate")
        route = make_route(
            fakes, served_model_name="acme/base", adapters=((key, "acme/pirate"),), routing_policy=policy
        )
        harness.gateway.set_route(route)
        headers = {"Authorization": f"Bearer {PLATFORM_TOKEN}"}
        async with harness.client(headers=headers) as c:
            for i, model in enumerate([key] * 30 + ["my-model"] * 30):
                chat = [{"role": "system", "content": f"prompt {i} " * 20}, {"role": "user", "content": "hi"}]
                r = await c.post("/v1/chat/completions", json={"model": model, "messages": chat})
                assert r.status_code == 200, r.text
        by_model: dict[str, Counter[int]] = {}
        for i, f in enumerate(fakes):
            for seen in f.seen:
                by_model.setdefault(orjson.loads(seen["body"])["model"], Counter())[i] += 1
        assert set(by_model) == {"acme/pirate", "acme/base"}
        assert len(by_model["acme/pirate"]) == 1 and sum(by_model["acme/pirate"].values()) == 30
        assert len(by_model["acme/base"]) >= 2
    finally:
        for f in fakes:
            await f.stop()


async def test_adapter_upload_keys_and_delete_rules(real: Api, tmp_path: Path) -> None:
    client, store, _ = real
    assert (await upload(client, "acme/base", gguf_bytes(pad=2000))).status_code == 200
    wrong = await upload(client, "whole", gguf_bytes(), base="acme/base")
    assert wrong.status_code == 422 and "not an adapter" in wrong.text
    lora = await upload(client, "acme/pirate", gguf_bytes(kind="adapter"), base="acme/base")
    assert lora.status_code == 200 and lora.json()["kind"] == "adapter", lora.text
    names = {t["model_name"] for t in (await client.get("/v0/dedicated_endpoints/templates")).json()["templates"]}
    assert "acme/base" in names and "acme/pirate" not in names  # an adapter rides on its base
    ep = (await client.post("/v0/dedicated_endpoints", json={"name": "b", "model_name": "acme/base"})).json()
    got = (await client.get(f"/v0/models/{lora.json()['id']}")).json()
    assert got["routing_keys"] == [f"{ep['routing_key']}:acme-pirate"]
    base_id = (await client.get("/v0/models")).json()["models"][0]["id"]
    assert (await client.delete(f"/v0/models/{base_id}")).status_code == 409  # deployed
    late = await upload(client, "late", gguf_bytes(kind="adapter", pad=10), base="acme/base")
    assert late.status_code == 200, late.text  # a deployed base: its endpoint rolls instead of a 409
    revs = (await client.get(f"/v0/endpoints/{ep['endpoint_id']}/revisions")).json()["revisions"]
    assert (revs[0]["number"], revs[0]["changes"]) == (2, ["adapters (+late)"]), revs
    assert (await client.delete(f"/v0/models/{late.json()['id']}")).status_code == 200  # rolled out, then gone
    await store.delete_endpoint(ep["endpoint_id"])  # as the controller does once its replicas ended
    refused = await client.delete(f"/v0/models/{base_id}")
    assert refused.status_code == 409 and "adapters (acme/pirate)" in refused.text
    assert (await client.delete(f"/v0/models/{lora.json()['id']}")).status_code == 200
    assert (await client.delete(f"/v0/models/{base_id}")).status_code == 200
