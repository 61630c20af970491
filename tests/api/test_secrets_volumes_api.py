"""`/v0/secrets` and `/v0/volumes` over a real database, and how endpoints refer to them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from podium.services.tokens import sha256_hex


def _is_dir(path: str) -> bool:
    return os.path.isdir(path)


CMD = {"command": "python3 server.py --port $PORT"}


async def secret(client: Any, name: str, payload: dict[str, str]) -> dict[str, Any]:
    resp = await client.post("/v0/secrets", json={"name": name, "payload": payload})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_secret_lifecycle_never_shows_values(api) -> None:
    client, _, _ = api
    s = await secret(client, "hf", {"HF_TOKEN": "value-one"})
    assert s["id"].startswith("sec-") and s["latest_version"] == 1 and s["keys"] == ["HF_TOKEN"]
    v2 = await client.post("/v0/secrets/hf/versions", json={"payload": {"HF_TOKEN": "value-two", "X": "y"}})
    assert v2.status_code == 201 and v2.json()["latest_version"] == 2 and v2.json()["keys"] == ["HF_TOKEN", "X"]
    texts = [
        (await client.get(path)).text
        for path in ("/v0/secrets", "/v0/secrets/hf", "/v0/secrets/hf@1", f"/v0/secrets/{s['id']}")
    ]
    assert all("value-" not in t for t in texts) and "value-" not in v2.text
    assert [v["version"] for v in json.loads(texts[1])["versions"]] == [1, 2]
    assert (await client.get("/v0/secrets/nope")).status_code == 404
    assert (await client.post("/v0/secrets", json={"name": "hf", "payload": {"A": "1"}})).status_code == 409
    bad = await client.post("/v0/secrets", json={"name": "x", "payload": {"bad key": "1"}})
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("payload.bad key")
    assert (await client.delete("/v0/secrets/hf")).status_code == 204
    assert (await client.get("/v0/secrets/hf")).status_code == 404


async def test_endpoint_references_to_secrets(api) -> None:
    client, _, _ = api
    await secret(client, "hf", {"HF_TOKEN": "t"})
    await secret(client, "reg", {"REGISTRY_USERNAME": "u", "REGISTRY_PASSWORD": "p"})
    cases = [
        ({"env_secrets": {"HF_TOKEN": "missing"}}, "container.env_secrets.HF_TOKEN"),
        ({"env_secrets": {"HF_TOKEN": "hf@7"}}, "container.env_secrets.HF_TOKEN"),
        ({"registry": {"secret": "hf"}}, "container.registry.secret"),  # lacks REGISTRY_*
    ]
    for container, field in cases:
        resp = await client.post("/v0/endpoints", json={"name": "e", "container": {**CMD, **container}})
        assert resp.status_code == 422 and resp.json()["error"]["message"].startswith(field), resp.text
    ok = await client.post(
        "/v0/endpoints",
        json={"name": "e", "container": {**CMD, "env_secrets": {"HF_TOKEN": "hf@1"}, "registry": {"secret": "reg"}}},
    )
    assert ok.status_code == 201, ok.text
    for name in ("hf", "reg"):
        resp = await client.delete(f"/v0/secrets/{name}")
        assert resp.status_code == 409 and ok.json()["id"] in resp.json()["error"]["message"]
    assert (await client.get("/v0/secrets/hf")).json()["used_by"] == [ok.json()["id"]]
    await client.delete(f"/v0/endpoints/{ok.json()['id']}")  # deleting endpoints no longer hold it
    assert (await client.delete("/v0/secrets/hf")).status_code == 204


async def test_token_secret_sets_and_rotates_the_endpoint_token(api) -> None:
    client, store, _ = api
    await secret(client, "ep-auth", {"AUTH_TOKEN": "first-token"})
    resp = await client.post(
        "/v0/endpoints", json={"name": "e", "container": CMD, "auth": {"mode": "token", "token_secret": "ep-auth"}}
    )
    assert resp.status_code == 201, resp.text
    ep = resp.json()
    assert ep["token"] is None  # the user owns the secret: never echoed
    assert (await store.get_endpoint(ep["id"])).auth_token_sha256 == sha256_hex("first-token")
    await client.post("/v0/secrets/ep-auth/versions", json={"payload": {"AUTH_TOKEN": "second-token"}})
    assert (await store.get_endpoint(ep["id"])).auth_token_sha256 == sha256_hex("second-token")
    missing = await client.post(
        "/v0/endpoints", json={"name": "e", "container": CMD, "auth": {"mode": "token", "token_secret": "nope"}}
    )
    assert missing.status_code == 422 and missing.json()["error"]["message"].startswith("auth.token_secret")


async def test_patch_auth_token_rehashes(api) -> None:
    client, store, _ = api
    ep = (await client.post("/v0/endpoints", json={"name": "e", "container": CMD})).json()
    resp = await client.patch(f"/v0/endpoints/{ep['id']}", json={"auth": {"mode": "token"}})
    generated = resp.json()["token"]
    assert generated and (await store.get_endpoint(ep["id"])).auth_token_sha256 == sha256_hex(generated)
    again = await client.patch(f"/v0/endpoints/{ep['id']}", json={"description": "d"})
    assert again.json()["token"] is None  # unchanged auth keeps its token
    assert (await store.get_endpoint(ep["id"])).auth_token_sha256 == sha256_hex(generated)
    await client.patch(f"/v0/endpoints/{ep['id']}", json={"auth": {"token": "mine-long-enough-token"}})
    assert (await store.get_endpoint(ep["id"])).auth_token_sha256 == sha256_hex("mine-long-enough-token")


async def test_volumes(api, tmp_path: Path) -> None:
    client, _, _ = api
    resp = await client.post("/v0/volumes", json={"name": "models", "size": "100Gi"})
    assert resp.status_code == 201, resp.text
    vol = resp.json()
    assert vol["path"] == str(tmp_path / "volumes" / "models") and _is_dir(vol["path"])
    assert (await client.post("/v0/volumes", json={"name": "models"})).status_code == 409
    assert (await client.post("/v0/volumes", json={"name": "Bad_Name"})).status_code == 422
    unknown = await client.post(
        "/v0/endpoints", json={"name": "e", "container": CMD, "volumes": [{"source": "nope", "container_path": "/m"}]}
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["message"].startswith("volumes.0.source")
    mounts = [
        {"source": "/tmp", "container_path": "/host"},
        {"source": "s3://bucket", "container_path": "/b", "mode": "ro"},
        {"source": "models", "container_path": "/models", "mode": "ro"},
    ]
    ep = await client.post("/v0/endpoints", json={"name": "e", "container": CMD, "volumes": mounts})
    assert ep.status_code == 201, ep.text
    busy = await client.delete("/v0/volumes/models")
    assert busy.status_code == 409 and ep.json()["id"] in busy.json()["error"]["message"]
    assert (await client.get(f"/v0/volumes/{vol['id']}")).json()["used_by"] == [ep.json()["id"]]
    await client.delete(f"/v0/endpoints/{ep.json()['id']}")
    assert (await client.delete("/v0/volumes/models")).status_code == 204
    assert not _is_dir(vol["path"]) and (await client.get("/v0/volumes")).json()["volumes"] == []


async def test_regions_platforms_presets(capi) -> None:
    client, _, _ = capi
    regions = (await client.get("/v0/regions")).json()["regions"]
    assert regions[0]["name"] == "local" and regions[0]["inventory"] == {"h100": 2, "cpu": 4}
    assert (await client.get("/v0/regions/local")).status_code == 200
    assert (await client.get("/v0/regions/mars")).status_code == 404
    platforms = (await client.get("/v0/platforms")).json()["platforms"]
    assert {p["name"] for p in platforms} == {"gpu-h100-sxm", "cpu-e2"} and platforms[0]["presets"]
    body = {"name": "e", "container": CMD, "compute": {"platform": "gpu-h100-sxm", "preset": "2gpu-32vcpu-400gb"}}
    ep = await client.post("/v0/endpoints", json=body)
    assert ep.status_code == 201, ep.text
    compute = ep.json()["spec"]["compute"]
    assert (compute["gpu_type"], compute["gpu_count"]) == ("h100", 2)
    cases = [
        ({"platform": "gpu-z"}, "compute.platform"),
        ({"platform": "gpu-h100-sxm", "preset": "9gpu"}, "compute.preset"),
        ({"preset": "1gpu-16vcpu-200gb"}, "compute.preset"),
        ({"platform": "gpu-h100-sxm", "gpu_type": "l40s"}, "compute.gpu_type"),
        ({"platform": "gpu-h100-sxm", "preset": "1gpu-16vcpu-200gb", "gpu_count": 2}, "compute.gpu_count"),
    ]
    for compute, field in cases:
        resp = await client.post("/v0/endpoints", json={"name": "e", "container": CMD, "compute": compute})
        assert resp.status_code == 422 and resp.json()["error"]["message"].startswith(field), resp.text
    # the preset's 2 GPUs are now reserved: another min-1 endpoint on 1 GPU does not fit
    again = await client.post("/v0/endpoints", json={**body, "compute": {"gpu_type": "h100", "gpu_count": 1}})
    assert again.status_code == 409


async def test_controller_helpers_resolve_what_replicas_need(api, tmp_path: Path) -> None:
    """What the controller calls at replica start: env from secrets, registry credentials, volume paths."""
    client, _, _ = api
    plane = client._transport.app.state.services.control_plane  # type: ignore[attr-defined]
    await secret(client, "hf", {"HF_TOKEN": "hf-1"})
    await secret(client, "reg", {"REGISTRY_USERNAME": "u", "REGISTRY_PASSWORD": "p"})
    await client.post("/v0/volumes", json={"name": "models"})
    assert await plane.resolve_env({"HF_TOKEN": "hf", "TOKEN_V1": "hf@1:HF_TOKEN"}) == {
        "HF_TOKEN": "hf-1",
        "TOKEN_V1": "hf-1",
    }
    assert await plane.registry_credentials("reg") == ("u", "p")
    assert await plane.volume_source("models") == str(tmp_path / "volumes" / "models")
    assert await plane.volume_source("/srv/data") == "/srv/data"
    assert await plane.volume_source("s3://b") == "s3://b"


async def test_a_version_without_auth_token_keeps_the_old_token(api) -> None:
    client, store, _ = api
    await secret(client, "ep-auth", {"AUTH_TOKEN": "one"})
    body = {"name": "e", "container": CMD, "auth": {"mode": "token", "token_secret": "ep-auth"}}
    ep = (await client.post("/v0/endpoints", json=body)).json()
    resp = await client.post("/v0/secrets/ep-auth/versions", json={"payload": {"A": "1", "B": "2"}})
    assert resp.status_code == 201 and resp.json()["latest_version"] == 2
    assert (await store.get_endpoint(ep["id"])).auth_token_sha256 == sha256_hex("one")
    events = (await client.get(f"/v0/endpoints/{ep['id']}/events")).json()["events"]
    assert events[0]["kind"] == "token" and "AUTH_TOKEN" in events[0]["message"]


async def test_gpu_platform_without_preset_takes_its_smallest_shape(capi) -> None:
    client, _, _ = capi
    body = {"name": "e", "container": CMD, "compute": {"platform": "gpu-h100-sxm"}, "scaling": {"min_replicas": 0}}
    compute = (await client.post("/v0/endpoints", json=body)).json()["spec"]["compute"]
    assert (compute["gpu_type"], compute["gpu_count"]) == ("h100", 1)
