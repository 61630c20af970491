"""LeaderLease and LeaderLocator logic on SQLite with an injected clock: one leader at a time, renewal,
fencing (a leader that cannot renew steps down by its own deadline, even while the database hangs),
`lead(work)` starting and cancelling the work, and the locator following a new leader."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from podium.roles.leader import LeaderLease, LeaderLocator, holder_id
from podium.store.db import migrate, sqlite_url
from podium.store.leases import LeaseHolder
from podium.store.repos import Store


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Faulty:
    """Wraps the real leases; `broken` makes every call fail, `hang` makes every call wait forever."""

    def __init__(self, inner: object) -> None:
        self.inner, self.broken, self.hang = inner, False, False

    def __getattr__(self, op: str):  # type: ignore[no-untyped-def]
        real = getattr(self.inner, op)

        async def call(*args: object, **kwargs: object) -> object:
            if self.hang:
                await asyncio.Event().wait()
            if self.broken:
                raise OSError("database unreachable")
            return await real(*args, **kwargs)

        return call


async def wait_until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = sqlite_url(tmp_path)
    migrate(url)
    s = Store(url)
    try:
        yield s
    finally:
        await s.close()


async def test_one_leads_renews_and_the_other_takes_over_only_after_expiry(store: Store) -> None:
    clock = Clock()
    lost: list[str] = []
    a = LeaderLease(store.leases, "a", "http://a", clock=clock, on_lost=lambda: lost.append("a"))
    b = LeaderLease(store.leases, "b", "http://b", clock=clock)
    await a.step()
    await b.step()
    assert a.is_leader and a.became_leader.is_set() and not b.is_leader and a.term == 1
    for _ in range(5):  # a renews every ttl/3; b never gets it
        clock.now += a.renew_every_s
        await a.step()
        await b.step()
        assert a.is_leader and not b.is_leader
    clock.now += 5.4  # a stalls (no step): still within ttl - skew of its last renewal
    a.check_deadline()
    assert a.is_leader
    clock.now += 0.1  # ttl - skew reached: a fences itself before the row expires
    a.check_deadline()
    assert not a.is_leader and a.lost.is_set() and lost == ["a"]
    await b.step()
    assert not b.is_leader  # the row itself has not expired yet
    clock.now += 0.5
    await b.step()
    assert b.is_leader
    await a.step()
    assert not a.is_leader


async def test_a_leader_whose_lease_was_taken_steps_down_at_its_next_renewal(store: Store) -> None:
    clock = Clock()
    ahead = Clock(clock.now + 7)  # b's clock runs 7 s ahead: to b, a's lease has expired
    a = LeaderLease(store.leases, "a", "http://a", clock=clock)
    b = LeaderLease(store.leases, "b", "http://b", clock=ahead)
    await a.step()
    await b.step()
    assert a.is_leader and b.is_leader  # what clock skew beyond skew_s allows (docs: keep clocks in NTP)
    clock.now += a.renew_every_s
    await a.step()  # the row says b: a's renewal fails and a steps down at once
    assert not a.is_leader and a.lost.is_set()


async def test_database_errors_keep_the_leader_only_until_its_deadline(store: Store) -> None:
    clock = Clock()
    faulty = Faulty(store.leases)
    a = LeaderLease(faulty, "a", "http://a", clock=clock)
    await a.step()
    assert a.is_leader
    faulty.broken = True
    clock.now += 2
    await a.step()
    assert a.is_leader  # a failed renewal alone is not the end: the lease is still ours
    clock.now += 3.5  # 5.5 s after the last good renewal = ttl - skew
    await a.step()
    assert not a.is_leader and a.lost.is_set()
    faulty.broken = False
    await a.step()  # the row is still a's (nobody took it): a wins it back, as a new term
    assert a.is_leader and a.term == 2 and not a.lost.is_set()


async def test_a_hanging_database_cannot_hold_off_fencing(store: Store) -> None:
    """Real clock and loop: the renew call never returns; the leader still steps down within its ttl."""
    faulty = Faulty(store.leases)
    async with LeaderLease(faulty, "a", "http://a", ttl_s=0.9, skew_s=0.1) as a:
        await asyncio.wait_for(a.wait_leader(), 5)
        faulty.hang = True
        hung_at = time.monotonic()
        await asyncio.wait_for(a.lost.wait(), 5)
        assert time.monotonic() - hung_at < 0.9
        assert not a.is_leader


async def test_lead_runs_work_while_leading_and_cancels_it_at_step_down(store: Store) -> None:
    clock = Clock()
    a = LeaderLease(store.leases, "a", "http://a", clock=clock)
    started, cancelled = [], []

    async def work() -> None:
        started.append(a.term)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(a.term)
            raise

    leading = asyncio.create_task(a.lead(work))
    await asyncio.sleep(0.05)
    assert started == []  # not leader: the controller loop does not run
    await a.step()
    await wait_until(lambda: started == [1])
    clock.now += 6
    a.check_deadline()
    await wait_until(lambda: cancelled == [1])
    await a.step()  # wins again (expired, free): a new term, the work restarts
    await wait_until(lambda: started == [1, 2])
    leading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leading
    assert cancelled == [1, 2]


async def test_lead_returns_when_work_returns_and_propagates_its_error(store: Store) -> None:
    a = LeaderLease(store.leases, "a", "http://a", clock=Clock())
    await a.step()

    async def fails() -> None:
        raise RuntimeError("controller crashed")

    with pytest.raises(RuntimeError, match="controller crashed"):
        await asyncio.wait_for(a.lead(fails), 5)


async def test_exit_releases_the_lease_so_a_successor_need_not_wait(store: Store) -> None:
    async with LeaderLease(store.leases, "a", "http://a") as a:
        await asyncio.wait_for(a.wait_leader(), 5)
        assert (await store.leases.current("controller")) is not None
    assert not a.is_leader
    assert await store.leases.current("controller") is None


async def test_locator_caches_and_follows_a_new_leader(store: Store) -> None:
    clock = Clock()
    reads: list[LeaseHolder | None] = []
    leases = store.leases

    class Counting:
        async def current(self, name: str) -> LeaseHolder | None:
            reads.append(found := await leases.current(name))
            return found

    locator = LeaderLocator(Counting(), clock=clock)  # type: ignore[arg-type]
    assert await locator.url() is None  # nobody leads yet
    assert await leases.try_acquire("controller", "a", "http://a:7000", 6, clock.now)
    assert await locator.url() == "http://a:7000"
    assert await locator.url() == "http://a:7000"
    assert len(reads) == 2  # the second answer came from the cache
    clock.now += 6  # a died: its lease expired; the cached answer is no longer trusted
    assert await locator.url() is None
    assert await leases.try_acquire("controller", "b", "http://b:7000", 6, clock.now)
    locator.invalidate()  # a request to the old leader failed
    assert await locator.url() == "http://b:7000"
    assert await locator.wait_url(1) == "http://b:7000"


def test_holder_ids_are_unique_per_process_start() -> None:
    assert holder_id() != holder_id()
