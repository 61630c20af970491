"""The console's new pages over a real database (in-process ASGI): read-only tokens get no forms and a
403 on every write; secret values and registry passwords never come back in a page; a token's value
is shown once; forms keep the user's values on an error; the charts' metric parsing and quantiles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from podium.api.app import create_app
from podium.api.deps import Services
from podium.console.actions import router as actions
from podium.console.charts import Sample, parse_metrics, quantile
from podium.console.pages import router
from podium.core.specs import ContainerSource, EndpointSpec
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate
from podium.store.repos import Store

ADMIN = "console-admin-token"
SECRET_VALUE = "s3cr3t-value-never-shown"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Store, str, str]]:
    settings = Settings(data_dir=tmp_path)
    migrate(settings.db_url)
    store = Store(settings.db_url)
    tokens = TokenService(store)
    await tokens.ensure_bootstrap(ADMIN)
    _, reader = await tokens.create("viewer", ["read"])
    endpoints = EndpointService(store, lambda _=None: None, SourceValidator(None, "local"))
    app = create_app(Services(settings, tokens, endpoints))
    app.include_router(router)
    app.include_router(actions)
    created = await endpoints.create(EndpointSpec(name="chat", container=ContainerSource(command="x")), "container")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://podium") as c:
        yield c, store, created.record.row.id, reader
    await store.close()


async def _sign_in(c: httpx.AsyncClient, token: str) -> None:
    c.cookies.clear()
    assert (await c.post("/console/login", data={"token": token})).status_code == 303


async def test_read_only_sees_pages_without_forms_and_every_write_is_403(client) -> None:  # type: ignore[no-untyped-def]
    c, store, eid, reader = client
    await _sign_in(c, reader)
    for path in ("/", f"/console/endpoints/{eid}", "/console/tokens", "/console/secrets", "/console/volumes"):
        page = await c.get(path)
        assert page.status_code == 200 and "<button" not in page.text and "<form" not in page.text, path
    writes = {
        "/console/create": {"name": "x", "command": "y"},
        "/console/deploy": {"choice": "a|b|cpu|0", "name": "x"},
        f"/console/endpoints/{eid}/scaling": {"max_replicas": "5"},
        f"/console/endpoints/{eid}/delete": {"confirm": "yes"},
        f"/console/endpoints/{eid}/stop": {"confirm": "yes"},
        "/console/tokens": {"name": "x", "scopes": "admin"},
        "/console/secrets": {"name": "x", "payload": "A=b"},
        "/console/volumes": {"name": "x"},
    }
    for path, data in writes.items():
        assert (await c.post(path, data=data)).status_code == 403, path
    (row,) = await store.list_endpoints()
    assert not row.deleting and len(await store.list_endpoints()) == 1


async def test_token_shown_once_and_secret_values_never(client) -> None:  # type: ignore[no-untyped-def]
    c, _, _, _ = client
    await _sign_in(c, ADMIN)
    created = await c.post("/console/tokens", data={"name": "ci", "scopes": ["read", "inference"]})
    value = created.text.split("id='new-token' class='secret-shown'>")[1].split("<")[0]
    assert value.startswith("pdm") and value not in (await c.get("/console/tokens")).text
    assert (
        await c.post("/console/secrets", data={"name": "hf", "payload": f"HF_TOKEN={SECRET_VALUE}"})
    ).status_code == 303
    listed = (await c.get("/console/secrets")).text
    assert "HF_TOKEN" in listed and SECRET_VALUE not in listed


async def test_container_form_keeps_values_but_never_the_password(client) -> None:  # type: ignore[no-untyped-def]
    c, store, _, _ = client
    await _sign_in(c, ADMIN)
    bad = await c.post(
        "/console/create",
        data={"name": "kept", "command": "run-me", "port": "99999", "registry_password": "pw-never-echoed"},
    )
    assert bad.status_code == 200 and "port" in bad.text and 'value="run-me"' in bad.text
    assert "pw-never-echoed" not in bad.text and len(await store.list_endpoints()) == 1
    ok = await c.post("/console/create", data={"name": "web", "command": "run-me", "env": "A=1\nB=2"})
    assert ok.status_code == 303


async def test_scaling_edit_in_place(client) -> None:  # type: ignore[no-untyped-def]
    c, store, eid, _ = client
    await _sign_in(c, ADMIN)
    done = await c.post(f"/console/endpoints/{eid}/scaling", data={"min_replicas": "0", "max_replicas": "4"})
    assert done.headers["location"].endswith("saved=1")
    assert '"max_replicas":4' in (await store.get_endpoint(eid)).spec_json.replace(" ", "")
    bad = await c.post(f"/console/endpoints/{eid}/scaling", data={"max_replicas": "-1"})
    assert "error=" in bad.headers["location"]


def test_metrics_parsing_and_quantiles() -> None:
    text = (
        'podium_gateway_requests_total{endpoint="ep-1",code="200"} 7\n'
        'podium_gateway_requests_total{endpoint="ep-2",code="200"} 99\n'
        'podium_gateway_queue_length{endpoint="ep-1",routing_key="k"} 3\n'
    )
    series = parse_metrics(text, "ep-1")
    assert series["podium_gateway_requests_total"][0][1] == 7 and "ep-2" not in str(series)
    before = Sample(0, 0, ((0.01, 0), (0.1, 0), (float("inf"), 0)), 0, 0, 1)
    after = Sample(2, 100, ((0.01, 60), (0.1, 99), (float("inf"), 100)), 0, 0, 1)
    assert quantile(before, after, 0.5) == 0.01 and quantile(before, after, 0.99) == 0.1
    assert quantile(after, after, 0.5) is None  # nothing finished in between
