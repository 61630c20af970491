"""Who leads among several controllers, and where followers find it.

`LeaderLease` holds the `controller` lease row (podium.store.leases): it takes it when free or expired
and renews it every ttl/3. Fencing is its contract: a leader that has not renewed by `started + ttl -
skew_s` (timed from BEFORE its last successful write, so never later than the row's `expires_at`) steps
down on its own clock — even while its database call still hangs — so two controllers never both act.
Composition runs the controller's work under `await lease.lead(work)`: `work` starts each time this
process becomes leader and is cancelled the moment it steps down.

`LeaderLocator` is for `--role api|gateway` without `--controller-url`: it reads the current leader's
URL from the same row, caches it for a few seconds, and reads again after `invalidate()` (a request to
the controller failed), so a follower follows a failover by itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol

from podium.store.leases import LeaseHolder

log = logging.getLogger("podium.roles")

CONTROLLER_LEASE = "controller"
DEFAULT_TTL_S = 6.0  # renewed every 2 s; a dead leader is replaced within ttl + one acquire tick (< 10 s)

Clock = Callable[[], float]


def holder_id() -> str:
    """A holder name unique to this process start: two controllers sharing one (say, the advertise URL
    after a fast restart) would both count as holding the lease, so it must never be reused."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"


class LeaseStore(Protocol):
    """What the lease needs of the store (`Store.leases`); a protocol so unit tests can fault it."""

    async def try_acquire(self, name: str, holder: str, url: str, ttl_s: float, now: float) -> bool: ...
    async def renew(self, name: str, holder: str, ttl_s: float, now: float) -> bool: ...
    async def release(self, name: str, holder: str) -> bool: ...
    async def current(self, name: str) -> LeaseHolder | None: ...


class LeaderLease:
    """Acquire-and-renew loop for one process. Use as `async with lease:` (starts the loop; on exit stops
    it and releases the lease so a successor need not wait out the ttl), then `await lease.lead(work)`.

    State: `is_leader`; `became_leader` is set while leading; `lost` is set once leadership ended (cleared
    when it is won again); `term` counts leaderships; `on_lost` is called at each step-down."""

    def __init__(
        self,
        leases: LeaseStore,
        holder: str,
        url: str,
        *,
        name: str = CONTROLLER_LEASE,
        ttl_s: float = DEFAULT_TTL_S,
        skew_s: float = 0.5,
        clock: Clock = time.time,
        on_lost: Callable[[], None] | None = None,
        acquire_every_s: float = 0.5,
    ) -> None:
        if skew_s >= ttl_s / 2:
            raise ValueError("skew_s must be well below ttl_s")
        self.leases, self.holder, self.url, self.name = leases, holder, url, name
        self.ttl_s, self.skew_s, self.clock, self.on_lost = ttl_s, skew_s, clock, on_lost
        # a standby asks this often (one statement that changes nothing while the lease is held), so a
        # leader's release at a hand-off is taken within it; an expiry still takes the ttl
        self.acquire_every_s = min(acquire_every_s, self.renew_every_s)
        self.became_leader = asyncio.Event()
        self.lost = asyncio.Event()
        self.term = 0
        self._deadline = 0.0  # our clock: when we must stop acting as leader unless renewed
        self._loop_task: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self.became_leader.is_set()

    @property
    def renew_every_s(self) -> float:
        return self.ttl_s / 3

    # --- one attempt --------------------------------------------------------------------------

    async def step(self) -> None:
        """One acquire (follower) or renew (leader) attempt, then fencing. A database error counts as a
        failed renewal: the leader keeps acting only until its deadline."""
        started = self.clock()
        self.check_deadline()
        try:
            if self.is_leader:
                ok = await self.leases.renew(self.name, self.holder, self.ttl_s, started)
            else:
                ok = await self.leases.try_acquire(self.name, self.holder, self.url, self.ttl_s, started)
        except Exception as exc:  # the database is away: retry next tick, fenced by the deadline
            log.warning("lease %s: %s failed: %s", self.name, "renew" if self.is_leader else "acquire", exc)
            self.check_deadline()
            return
        self._settle(ok, started)

    def _settle(self, ok: bool, started: float) -> None:
        deadline = started + self.ttl_s - self.skew_s
        if ok and self.clock() < deadline:
            self._deadline = deadline
            if not self.is_leader:
                self._become_leader()
        elif self.is_leader:
            self.step_down("the lease was lost (expired or taken)" if not ok else "renewed too late")

    def check_deadline(self) -> None:
        """Fencing: past the deadline a leader steps down whatever its database call is doing."""
        if self.is_leader and self.clock() >= self._deadline:
            self.step_down("could not renew the lease before it expired")

    def _become_leader(self) -> None:
        self.term += 1
        log.info("lease %s: %s leads (term %d, %s)", self.name, self.holder, self.term, self.url)
        self.lost.clear()
        self.became_leader.set()

    def step_down(self, why: str) -> None:
        if not self.is_leader:
            return
        log.warning("lease %s: %s steps down: %s", self.name, self.holder, why)
        self.became_leader.clear()
        self.lost.set()
        if self.on_lost is not None:
            self.on_lost()

    # --- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Forever: step, then wait ttl/3 (leading) or `acquire_every_s` (a standby). A step that hangs is
        abandoned at the deadline (not awaited: cancelling a stuck database call may itself hang), so
        fencing never waits on the database."""
        while True:
            attempt = asyncio.create_task(self.step())
            await asyncio.wait({attempt}, timeout=self._time_left() if self.is_leader else self.ttl_s)
            if not attempt.done():
                attempt.cancel()
                self.check_deadline()
            pause = self.acquire_every_s
            if self.is_leader:
                pause = min(self.renew_every_s, self._time_left())
            await asyncio.sleep(max(0.0, pause))

    def _time_left(self) -> float:
        return max(0.0, self._deadline - self.clock())

    async def __aenter__(self) -> LeaderLease:
        self._loop_task = asyncio.create_task(self.run(), name=f"lease-{self.name}")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.resign()

    async def resign(self) -> None:
        """Stop contending; if leading, step down and release the row at once, so a successor takes it at
        its next acquire (ttl/3) instead of waiting out the ttl. Call it only once the work has stopped."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self.is_leader:
            self.step_down("shutting down")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.leases.release(self.name, self.holder), timeout=self.ttl_s / 3)

    # --- what the composition calls -----------------------------------------------------------

    async def wait_leader(self) -> None:
        await self.became_leader.wait()

    async def lead(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work()` while this process leads: started at each won term, cancelled at each step-down.
        Returns when `work` returns; its exception propagates."""
        while True:
            await self.wait_leader()
            worker = asyncio.ensure_future(work())
            fenced = asyncio.create_task(self.lost.wait())
            try:
                await asyncio.wait({worker, fenced}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                fenced.cancel()
                if not worker.done():
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
            if not worker.cancelled():
                worker.result()
                return

    async def lead_until(
        self,
        stop: asyncio.Event,
        work: Callable[[], Awaitable[None]],
        *,
        grace_s: float = 3.0,
        nudge: Callable[[], None] | None = None,
    ) -> None:
        """`lead(work)` until `stop`, then hand off (a rolling restart of the controllers): the term's work
        gets `grace_s` to end by itself (it watches `stop`; `nudge` wakes it, so a tick in progress
        finishes rather than being cut), is cancelled past that, and only then is the lease released.
        The work decides what happens to what it runs; the lease only guarantees no overlap."""
        leading = asyncio.ensure_future(self.lead(work))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({leading, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not leading.done() and self.is_leader:
                if nudge is not None:
                    nudge()
                began = time.monotonic()
                await asyncio.wait({leading}, timeout=grace_s)
                how = "ended" if leading.done() else f"cut after the {grace_s:g} s grace"
                log.info("lease %s: handing off: the term %s in %.2f s", self.name, how, time.monotonic() - began)
        finally:
            stopping.cancel()
            if not leading.done():
                leading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await leading
            await self.resign()
        if not leading.cancelled():
            leading.result()


class LeaderLocator:
    """Where the current leader is reached, read from the lease row. Cached for `refresh_s`; call
    `invalidate()` when a request to it failed, then `url()` again (a failover shows once the dead
    leader's lease expires and the next one takes it)."""

    def __init__(
        self, leases: LeaseStore, *, name: str = CONTROLLER_LEASE, refresh_s: float = 3.0, clock: Clock = time.time
    ) -> None:
        self.leases, self.name, self.refresh_s, self.clock = leases, name, refresh_s, clock
        self._known: LeaseHolder | None = None
        self._read_at = float("-inf")

    def invalidate(self) -> None:
        self._read_at = float("-inf")

    async def url(self) -> str | None:
        """The live leader's URL; None while nobody holds an unexpired lease. On a database error the
        last URL known is returned (the controller may well still be there)."""
        now = self.clock()
        if now - self._read_at >= self.refresh_s or self._known is None or self._known.expires_at <= now:
            try:
                self._known = await self.leases.current(self.name)
                self._read_at = now
            except Exception as exc:
                log.warning("leader locator: reading lease %s failed: %s", self.name, exc)
                return None if self._known is None else self._known.url
        if self._known is None or self._known.expires_at <= now:
            return None
        return self._known.url

    async def wait_url(self, timeout_s: float, poll_s: float = 0.2) -> str:
        """Poll until a leader is known (a failover in progress), up to `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = await self.url()
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no controller holds the {self.name} lease")
            self.invalidate()
            await asyncio.sleep(poll_s)
