"""No secret value in any output, and none in clear in the database: an inline registry password is
sealed with the master key (also in the WAL), shown as `********` to everyone; env values are shown
to admins only. A GET -> PATCH round trip that sends the mask back keeps the stored password."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from podium.controller.launch import launch_spec, workload_of
from podium.core.specs import MASK, stored_spec
from podium.services.control_plane import build_control_plane
from podium.settings import Settings
from podium.store.repos import Store
from tests.api.conftest import Hints, _client

PASSWORD = "hunter2-registry-pass"
HF = "hf_live_value_that_must_not_leak"
BODY = {
    "name": "private",
    "container": {
        "command": "srv $PORT",
        "image": "ghcr.io/acme/bot:1",
        "registry": {"username": "robot", "password": PASSWORD},
        "env": {"HUGGING_FACE_HUB_TOKEN": HF, "LOG_LEVEL": "debug"},
    },
}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, Hints]]:
    """On the docker runtime: an image with registry credentials is what it runs (the local runtime
    refuses an image with a command, 422)."""
    async for x in _client(tmp_path, None, runtime="docker"):
        yield x


def _db_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("podium.db*") if p.is_file())


async def _clear_password(data_dir: Path, store, endpoint_id: str) -> str | None:  # type: ignore[no-untyped-def]
    """What the controller hands the runtime at replica start."""
    plane = build_control_plane(Settings(data_dir=data_dir), store, None)
    row = await store.get_endpoint(endpoint_id)
    spec = stored_spec(row.spec_json)
    launch = await launch_spec(
        replica_id="rep-1", row=row, spec=spec, work=workload_of(spec, row.routing_key, None), gpus=(), refs=plane
    )
    return launch.registry_password


async def _read_token(client) -> dict[str, str]:  # type: ignore[no-untyped-def]
    token = (await client.post("/v0/tokens", json={"name": "viewer", "scopes": ["read"]})).json()["token"]
    return {"Authorization": f"Bearer {token}"}


async def test_password_sealed_at_rest_and_opened_for_the_runtime(api, tmp_path: Path) -> None:
    client, store, _ = api
    ep = (await client.post("/v0/endpoints", json=BODY)).json()
    assert ep["spec"]["container"]["registry"]["password"] == MASK
    row = await store.get_endpoint(ep["id"])
    assert PASSWORD not in row.spec_json and json.loads(row.spec_json)["container"]["registry"]["password"]
    assert PASSWORD.encode() not in _db_bytes(tmp_path)  # database file and WAL
    assert await _clear_password(tmp_path, store, ep["id"]) == PASSWORD

    await client.delete(f"/v0/endpoints/{ep['id']}")
    assert PASSWORD.encode() not in _db_bytes(tmp_path)


async def test_get_patch_round_trip_keeps_the_password(api, tmp_path: Path) -> None:
    client, store, _ = api
    ep = (await client.post("/v0/endpoints", json=BODY)).json()
    got = (await client.get(f"/v0/endpoints/{ep['id']}")).json()
    spec = got["spec"]
    assert spec["container"]["registry"]["password"] == MASK
    spec["description"] = "edited"
    patched = await client.patch(f"/v0/endpoints/{ep['id']}", json=spec)
    assert patched.status_code == 200, patched.text
    assert await _clear_password(tmp_path, store, ep["id"]) == PASSWORD  # not the literal ********
    assert (await store.get_endpoint(ep["id"])).generation == 1  # nothing replicas run changed

    await client.patch(f"/v0/endpoints/{ep['id']}", json={"container": {"registry": {"password": "new-pass"}}})
    assert await _clear_password(tmp_path, store, ep["id"]) == "new-pass"
    assert b"new-pass" not in _db_bytes(tmp_path)


async def test_the_mask_is_not_a_password(api) -> None:
    client, store, _ = api
    body = {"name": "n", "container": {"command": "c", "registry": {"username": "u", "password": MASK}}}
    resp = await client.post("/v0/endpoints", json=body)
    assert resp.status_code == 422 and resp.json()["error"]["message"].startswith("container.registry.password")
    assert await store.list_endpoints() == []


async def test_a_password_stored_in_clear_by_an_older_version_still_works(api, tmp_path: Path) -> None:
    client, store, _ = api
    ep = (await client.post("/v0/endpoints", json={"name": "old", "container": {"command": "c"}})).json()
    row = await store.get_endpoint(ep["id"])
    doc = json.loads(row.spec_json)
    doc["container"]["registry"] = {"username": "u", "password": "legacy-clear", "secret": None}
    await store.update_endpoint(ep["id"], spec_json=json.dumps(doc))
    got = (await client.get(f"/v0/endpoints/{ep['id']}")).json()
    assert got["spec"]["container"]["registry"]["password"] == MASK
    assert await _clear_password(tmp_path, store, ep["id"]) == "legacy-clear"  # read as it is
    generation = (await store.get_endpoint(ep["id"])).generation
    await client.patch(f"/v0/endpoints/{ep['id']}", json={"description": "any write seals it"})
    assert "legacy-clear" not in (await store.get_endpoint(ep["id"])).spec_json
    assert (await store.get_endpoint(ep["id"])).generation == generation  # same password: no restart
    assert await _clear_password(tmp_path, store, ep["id"]) == "legacy-clear"


async def test_env_values_are_masked_for_non_admins(api) -> None:
    client, _, _ = api
    ep = (await client.post("/v0/endpoints", json=BODY)).json()
    assert ep["spec"]["container"]["env"]["HUGGING_FACE_HUB_TOKEN"] == HF  # the admin who made it
    reader = await _read_token(client)
    for resp in (
        await client.get(f"/v0/endpoints/{ep['id']}", headers=reader),
        await client.get("/v0/endpoints", headers=reader),
        await client.get(f"/v0/endpoints/{ep['id']}/events", headers=reader),
    ):
        assert resp.status_code == 200
        assert HF not in resp.text and PASSWORD not in resp.text and "debug" not in resp.text
    env = (await client.get(f"/v0/endpoints/{ep['id']}", headers=reader)).json()["spec"]["container"]["env"]
    assert env == {"HUGGING_FACE_HUB_TOKEN": MASK, "LOG_LEVEL": MASK}  # the keys stay visible
    admin = (await client.get(f"/v0/endpoints/{ep['id']}")).json()
    assert admin["spec"]["container"]["env"]["HUGGING_FACE_HUB_TOKEN"] == HF
    assert PASSWORD not in json.dumps(admin)


async def test_a_masked_env_value_sent_back_keeps_the_stored_one(api) -> None:
    client, store, _ = api
    ep = (await client.post("/v0/endpoints", json=BODY)).json()
    resp = await client.patch(
        f"/v0/endpoints/{ep['id']}", json={"container": {"env": {"HUGGING_FACE_HUB_TOKEN": MASK, "NEW": "x"}}}
    )
    assert resp.status_code == 200
    env = stored_spec((await store.get_endpoint(ep["id"])).spec_json).container.env  # type: ignore[union-attr]
    assert env == {"HUGGING_FACE_HUB_TOKEN": HF, "LOG_LEVEL": "debug", "NEW": "x"}
