"""The console over a real database: sign-in with a token, the endpoint list and detail pages."""

from __future__ import annotations

from pathlib import Path

import httpx

from podium.api.app import create_app
from podium.api.deps import Services
from podium.console.pages import router
from podium.core.specs import ContainerSource, EndpointSpec
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store


async def test_sign_in_and_pages(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    migrate(settings.db_url)
    store = Store(settings.db_url)
    tokens = TokenService(store)
    await tokens.ensure_bootstrap("console-admin")
    endpoints = EndpointService(store, lambda _=None: None, SourceValidator(None, "local"))
    created = await endpoints.create(
        EndpointSpec(name="<b>chat</b>", container=ContainerSource(command="x")), "container"
    )
    app = create_app(Services(settings, tokens, endpoints))
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://podium") as c:
        assert "Sign in" in (await c.get("/")).text
        bad = await c.post("/console/login", data={"token": "wrong"})
        assert "invalid" in bad.text and "podium_token" not in bad.headers.get("set-cookie", "")
        ok = await c.post("/console/login", data={"token": "console-admin"})
        assert ok.status_code == 303 and "httponly" in ok.headers["set-cookie"].lower()
        page = (await c.get("/")).text
        assert created.record.row.routing_key in page and "&lt;b&gt;chat&lt;/b&gt;" in page  # escaped
        detail = (await c.get(f"/console/endpoints/{created.record.row.id}")).text
        assert "Events" in detail and "created" in detail
        assert "Usage" in (await c.get("/console/usage")).text
    await store.close()


async def test_deploy_from_a_template_and_endpoint_actions(tmp_path: Path) -> None:
    from podium.catalog import Catalog
    from podium.console.actions import router as actions

    settings = Settings(data_dir=tmp_path)
    migrate(settings.db_url)
    store = Store(settings.db_url)
    tokens = TokenService(store)
    await tokens.ensure_bootstrap("console-admin")
    _, reader = await tokens.create("reader", ["read"])
    catalog = Catalog.load()
    endpoints = EndpointService(store, lambda _=None: None, SourceValidator(catalog, "local"))
    app = create_app(Services(settings, tokens, endpoints, catalog=catalog))
    app.include_router(router)
    app.include_router(actions)
    choice = "HuggingFaceTB/SmolLM2-135M-Instruct|base|cpu|0"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://podium") as c:
        await c.post("/console/login", data={"token": reader})
        assert "SmolLM2" in (await c.get("/console/deploy")).text  # the catalog's templates are offered
        denied = await c.post("/console/deploy", data={"choice": choice, "name": "smol"})
        assert denied.status_code == 403 and await store.list_endpoints() == []  # read scope cannot deploy
        assert "<button>Deploy" not in (await c.get("/console/deploy")).text  # and is offered no button
        await c.post("/console/login", data={"token": "console-admin"})
        bad = await c.post("/console/deploy", data={"choice": "no|such|thing|0", "name": "kept-name"})
        assert "err" in bad.text and await store.list_endpoints() == []
        assert 'value="kept-name"' in bad.text  # the form keeps what the user typed
        done = await c.post(
            "/console/deploy", data={"choice": choice, "name": "smol", "min_replicas": "0", "max_replicas": "2"}
        )
        assert done.status_code == 303
        (row,) = await store.list_endpoints()
        assert row.kind == "template" and done.headers["location"].endswith(row.id)
        unconfirmed = await c.post(f"/console/endpoints/{row.id}/stop")
        assert unconfirmed.headers["location"].endswith("/confirm/stop")  # asks first, does nothing
        assert (await store.get_endpoint(row.id)).state != "stopped"
        assert "Yes, stop" in (await c.get(unconfirmed.headers["location"])).text
        done = await c.post(f"/console/endpoints/{row.id}/stop", data={"confirm": "yes"})
        assert done.status_code == 303 and (await store.get_endpoint(row.id)).state == "stopped"
        await c.post(f"/console/endpoints/{row.id}/start")
        await c.post(f"/console/endpoints/{row.id}/delete")
        assert not (await store.get_endpoint(row.id)).deleting
        await c.post(f"/console/endpoints/{row.id}/delete", data={"confirm": "yes"})
        assert (await store.get_endpoint(row.id)).deleting
    await store.close()
