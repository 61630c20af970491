"""`/v0/endpoints` and `/v0/tokens` over a real database: shapes, errors, desired state, hints."""

from __future__ import annotations

from typing import Any

CONTAINER = {"name": "my-chatbot", "container": {"command": "python3 server.py --port $PORT", "port": 8000}}


async def create(client: Any, body: dict[str, Any] | None = None) -> dict[str, Any]:
    resp = await client.post("/v0/endpoints", json=body or CONTAINER)
    assert resp.status_code == 201, resp.text
    return resp.json()


async def test_create_list_get_delete(api) -> None:
    client, store, hints = api
    ep = await create(client)
    assert ep["id"].startswith("ep-") and ep["routing_key"] and ep["app_name"].startswith("my-chatbot")
    assert ep["status"]["state"] == "provisioning" and ep["status"]["instances"] == []
    assert hints == [ep["id"]]  # the controller was woken at once
    listed = (await client.get("/v0/endpoints")).json()["endpoints"]
    assert [e["id"] for e in listed] == [ep["id"]]
    for key in (ep["id"], ep["app_name"], ep["routing_key"]):
        assert (await client.get(f"/v0/endpoints/{key}")).json()["id"] == ep["id"]
    gone = await client.delete(f"/v0/endpoints/{ep['id']}")
    assert gone.status_code == 202 and gone.json()["status"]["state"] == "deleting"
    assert (await store.get_endpoint(ep["id"])).deleting  # desired state only: the controller removes it


async def test_auth_errors(api) -> None:
    client, _, _ = api
    resp = await client.get("/v0/endpoints", headers={"Authorization": ""})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "unauthorized"
    assert (await client.get("/v0/endpoints", headers={"Authorization": "Bearer nope"})).status_code == 401
    tok = (await client.post("/v0/tokens", json={"name": "reader", "scopes": ["read"]})).json()
    reader = {"Authorization": f"Bearer {tok['token']}"}
    assert (await client.get("/v0/endpoints", headers=reader)).status_code == 200
    denied = await client.post("/v0/endpoints", json=CONTAINER, headers=reader)
    assert denied.status_code == 403 and "admin" in denied.json()["error"]["message"]
    assert (await client.delete(f"/v0/tokens/{tok['id']}")).status_code == 204
    assert (await client.get("/v0/endpoints", headers=reader)).status_code == 401


async def test_validation_names_the_field(api) -> None:
    client, _, _ = api
    cases = [
        ({"name": "x", "container": {"command": "c"}, "scaling": {"min_replica": 1}}, "scaling.min_replica"),
        (
            {"name": "x", "container": {"command": "c"}, "scaling": {"min_replicas": 3, "max_replicas": 1}},
            "scaling",
        ),
        ({"name": "x", "container": {"image": "img"}}, "container.command"),
        ({"name": "x", "container": {"command": "c"}, "app_name": "Bad_Name"}, "app_name"),
        ({"name": "x", "container": {"command": "c"}, "compute": {"disk_size": "lots"}}, "compute.disk_size"),
        ({"name": "x"}, "body"),
    ]
    for body, field in cases:
        resp = await client.post("/v0/endpoints", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"]["message"].startswith(field), (field, resp.json())
    assert (
        await client.post("/v0/endpoints", content=b"{not json", headers={"content-type": "application/json"})
    ).status_code == 422


async def test_unknown_is_404(api) -> None:
    client, _, _ = api
    resp = await client.get("/v0/endpoints/ep-nope")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    assert (await client.post("/v0/endpoints/ep-nope/stop")).status_code == 404


async def test_app_name_conflict(api) -> None:
    client, _, _ = api
    await create(client, {**CONTAINER, "app_name": "taken"})
    resp = await client.post("/v0/endpoints", json={**CONTAINER, "app_name": "taken"})
    assert resp.status_code == 409


async def test_patch_changes_only_given_fields_and_rolls_only_when_replicas_must_change(api) -> None:
    client, store, _ = api
    ep = await create(client)
    resp = await client.patch(f"/v0/endpoints/{ep['id']}", json={"scaling": {"max_replicas": 4}})
    assert resp.status_code == 200, resp.text
    spec = resp.json()["spec"]
    assert spec["scaling"]["max_replicas"] == 4 and spec["container"]["command"] == CONTAINER["container"]["command"]
    assert (await store.get_endpoint(ep["id"])).generation == 1  # scaling: no replica restarts
    for patch in ({"name": "renamed", "description": "d"}, {"auth": {"mode": "token"}}):
        assert (await client.patch(f"/v0/endpoints/{ep['id']}", json=patch)).status_code == 200
        assert (await store.get_endpoint(ep["id"])).generation == 1, patch
    await client.patch(f"/v0/endpoints/{ep['id']}", json={"container": {"env": {"A": "1"}}})
    assert (await store.get_endpoint(ep["id"])).generation == 2  # what the replica runs: a rolling update
    bad = await client.patch(f"/v0/endpoints/{ep['id']}", json={"compute": {"region": "elsewhere"}})
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("region")


async def test_stop_start_and_events(api) -> None:
    client, _, _ = api
    ep = await create(client)
    stopped = (await client.post(f"/v0/endpoints/{ep['id']}/stop")).json()
    assert stopped["enabled"] is False and stopped["status"]["state"] == "stopped"
    assert (await client.post(f"/v0/endpoints/{ep['id']}/start")).json()["enabled"] is True
    kinds = [e["kind"] for e in (await client.get(f"/v0/endpoints/{ep['id']}/events")).json()["events"]]
    assert kinds == ["started", "stopped", "created"]  # newest first


async def test_endpoint_token_shown_once(api) -> None:
    client, store, _ = api
    ep = await create(client, {**CONTAINER, "auth": {"mode": "token"}})
    assert ep["token"] and ep["spec"]["auth"]["token"] is None
    again = (await client.get(f"/v0/endpoints/{ep['id']}")).json()
    assert again["token"] is None
    assert (await store.get_endpoint(ep["id"])).auth_token_sha256
