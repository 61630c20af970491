"""A leader's graceful hand-off (`LeaderLease.lead_until`), on SQLite: at `stop` the term's work ends by
itself (a tick in progress finishes) or is cancelled after the grace, and only then is the lease
released — at once, so a standby leads at its very next attempt, without waiting out the ttl."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from podium.roles.leader import LeaderLease
from podium.store.db import migrate, sqlite_url
from podium.store.repos import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    url = sqlite_url(tmp_path)
    migrate(url)
    s = Store(url)
    try:
        yield s
    finally:
        await s.close()


async def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_stop_lets_the_tick_finish_then_releases_so_a_standby_leads_at_once(store: Store) -> None:
    lease = LeaderLease(store.leases, "a", "http://a")
    standby = LeaderLease(store.leases, "b", "http://b")
    stop, woken = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def work() -> None:  # a controller's term: runs until stop, finishing what it is doing
        seen.append("started")
        await woken.wait()  # `nudge` wakes it (the controller's hint)
        seen.append("held by lease" if (await store.leases.current("controller")) is not None else "released early")
        seen.append("finished")

    async with lease:
        task = asyncio.create_task(lease.lead_until(stop, work, grace_s=10, nudge=woken.set))
        await wait_for(lambda: seen == ["started"])
        await standby.step()
        assert not standby.is_leader
        stop.set()
        await asyncio.wait_for(task, 5)
    assert seen == ["started", "held by lease", "finished"]  # never cancelled; released only after it ended
    assert not lease.is_leader and lease.lost.is_set()
    assert await store.leases.current("controller") is None
    await standby.step()  # its next attempt, the clock unchanged: no ttl to wait out
    assert standby.is_leader


async def test_work_that_does_not_end_is_cancelled_after_the_grace_then_released(store: Store) -> None:
    lease = LeaderLease(store.leases, "a", "http://a")
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    async with lease:
        task = asyncio.create_task(lease.lead_until(stop, stubborn, grace_s=0.2))
        await wait_for(lambda: lease.is_leader)
        stop.set()
        started = time.monotonic()
        await asyncio.wait_for(task, 5)
        assert cancelled.is_set() and time.monotonic() - started >= 0.2
        assert await store.leases.current("controller") is None


async def test_a_standby_stops_at_once_and_never_runs_the_work(store: Store) -> None:
    leader = LeaderLease(store.leases, "a", "http://a")
    await leader.step()
    standby = LeaderLease(store.leases, "b", "http://b")
    stop, ran = asyncio.Event(), []

    async def work() -> None:
        ran.append(1)

    async with standby:
        task = asyncio.create_task(standby.lead_until(stop, work, grace_s=10))
        await asyncio.sleep(0)
        stop.set()
        await asyncio.wait_for(task, 1)  # not the 10 s grace: it had nothing to finish
    assert ran == []
    current = await store.leases.current("controller")
    assert current is not None and current.holder == "a"  # its release touched nobody else's row


async def test_an_error_of_the_work_still_releases_and_propagates(store: Store) -> None:
    lease = LeaderLease(store.leases, "a", "http://a")

    async def broken() -> None:
        raise RuntimeError("boom")

    async with lease:
        with pytest.raises(RuntimeError, match="boom"):
            await asyncio.wait_for(lease.lead_until(asyncio.Event(), broken), 5)
        assert await store.leases.current("controller") is None


class Counted:
    """The real leases, counting the acquire attempts made through it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.attempts = inner, 0

    def __getattr__(self, op: str) -> Any:
        return getattr(self.inner, op)

    async def try_acquire(self, *args: Any) -> bool:
        self.attempts += 1
        return bool(await self.inner.try_acquire(*args))


async def test_a_running_standby_takes_a_released_lease_well_within_the_renew_period(store: Store) -> None:
    leader = LeaderLease(store.leases, "a", "http://a")
    counted = Counted(store.leases)
    standby = LeaderLease(counted, "b", "http://b")
    assert standby.acquire_every_s == 0.5 < standby.renew_every_s  # asks 4 times per renew period
    async with leader:
        await wait_for(lambda: leader.is_leader)
        async with standby:
            await wait_for(lambda: counted.attempts >= 1)  # it asked, and found the lease held
            assert not standby.is_leader
            await leader.resign()
            released = time.monotonic()
            await wait_for(lambda: standby.is_leader, timeout=1.5)  # before: its next try came ttl/3 = 2 s later
            print(f"standby led {time.monotonic() - released:.2f}s after the release")
