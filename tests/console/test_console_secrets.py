"""The console's endpoint page masks like the API: never the registry password (it used to show it in
clear to a read-scoped token), env values only to admins; a row that cannot be read shows `failed`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from podium.api.app import create_app
from podium.api.deps import Services
from podium.console.pages import router
from podium.core.specs import ContainerSource, EndpointSpec, Registry
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store

PASSWORD = "hunter2-registry-pass"
HF = "hf_live_value_that_must_not_leak"


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, str, str]]:
    settings = Settings(data_dir=tmp_path)
    migrate(settings.db_url)
    store = Store(settings.db_url)
    tokens = TokenService(store)
    await tokens.ensure_bootstrap("console-admin-token")
    _, reader = await tokens.create("viewer", ["read"])
    endpoints = EndpointService(store, lambda _=None: None, SourceValidator(None, "local"))
    app = create_app(Services(settings, tokens, endpoints))  # attaches the control plane (sealing)
    app.include_router(router)
    spec = EndpointSpec(
        name="private",
        container=ContainerSource(
            command="x", env={"HUGGING_FACE_HUB_TOKEN": HF}, registry=Registry(username="u", password=PASSWORD)
        ),
    )
    created = await endpoints.create(spec, "container")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://podium") as c:
        yield c, store, created.record.row.id, reader
    await store.close()


async def _page(c: httpx.AsyncClient, token: str, path: str) -> str:
    c.cookies.clear()
    assert (await c.post("/console/login", data={"token": token})).status_code == 303
    resp = await c.get(path)
    assert resp.status_code == 200
    return resp.text


async def test_read_token_sees_neither_password_nor_env_values(console) -> None:  # type: ignore[no-untyped-def]
    c, _, eid, reader = console
    page = await _page(c, reader, f"/console/endpoints/{eid}")
    assert "HUGGING_FACE_HUB_TOKEN" in page  # the key is shown, not its value
    assert PASSWORD not in page and HF not in page and "sealed:" not in page
    assert PASSWORD not in await _page(c, reader, "/")


async def test_admin_sees_env_values_but_never_the_password(console) -> None:  # type: ignore[no-untyped-def]
    c, _, eid, _ = console
    page = await _page(c, "console-admin-token", f"/console/endpoints/{eid}")
    assert HF in page and PASSWORD not in page and "sealed:" not in page


async def test_an_unreadable_row_shows_failed(console) -> None:  # type: ignore[no-untyped-def]
    c, store, eid, reader = console
    await store.update_endpoint(eid, spec_json='{"name": "private", "scaling": {"idle_timeout_s": null}}')
    index = await _page(c, reader, "/")
    assert "s-failed" in index and "stored spec cannot be read" in index
    page = await _page(c, reader, f"/console/endpoints/{eid}")
    assert "s-failed" in page and "stored spec cannot be read" in page
