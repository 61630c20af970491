"""PostgreSQL as the store (PODIUM_DATABASE_URL): migrations, the repositories, and `podium up` end to end
with a restart that loses nothing. Skipped where no PostgreSQL server binaries are installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podium.core.specs import ContainerSource, EndpointSpec
from podium.services.endpoints import EndpointService
from podium.services.validation import SourceValidator
from podium.store.db import migrate
from podium.store.repos import Store
from tests.conftest import free_port
from tests.e2e.conftest import assert_no_replicas_left, create_fake, start_podium, stop_podium
from tests.store.postgres import pg_bin, postgres_server

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries (initdb) here")


async def test_repositories_on_postgres() -> None:
    with postgres_server(free_port()) as url:
        migrate(url)
        migrate(url)  # idempotent
        store = Store(url)
        svc = EndpointService(store, lambda _=None: None, SourceValidator(None, "local"))
        created = await svc.create(EndpointSpec(name="pg", container=ContainerSource(command="x")), "container")
        eid = created.record.row.id
        assert (await svc.get(eid)).row.routing_key == created.record.row.routing_key
        await svc.set_enabled(eid, False)
        assert [e.kind for e in await store.events(eid)] == ["stopped", "created"]
        await store.close()


def test_podium_up_on_postgres_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with postgres_server(free_port()) as url:
        monkeypatch.setenv("PODIUM_DATABASE_URL", url)
        data_dir, port = tmp_path / "data", free_port()
        p = start_podium(data_dir, port)
        try:
            ep = create_fake(p, "on-pg")
            p.wait_state(ep["id"], "serving")
        finally:
            stop_podium(p)
        assert not (data_dir / "podium.db").exists() or os.path.getsize(data_dir / "podium.db") == 0
        p = start_podium(data_dir, port)
        try:
            again = p.wait_state(ep["id"], "serving", timeout=30)  # desired state came back from PostgreSQL
            assert again["routing_key"] == ep["routing_key"]
        finally:
            stop_podium(p)
        assert_no_replicas_left(p.mark)


async def test_admission_lock_excludes_other_processes_on_postgres() -> None:
    """Two stores (two api processes) on one database: the advisory lock lets one in at a time."""
    import asyncio

    with postgres_server(free_port()) as url:
        migrate(url)
        a, b = Store(url), Store(url)
        order: list[str] = []

        async def hold(store: Store, name: str) -> None:
            async with store.admission():
                order.append(f"{name} in")
                await asyncio.sleep(0.2)
                order.append(f"{name} out")

        await asyncio.gather(hold(a, "a"), hold(b, "b"))
        assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
        await a.close()
        await b.close()
