"""The last active admin token cannot be revoked (409), and bootstrapping the configured admin token is
idempotent even when its row was revoked (it used to crash `podium up` on the unique hash)."""

from __future__ import annotations

import asyncio

from podium.services.tokens import TokenService
from tests.api.conftest import ADMIN


async def _token_id(client, name: str) -> str:  # type: ignore[no-untyped-def]
    tokens = (await client.get("/v0/tokens")).json()["tokens"]
    return next(t["id"] for t in tokens if t["name"] == name)


async def test_the_last_admin_token_cannot_be_revoked(api) -> None:
    client, _, _ = api
    boot = await _token_id(client, "bootstrap-admin")
    resp = await client.delete(f"/v0/tokens/{boot}")
    assert resp.status_code == 409, resp.text
    assert "last active admin token" in resp.json()["error"]["message"]
    assert (await client.get("/v0/tokens")).status_code == 200  # still valid

    read = (await client.post("/v0/tokens", json={"name": "r", "scopes": ["read"]})).json()
    assert (await client.delete(f"/v0/tokens/{read['id']}")).status_code == 204  # not an admin: fine

    second = (await client.post("/v0/tokens", json={"name": "ops", "scopes": ["admin", "read"]})).json()
    assert (await client.delete(f"/v0/tokens/{boot}")).status_code == 204  # another admin remains
    as_second = {"Authorization": f"Bearer {second['token']}"}
    last = await client.delete(f"/v0/tokens/{second['id']}", headers=as_second)
    assert last.status_code == 409 and "last active admin token" in last.json()["error"]["message"]
    assert (await client.get("/v0/tokens", headers=as_second)).status_code == 200


async def test_bootstrap_reactivates_its_revoked_row(api) -> None:
    """Re-activated, not skipped: the configured token is what split roles authenticate with."""
    client, store, _ = api
    other = (await client.post("/v0/tokens", json={"name": "ops", "scopes": ["admin"]})).json()
    boot = await _token_id(client, "bootstrap-admin")
    assert (await client.delete(f"/v0/tokens/{boot}")).status_code == 204
    assert (await client.get("/v0/tokens")).status_code == 401  # revoked

    await TokenService(store).ensure_bootstrap(ADMIN)  # what `podium up` does at start
    assert (await client.get("/v0/tokens")).status_code == 200
    rows = await store.tokens(include_revoked=True)
    assert sorted(r.name for r in rows) == ["bootstrap-admin", "ops"]  # the same row, not a second one
    assert other["id"] in [r.id for r in rows]


async def test_bootstrap_twice_at_once_is_fine(api) -> None:
    """The api and controller roles both bootstrap at start."""
    _, store, _ = api
    await asyncio.gather(*(TokenService(store).ensure_bootstrap("another-admin-token") for _ in range(4)))
    await TokenService(store).ensure_bootstrap("another-admin-token")
    assert [r.name for r in await store.tokens()].count("bootstrap-admin") == 2  # ADMIN's and this one
