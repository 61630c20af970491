"""The lease table: acquire when free, expired or ours; renew only while held; release; and on PostgreSQL
many concurrent acquirers on separate connections — exactly one wins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store
from podium.store.tables import LeaseRow
from tests.conftest import free_port
from tests.store.postgres import pg_bin, postgres_server


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = sqlite_url(tmp_path)
    migrate(url)
    s = Store(url)
    try:
        yield s
    finally:
        await s.close()


async def test_acquire_when_free_refused_while_held_taken_once_expired(store: Store) -> None:
    leases = store.leases
    assert await leases.current("controller") is None
    assert await leases.try_acquire("controller", "a", "http://a", ttl_s=6, now=100.0)
    assert await leases.current("controller") == ("a", "http://a", 106.0)
    assert not await leases.try_acquire("controller", "b", "http://b", ttl_s=6, now=105.9)
    assert await leases.try_acquire("controller", "a", "http://a", ttl_s=6, now=105.0)  # ours: extended
    assert await leases.current("controller") == ("a", "http://a", 111.0)
    assert not await leases.try_acquire("controller", "b", "http://b", ttl_s=6, now=110.9)
    assert await leases.try_acquire("controller", "b", "http://b", ttl_s=6, now=111.0)  # expired: b takes it
    assert await leases.current("controller") == ("b", "http://b", 117.0)
    assert await leases.current("other") is None  # names are independent
    async with store.session() as s:
        assert (await s.get(LeaseRow, "controller")).acquired_at == 111.0  # type: ignore[union-attr]


async def test_extending_keeps_acquired_at(store: Store) -> None:
    assert await store.leases.try_acquire("controller", "a", "http://a", ttl_s=6, now=100.0)
    assert await store.leases.try_acquire("controller", "a", "http://a", ttl_s=6, now=104.0)
    async with store.session() as s:
        assert (await s.get(LeaseRow, "controller")).acquired_at == 100.0  # type: ignore[union-attr]


async def test_renew_only_while_held_and_unexpired(store: Store) -> None:
    leases = store.leases
    assert not await leases.renew("controller", "a", ttl_s=6, now=100.0)  # nothing to renew
    assert await leases.try_acquire("controller", "a", "http://a", ttl_s=6, now=100.0)
    assert await leases.renew("controller", "a", ttl_s=6, now=104.0)
    assert await leases.current("controller") == ("a", "http://a", 110.0)
    assert not await leases.renew("controller", "b", ttl_s=6, now=104.0)  # not b's
    assert not await leases.renew("controller", "a", ttl_s=6, now=110.0)  # expired: a must step down


async def test_release_frees_it_at_once_for_its_holder_only(store: Store) -> None:
    leases = store.leases
    assert await leases.try_acquire("controller", "a", "http://a", ttl_s=6, now=100.0)
    assert not await leases.release("controller", "b")
    assert await leases.release("controller", "a")
    assert await leases.current("controller") is None
    assert await leases.try_acquire("controller", "b", "http://b", ttl_s=6, now=100.1)


@pytest.mark.skipif(pg_bin() is None, reason="no PostgreSQL server binaries (initdb) here")
async def test_concurrent_acquirers_on_postgres_exactly_one_wins() -> None:
    with postgres_server(free_port()) as url:
        migrate(url)
        stores = [Store(url) for _ in range(6)]
        try:
            for round_now in (100.0, 200.0, 300.0):  # free, then expired twice: a fresh race each time
                wins = await asyncio.gather(
                    *(
                        s.leases.try_acquire("controller", f"h{i}", f"http://h{i}", 6, round_now)
                        for i, s in enumerate(stores)
                    )
                )
                assert sum(wins) == 1, wins
                winner = wins.index(True)
                assert await stores[0].leases.current("controller") == (
                    f"h{winner}",
                    f"http://h{winner}",
                    round_now + 6,
                )
        finally:
            for s in stores:
                await s.close()
