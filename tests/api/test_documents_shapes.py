"""The documents' own shapes over the shipped catalog plus an operator's regions: platform names as
GPU types, regions listed in 422s, one `error.details` shape, GPU types a region lacks refused at
create, the CUDA version constraint, and the app name that defaults to the endpoint's name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.catalog import Catalog
from podium.core.specs import ScalePolicy
from podium.services.scaling import StoreScalingAdapter
from podium.store.repos import Store
from tests.api.conftest import Hints, _client

OPERATOR_REGIONS = """
regions:
  - name: eu-north1
    inventory: {gpus: {h100: 4}, cpu_slots: 4, cuda_version: "12.4"}
  - name: eu-west1
    inventory: {gpus: {}, cpu_slots: 2}
  - name: us-central1
    inventory: {gpus: {l40s: 1}, cpu_slots: 2}
"""
GPT = "openai/gpt-oss-20b"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture
async def ops(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Hints]]:
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "regions.yaml").write_text(OPERATOR_REGIONS)
    catalog = Catalog.load([tmp_path / "catalog"], detect_gpus=lambda: None, cpu_count=lambda: 2)
    (tmp_path / "data").mkdir()
    async for x in _client(tmp_path / "data", catalog):
        yield x


def _doc(**changes: Any) -> dict[str, Any]:
    """The dedicated-endpoints document's create payload, verbatim unless changed."""
    payload = {
        "name": "GPT-20B Endpoint",
        "description": "Dedicated GPT-20B for internal apps",
        "model_name": GPT,
        "flavor_name": "base",
        "gpu_type": "gpu-h100-sxm",
        "gpu_count": 1,
        "region": "eu-north1",
        "scaling": {"min_replicas": 1, "max_replicas": 2},
    }
    return {**payload, **changes}


async def test_platform_names_are_gpu_types_everywhere(ops) -> None:
    client, _, _ = ops
    templates = (await client.get("/v0/dedicated_endpoints/templates")).json()["templates"]
    h100 = next(t for t in templates if t["model_name"] == GPT and t["gpu_type"] == "h100")
    assert "gpu-h100-sxm" in h100["platforms"] and "eu-north1" in h100["regions"]
    l40s = next(t for t in templates if t["model_name"] == LLAMA and t["gpu_type"] == "l40s")
    assert {"gpu-l40s", "gpu-l40s-a"} <= set(l40s["platforms"])
    created = await client.post("/v0/dedicated_endpoints", json=_doc())
    assert created.status_code == 201, created.text
    assert created.json()["gpu_type"] == "h100"
    eid = created.json()["endpoint_id"]
    patched = await client.patch(f"/v0/dedicated_endpoints/{eid}", json={"gpu_type": "gpu-h200-sxm"})
    assert patched.status_code == 409 and "h200" in patched.json()["error"]["message"]  # known name, no GPUs
    general = {
        "name": "llama",
        "template": {"model_name": LLAMA},
        "compute": {"region": "us-central1", "gpu_type": "gpu-l40s-a", "gpu_count": 1},
        "scaling": {"min_replicas": 0, "max_replicas": 1},
    }
    made = await client.post("/v0/endpoints", json=general)
    assert made.status_code == 201, made.text
    assert made.json()["spec"]["compute"]["gpu_type"] == "l40s"
    by_platform = {**general, "name": "llama2", "compute": {"region": "us-central1", "platform": "gpu-l40s-a"}}
    made = await client.post("/v0/endpoints", json=by_platform)
    assert made.status_code == 201, made.text
    assert made.json()["spec"]["compute"]["gpu_type"] == "l40s"


async def test_verbatim_payload_without_the_gpu_is_a_capacity_409(ops) -> None:
    client, store, _ = ops
    for region in ("eu-west1", "us-central1"):  # no H100 there
        refused = await client.post("/v0/dedicated_endpoints", json=_doc(region=region))
        assert refused.status_code == 409, refused.text
        assert "capacity 0" in refused.json()["error"]["message"]
    # even with min 0 (no replica could ever start): refused, with the region's inventory
    lazy = await client.post("/v0/dedicated_endpoints", json=_doc(region="us-central1", scaling={"min_replicas": 0}))
    assert lazy.status_code == 409
    assert "l40s x1, cpu slots 2" in lazy.json()["error"]["message"]
    assert lazy.json()["error"]["details"][0]["inventory"] == {"l40s": 1, "cpu": 2}
    assert await store.list_endpoints() == []


async def test_unknown_region_lists_the_valid_ones(ops) -> None:
    client, _, _ = ops
    for path, body in (
        ("/v0/dedicated_endpoints", _doc(region="mars-1")),
        ("/v0/endpoints", {"name": "x", "container": {"command": "true"}, "compute": {"region": "mars-1"}}),
    ):
        r = await client.post(path, json=body)
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert "mars-1" in message and "eu-north1, eu-west1, local, us-central1" in message


async def test_error_details_have_one_shape(ops) -> None:
    client, _, _ = ops
    answers = [
        await client.post("/v0/dedicated_endpoints", json=_doc(region="eu-west1")),  # 409
        await client.post("/v0/dedicated_endpoints", json=_doc(gpu_count=3)),  # 422 from the catalog
        await client.post("/v0/dedicated_endpoints", json=_doc(scaling={"min_replicas": 3, "max_replicas": 1})),
        await client.post("/v0/endpoints", json={"name": "x", "bogus": 1}),  # 422 from the request model
        await client.get("/v0/endpoints/ep-nope"),  # 404
        await client.get("/v0/endpoints", headers={"Authorization": "Bearer wrong"}),  # 401
        await client.get("/v0/no-such-path"),  # 404 from the router
    ]
    assert [a.status_code for a in answers] == [409, 422, 422, 422, 404, 401, 404]
    for a in answers:
        details = a.json()["error"]["details"]
        assert isinstance(details, list) and all(isinstance(d, dict) and d["message"] for d in details), a.text
    capacity = answers[0].json()["error"]["details"][0]
    assert capacity["field"] == "compute.gpu_type" and capacity["message"]
    for a in answers:  # no Python in what users read
        text = a.text
        assert "Value error" not in text and "None" not in text and "ScalePolicyKind" not in text, text
    assert "max_replicas must be >= min_replicas" in answers[2].json()["error"]["message"]


async def test_min_cuda_version(ops) -> None:
    client, _, _ = ops

    def spec(name: str, region: str, cuda: str, gpu_type: str = "h100") -> dict[str, Any]:
        return {
            "name": name,
            "container": {"command": "python3 -m http.server $PORT"},
            "compute": {"region": region, "gpu_type": gpu_type, "gpu_count": 1, "min_cuda_version": cuda},
            "scaling": {"min_replicas": 0, "max_replicas": 1},
        }

    ok = await client.post("/v0/endpoints", json=spec("new-enough", "eu-north1", "12.4"))
    assert ok.status_code == 201, ok.text
    assert ok.json()["spec"]["compute"]["min_cuda_version"] == "12.4"
    too_new = await client.post("/v0/endpoints", json=spec("too-new", "eu-north1", "12.10"))
    assert too_new.status_code == 409 and "runs CUDA 12.4" in too_new.json()["error"]["message"]
    unknown = await client.post("/v0/endpoints", json=spec("no-driver", "us-central1", "11.8", "l40s"))
    assert unknown.status_code == 409 and "no CUDA version" in unknown.json()["error"]["message"]
    cpu = await client.post("/v0/endpoints", json=spec("cpu", "eu-north1", "12.0", "cpu"))
    assert cpu.status_code == 422 and cpu.json()["error"]["message"].startswith("compute.min_cuda_version")
    bad = await client.post("/v0/endpoints", json=spec("bad", "eu-north1", "twelve"))
    assert bad.status_code == 422
    # a PATCH that raises the constraint is checked too
    eid = ok.json()["id"]
    raised = await client.patch(f"/v0/endpoints/{eid}", json={"compute": {"min_cuda_version": "13.0"}})
    assert raised.status_code == 409


async def test_app_name_defaults_to_the_name_when_free(ops) -> None:
    client, _, _ = ops

    async def create(name: str, **extra: Any) -> dict[str, Any]:
        r = await client.post("/v0/endpoints", json={"name": name, "container": {"command": "true"}, **extra})
        assert r.status_code == 201, r.text
        return dict(r.json())

    assert (await create("my-chatbot"))["app_name"] == "my-chatbot"
    second = await create("my-chatbot")  # taken: the slug with a suffix
    assert second["app_name"].startswith("my-chatbot-") and second["app_name"] != "my-chatbot"
    spaced = await create("My Chatbot")  # not a valid app name: its slug with a suffix
    assert spaced["app_name"].startswith("my-chatbot-")
    given = await create("other", app_name="chosen")
    assert given["app_name"] == "chosen"
    assert (await create("chosen"))["app_name"] != "chosen"


async def test_without_gpu_type_a_gpu_the_region_has_is_chosen(ops) -> None:
    client, _, _ = ops
    body = {"name": "l", "model_name": LLAMA, "region": "us-central1"}  # only an L40S there
    made = await client.post("/v0/dedicated_endpoints", json=body)
    assert made.status_code == 201, made.text
    assert (made.json()["gpu_type"], made.json()["gpu_count"]) == ("l40s", 1)
    first = await client.post("/v0/dedicated_endpoints", json={"name": "g", "model_name": GPT, "region": "eu-north1"})
    assert first.json()["gpu_type"] == "h100"


async def test_no_python_in_the_cli_grammar_or_events(ops) -> None:
    client, store, _ = ops
    with pytest.raises(ValueError) as bad:
        ScalePolicy.parse("foo=1")
    assert "ScalePolicyKind" not in str(bad.value) and "queue-delay" in str(bad.value)
    with pytest.raises(ValueError, match="not a number"):
        ScalePolicy.parse("queue-delay=soon")
    made = await client.post("/v0/endpoints", json={"name": "e", "container": {"command": "true"}})
    await StoreScalingAdapter(store).set_desired(made.json()["id"], 2, "queue delay 3s > 2s")
    events = (await client.get(f"/v0/endpoints/{made.json()['id']}/events")).json()["events"]
    scaled = next(e["message"] for e in events if e["kind"] == "scaled")
    assert scaled.startswith("desired replicas min -> 2") and "None" not in scaled
