"""The SQLite store on disk: its files are owner-only (also those an older version left 0644), and a
full disk is a 503 `storage_full` over real HTTP that writes nothing partial (not a 500)."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from podium.api.app import create_app
from podium.api.deps import Services
from podium.services.endpoints import EndpointService
from podium.services.tokens import TokenService
from podium.services.validation import SourceValidator
from podium.settings import Settings
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store
from tests.conftest import free_port

ADMIN = {"Authorization": "Bearer storage-admin-token"}


def _modes(data_dir: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in data_dir.glob("podium.db*")}


def _loosen(data_dir: Path) -> None:
    for p in data_dir.glob("podium.db*"):
        p.chmod(0o644)


async def test_new_database_files_are_0600(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    await TokenService(store).ensure_bootstrap("storage-admin-token")  # a write: the WAL exists now
    try:
        assert _modes(tmp_path) == {"podium.db": 0o600, "podium.db-wal": 0o600, "podium.db-shm": 0o600}
    finally:
        await store.close()


async def test_files_an_older_version_left_0644_become_0600(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    migrate(url)
    store = Store(url)
    await TokenService(store).ensure_bootstrap("storage-admin-token")
    _loosen(tmp_path)
    migrate(url)  # what every `podium up` runs first
    try:
        assert _modes(tmp_path) == {"podium.db": 0o600, "podium.db-wal": 0o600, "podium.db-shm": 0o600}
    finally:
        await store.close()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Store]]:
    """The control-plane app behind uvicorn on a loopback port (same event loop, real sockets)."""
    settings = Settings(data_dir=tmp_path, admin_token="storage-admin-token")
    migrate(settings.db_url)
    store = Store(settings.db_url)
    tokens = TokenService(store)
    await tokens.ensure_bootstrap("storage-admin-token")
    app = create_app(
        Services(settings, tokens, EndpointService(store, lambda _=None: None, SourceValidator(None, "local")))
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(400):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield f"http://127.0.0.1:{port}", store
    finally:
        server.should_exit = True
        await task
        await store.close()


def _fill_up(store: Store) -> None:
    """SQLite answers SQLITE_FULL ("database or disk is full") once the file may not grow: the same
    error a full filesystem gives, on every new connection of the store's pool."""

    @event.listens_for(store.engine.sync_engine, "connect")
    def _cap(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA page_count")
        pages = cur.fetchone()[0]
        cur.execute(f"PRAGMA max_page_count = {pages}")
        cur.close()


async def test_disk_full_is_503_and_writes_nothing(served: tuple[str, Store]) -> None:
    url, store = served
    async with httpx.AsyncClient(base_url=url, headers=ADMIN, timeout=10) as c:
        first = await c.post("/v0/endpoints", json={"name": "before", "container": {"command": "c"}})
        assert first.status_code == 201
        events_before = len(await store.events(first.json()["id"]))
        _fill_up(store)
        await store.engine.dispose()  # new connections carry the cap
        body = {"name": "n", "description": "d" * 9000, "container": {"command": "c"}}
        resp = await c.post("/v0/endpoints", json=body)
        assert resp.status_code == 503, resp.text
        err = resp.json()["error"]
        assert err["code"] == "storage_full" and "full" in err["message"]
        patch = await c.patch(f"/v0/endpoints/{first.json()['id']}", json={"description": "d" * 9000})
        assert patch.status_code == 503 and patch.json()["error"]["code"] == "storage_full"
        async with store.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM endpoints"))).scalar_one() == 1
        assert len(await store.events(first.json()["id"])) == events_before  # no event without its change
        listed = await c.get("/v0/endpoints")
        assert listed.status_code == 200 and [e["name"] for e in listed.json()["endpoints"]] == ["before"]
        assert listed.json()["endpoints"][0]["description"] == ""


async def test_a_failed_write_does_not_carry_its_values_into_messages(served: tuple[str, Store]) -> None:
    """Such messages are logged and may become an endpoint's last_error: no env value, no sealed value."""
    _, store = served
    _fill_up(store)
    await store.engine.dispose()
    with pytest.raises(DBAPIError) as caught:
        await store.add_event("ep-x", "note", "HF_TOKEN=hf_secret_value " * 1000)
    assert "hf_secret_value" not in str(caught.value)
