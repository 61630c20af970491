"""`/v0/endpoints/{id}/revisions|rollback|promote` over a real SQLite store (no controller: the
controller's side is tests/controller/test_rollouts.py and tests/e2e/test_rollouts.py)."""

from __future__ import annotations

import httpx
import pytest

from podium.core.specs import ContainerSource, EndpointSpec
from podium.services.endpoints import EndpointService
from podium.services.rollouts import RolloutService
from podium.services.validation import SourceValidator
from podium.store.db import migrate
from podium.store.repos import Store
from tests.conftest import free_port
from tests.store.postgres import pg_bin, postgres_server

Api = tuple[httpx.AsyncClient, Store, object]


async def _create(client: httpx.AsyncClient, **extra: object) -> str:
    body = {"name": "rev", "container": {"command": "server v1", "env": {"A": "1"}}, **extra}
    r = await client.post("/v0/endpoints", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_replica_changes_make_revisions_and_scaling_does_not(api: Api) -> None:
    client, _, _ = api
    ep = await _create(client)
    assert (await client.patch(f"/v0/endpoints/{ep}", json={"scaling": {"max_replicas": 3}})).status_code == 200
    assert (await client.patch(f"/v0/endpoints/{ep}", json={"name": "renamed", "description": "d"})).status_code == 200
    assert (await client.patch(f"/v0/endpoints/{ep}", json={"routing": {"policy": "prefix-cache"}})).status_code == 200
    r = await client.patch(f"/v0/endpoints/{ep}", json={"container": {"command": "server v2", "env": {"A": "2"}}})
    assert r.status_code == 200 and r.json()["status"]["revision"] == 2
    revs = (await client.get(f"/v0/endpoints/{ep}/revisions")).json()
    assert revs["revision"] == 2
    assert [(x["number"], x["current"], x["changes"]) for x in revs["revisions"]] == [
        (2, True, ["container.command", "container.env"]),
        (1, False, ["created"]),
    ]
    assert "2" not in str(revs["revisions"][0]["changes"])  # field names only, never values


async def test_rollback_restores_replica_fields_and_keeps_the_rest(api: Api) -> None:
    client, store, hints = api
    ep = await _create(client)
    await client.patch(f"/v0/endpoints/{ep}", json={"container": {"command": "server v2"}})
    await client.patch(f"/v0/endpoints/{ep}", json={"scaling": {"max_replicas": 4}, "description": "kept"})
    r = await client.post(f"/v0/endpoints/{ep}/rollback", json={})  # default: the previous revision
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"]["revision"] == 1 and body["spec"]["container"]["command"] == "server v1"
    assert body["spec"]["scaling"]["max_replicas"] == 4 and body["description"] == "kept"
    assert ep in hints  # type: ignore[operator]
    revs = {x["number"]: x for x in (await client.get(f"/v0/endpoints/{ep}/revisions")).json()["revisions"]}
    assert revs[1]["current"] and revs[1]["state"] == "rolling" and revs[2]["state"] == "retired"
    # forward again to 2 by number; a PATCH after that makes 3 (numbers never repeat)
    assert (await client.post(f"/v0/endpoints/{ep}/rollback", json={"revision": 2})).json()["status"]["revision"] == 2
    r = await client.patch(f"/v0/endpoints/{ep}", json={"container": {"command": "server v3"}})
    assert r.json()["status"]["revision"] == 3
    kinds = [e.kind for e in await store.events(ep)]
    assert kinds.count("rollback") == 2


async def test_rollback_mistakes_are_4xx_naming_the_revision(api: Api) -> None:
    client, _, _ = api
    ep = await _create(client)
    r = await client.post(f"/v0/endpoints/{ep}/rollback", json={"revision": 7})
    assert r.status_code == 404 and "revision 7" in r.json()["error"]["message"]
    assert r.json()["error"]["details"][0]["field"] == "revision"
    r = await client.post(f"/v0/endpoints/{ep}/rollback")
    assert r.status_code == 409 and "no earlier revision" in r.json()["error"]["message"]
    r = await client.post(f"/v0/endpoints/{ep}/rollback", json={"revision": 1})
    assert r.status_code == 409
    for bad in ({"revision": 0}, {"revision": "x"}, {"rev": 1}):
        r = await client.post(f"/v0/endpoints/{ep}/rollback", json=bad)
        assert r.status_code == 422 and "rev" in r.text, r.text
    assert (await client.post("/v0/endpoints/ep-nope/rollback")).status_code == 404


async def test_canary_revision_waits_for_promote(api: Api) -> None:
    client, store, _ = api
    ep = await _create(client, rollout={"strategy": "canary", "canary_percent": 20})
    r = await client.post(f"/v0/endpoints/{ep}/promote")
    assert r.status_code == 409 and "not a canary" in r.json()["error"]["message"]  # the first one just starts
    await client.patch(f"/v0/endpoints/{ep}", json={"container": {"command": "server v2"}})
    revs = (await client.get(f"/v0/endpoints/{ep}/revisions")).json()["revisions"]
    assert (revs[0]["number"], revs[0]["state"], revs[0]["strategy"]) == (2, "canary", "canary")
    assert (await client.post(f"/v0/endpoints/{ep}/promote")).status_code == 200
    assert (await store.revisions.get(ep, 2)).state == "rolling"  # type: ignore[union-attr]
    assert "promoted" in [e.kind for e in await store.events(ep)]


async def test_rollout_block_is_validated(api: Api) -> None:
    client, _, _ = api
    r = await client.post(
        "/v0/endpoints", json={"name": "x", "container": {"command": "s"}, "rollout": {"max_surge": 0}}
    )
    assert r.status_code == 422 and "max_unavailable" in r.json()["error"]["message"]
    r = await client.post(
        "/v0/endpoints", json={"name": "x", "container": {"command": "s"}, "rollout": {"canary_percent": 120}}
    )
    assert r.status_code == 422 and "canary_percent" in r.text


async def test_a_secrets_new_version_is_a_new_revision_of_endpoints_reading_it(api: Api) -> None:
    client, _, _ = api
    assert (await client.post("/v0/secrets", json={"name": "key", "payload": {"K": "one"}})).status_code == 201
    follows = await _create(client, container={"command": "s", "env_secrets": {"K": "key"}})
    pinned = await _create(client, name="pinned", container={"command": "s", "env_secrets": {"K": "key@1"}})
    assert (await client.post("/v0/secrets/key/versions", json={"payload": {"K": "two"}})).status_code == 201
    revs = (await client.get(f"/v0/endpoints/{follows}/revisions")).json()
    assert revs["revision"] == 2
    assert revs["revisions"][0]["changes"] == ["container.env_secrets.K (key v2)"]
    assert (await client.get(f"/v0/endpoints/{pinned}/revisions")).json()["revision"] == 1


@pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries (initdb) here")
async def test_revisions_and_rollback_on_postgres() -> None:
    """Migration 0007 (with its backfill), numbering and the rollback's conditional switch on PostgreSQL."""
    with postgres_server(free_port()) as url:
        migrate(url)
        store = Store(url)
        try:
            svc = EndpointService(store, lambda _=None: None, SourceValidator(None, "local"))
            spec = EndpointSpec(name="pg", container=ContainerSource(command="v1"))
            eid = (await svc.create(spec, "container")).record.row.id
            current = (await svc.get(eid)).spec
            await svc.update(eid, current.model_copy(update={"container": ContainerSource(command="v2")}))
            rollouts = RolloutService(svc)
            rec = await rollouts.rollback(eid, None)
            assert rec.row.generation == 1 and rec.spec.container is not None and rec.spec.container.command == "v1"
            assert not await store.revisions.switch(eid, 2, 1, rec.row.spec_json, ("retired", ""), ("x", "y"))
            _, views = await rollouts.revisions(eid)
            states = [(v.row.number, v.row.state, v.current) for v in views]
            assert states == [(2, "retired", False), (1, "rolling", True)]
        finally:
            await store.close()
