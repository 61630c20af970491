"""Admission for one endpoint: replica slots, one bounded FIFO queue, and the scale-from-zero hold.

The one capacity primitive of DESIGN.md: each ready replica has `max_concurrency` slots; a
request takes a slot (least in-flight of two random replicas) or waits in the endpoint's FIFO
queue, bounded by `queue_size` and `queue_timeout_s`. With no ready replica the request is
held in the same queue (it counts as queued, so the autoscaler sees it), the controller is
woken once, and the request proceeds as soon as a route with a ready replica is published.

A slot is a `Lease`; `Lease.release()` is idempotent and is the only way a count goes down, so
a caller that releases in `finally` can never leak a slot or drive a count negative. A freed
slot is handed straight to the head of the queue (no thundering herd, strict FIFO).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable

from podium.gateway.canary import RevisionOutcomes, Split, least_of_two, split_of
from podium.gateway.errors import GatewayError, not_found, stopped, unavailable
from podium.gateway.prefix import PrefixRing
from podium.gateway.routes import PREFIX_CACHE, EndpointRoute, ReplicaRoute

SUSPECT_TTL_S = 5.0  # how long a replica that refused a connection is routed around
FAILED_RETRY_AFTER_S = 30.0  # Retry-After for an endpoint the controller gave up on (an operator must act)

log = logging.getLogger("podium.gateway")


class Lease:
    """One reserved slot on one replica; `release()` gives it back (once, whatever happens)."""

    __slots__ = ("_pool", "_released", "replica", "taken_at")

    def __init__(self, pool: EndpointPool, replica: ReplicaRoute) -> None:
        self._pool = pool
        self.replica = replica
        self._released = False
        self.taken_at = pool._clock()

    def release(self, status: int | None = None) -> None:
        """`status`: what the client got, counted for the replica's revision (canary judging, issue 13)."""
        if not self._released:
            self._released = True
            pool = self._pool
            pool._release(self.replica.replica_id)
            if status is not None:
                pool.outcomes.record(self.replica.revision, status, pool._clock() - self.taken_at)


class _Waiter:
    __slots__ = ("enqueued_at", "future", "gone", "held", "key")

    def __init__(self, future: asyncio.Future[Lease], enqueued_at: float, held: bool, key: int | None) -> None:
        self.future = future
        self.enqueued_at = enqueued_at
        self.key = key  # prompt-prefix hash under the prefix-cache policy, else None
        self.held = held  # True: waiting for a first ready replica (cold start), not for a slot
        self.gone = False  # served, expired or cancelled: skipped by the dispatcher


class EndpointPool:
    """Slots, queue and hold for one endpoint. Survives route updates; counts are per replica id."""

    def __init__(
        self,
        route: EndpointRoute,
        *,
        replica_counts: dict[str, int],
        wake: Callable[[str], None],
        clock: Callable[[], float],
        rng: random.Random,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.route = route
        self.in_flight = 0
        self.queued = 0
        self._per_replica: dict[str, int] = {}
        self._shared = replica_counts  # gateway-wide replica id -> in-flight (for draining)
        self._waiters: deque[_Waiter] = deque()
        self._wake = wake
        self._woken = False
        self._clock = clock
        self._wall = wall_clock
        self._rng = rng
        self._closed: GatewayError | None = None
        # Replicas that refused a connection: routed around until the controller republishes without
        # them or SUSPECT_TTL_S passes (a blip must not exclude a replica for good).
        self._suspects: dict[str, asyncio.TimerHandle] = {}
        self._usable: tuple[ReplicaRoute, ...] = route.replicas
        self._ring: PrefixRing | None = None  # built lazily for the usable set, prefix-cache only
        self._by_id: dict[str, ReplicaRoute] = {}
        self._split: Split | None = None  # a canary's two sides (gateway/canary.py)
        self.outcomes = RevisionOutcomes()  # per revision: requests, errors, latency
        self._refresh_usable()

    # -- slots ---------------------------------------------------------------------------
    def try_reserve(self, exclude: frozenset[str] | set[str] = frozenset(), key: int | None = None) -> Lease | None:
        """A slot now, or None when all are full: on the replica owning `key` on the prefix ring
        (bounded load, spilling clockwise) when given, else the less loaded of two random replicas.
        A canary's split comes first: its side, then any replica when that side is full."""
        if self._split is not None and not exclude:
            chosen = least_of_two(self._split.side(self._rng), self._per_replica, self.route.max_concurrency, self._rng)
            if chosen is not None:
                return self._take(chosen)
        if key is not None and (self.route.routing_policy == PREFIX_CACHE or self.route.adapters):
            # an adapter's requests carry its key (gateway/routing.py) on any policy: the replica that
            # served it already holds it loaded (issue 20)
            return self._reserve_by_prefix(key, exclude)
        replicas = self._usable
        cap = self.route.max_concurrency
        counts = self._per_replica
        n = len(replicas)
        if n == 1 and not exclude:
            only = replicas[0]
            return self._take(only) if counts.get(only.replica_id, 0) < cap else None
        if n == 0:
            return None
        if not exclude:
            i = self._rng.randrange(n)
            j = self._rng.randrange(n - 1)
            if j >= i:
                j += 1
            a, b = replicas[i], replicas[j]
            best = a if counts.get(a.replica_id, 0) <= counts.get(b.replica_id, 0) else b
            if counts.get(best.replica_id, 0) < cap:
                return self._take(best)
        candidates = [r for r in replicas if r.replica_id not in exclude]
        if not candidates:
            return None
        least = min(candidates, key=lambda r: counts.get(r.replica_id, 0))
        return self._take(least) if counts.get(least.replica_id, 0) < cap else None

    def _reserve_by_prefix(self, key: int, exclude: frozenset[str] | set[str]) -> Lease | None:
        ring = self._ring
        if ring is None:
            self._by_id = {r.replica_id: r for r in self._usable}
            ring = self._ring = PrefixRing(self._by_id)
        rid = ring.choose(key, self._per_replica, cap=self.route.max_concurrency, exclude=exclude)
        return None if rid is None else self._take(self._by_id[rid])

    def _take(self, replica: ReplicaRoute) -> Lease:
        rid = replica.replica_id
        self._per_replica[rid] = self._per_replica.get(rid, 0) + 1
        self._shared[rid] = self._shared.get(rid, 0) + 1
        self.in_flight += 1
        return Lease(self, replica)

    def _release(self, rid: str) -> None:
        left = self._per_replica[rid] - 1
        if left:
            self._per_replica[rid] = left
        else:
            del self._per_replica[rid]
        shared_left = self._shared[rid] - 1
        if shared_left:
            self._shared[rid] = shared_left
        else:
            del self._shared[rid]
        self.in_flight -= 1
        if self.queued:
            self._dispatch()

    # -- queue ---------------------------------------------------------------------------
    async def acquire(self, key: int | None = None) -> Lease:
        """A slot, now or after waiting in FIFO order; raises GatewayError (503/404) instead."""
        if self._closed is not None:
            raise self._closed.clone()
        if not self.queued:
            lease = self.try_reserve(key=key)
            if lease is not None:
                return lease
        route = self.route
        held = not self._usable
        if held and (failure := self._failure()) is not None:
            self._maybe_wake()  # a planned retry may need a replica wanted (scale from zero)
            raise failure
        if self.queued >= self._queue_bound():
            raise unavailable(
                f"endpoint {route.routing_key!r} is at capacity: {self.queued} requests already queued",
                retry_after=1,
                code="queue_full",
            )
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), self._clock(), held, key)
        self._waiters.append(waiter)
        self.queued += 1
        if held:
            self._maybe_wake()
        timeout = route.cold_start_timeout_s if held else route.queue_timeout_s
        timer = loop.call_later(timeout, self._expire, waiter)
        try:
            return await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                future.result().release()  # handed a slot in the same tick we were cancelled
            raise
        finally:
            timer.cancel()
            self._leave(waiter)

    def _queue_bound(self) -> int:
        # queue_size 0 means "no queueing"; a cold start still holds up to max_concurrency requests
        route = self.route
        if route.queue_size > 0 or self._usable:
            return route.queue_size
        return route.max_concurrency

    def _leave(self, waiter: _Waiter) -> None:
        if not waiter.gone:
            waiter.gone = True
            self.queued -= 1

    def _expire(self, waiter: _Waiter) -> None:
        if waiter.future.done():
            return
        self._leave(waiter)
        key = self.route.routing_key
        if waiter.held and not self._usable:
            self._woken = False  # the next request asks again
            err = unavailable(
                f"endpoint {key!r} has no ready replica after {self.route.cold_start_timeout_s:g}s "
                "(cold start timeout); retry later",
                retry_after=5,
                code="cold_start_timeout",
            )
        else:
            err = unavailable(
                f"endpoint {key!r} is busy: no free slot within the queue timeout",
                retry_after=1,
                code="queue_timeout",
            )
        waiter.future.set_exception(err)

    def _dispatch(self) -> None:
        """Hand free slots to the head of the queue, in order, while there are any."""
        waiters = self._waiters
        while waiters:
            head = waiters[0]
            if head.gone or head.future.done():
                waiters.popleft()
                self._leave(head)
                continue
            lease = self.try_reserve(key=head.key)
            if lease is None:
                return
            waiters.popleft()
            self._leave(head)
            head.future.set_result(lease)

    def oldest_wait_s(self, now: float) -> float:
        waiters = self._waiters
        while waiters and waiters[0].gone:
            waiters.popleft()
        return max(0.0, now - waiters[0].enqueued_at) if waiters else 0.0

    # -- control side --------------------------------------------------------------------
    def update(self, route: EndpointRoute) -> None:
        """A new route for this endpoint (replicas, limits, enabled); waiters move on at once."""
        if route.failure is not None and route != self.route:
            self._woken = False  # the next request asks for a retry again
        self.route = route
        listed = {r.replica_id for r in route.replicas}
        for rid in [rid for rid in self._suspects if rid not in listed]:
            self._suspects.pop(rid).cancel()
        self._refresh_usable()
        if not route.enabled:
            self.close(stopped(f"endpoint {route.routing_key!r}"))
            return
        self._closed = None
        failure = None if self._usable else self._failure()
        if failure is not None:
            self._fail_waiters(failure)  # held for a replica that will not come: answer now
            return
        if self._usable:
            self._woken = False
            if self.queued:
                self._dispatch()
        elif self.queued:
            self._maybe_wake()

    # -- unreachable replicas -------------------------------------------------------------
    def suspect(self, replica_id: str) -> None:
        """`replica_id` refused a connection (it crashed; the controller will notice within a second):
        stop choosing it, so requests wait for a working replica (held, as in a cold start) instead of
        failing with 502 in the window before the controller republishes."""
        if replica_id in self._suspects:
            return
        loop = asyncio.get_running_loop()
        self._suspects[replica_id] = loop.call_later(SUSPECT_TTL_S, self._unsuspect, replica_id)
        self._refresh_usable()
        if not self._usable and self.queued:
            self._maybe_wake()

    def _unsuspect(self, replica_id: str) -> None:
        self._suspects.pop(replica_id, None)
        self._refresh_usable()
        if self._usable and self.queued:
            self._dispatch()

    def _refresh_usable(self) -> None:
        self._ring = None  # rebuilt on the next prefix-routed request
        replicas = self.route.replicas
        self._usable = tuple(r for r in replicas if r.replica_id not in self._suspects) if self._suspects else replicas
        busy = self.route.engine_busy  # long engine queues (controller/engine_metrics.py): avoided while others serve
        if busy and (calm := tuple(r for r in self._usable if r.replica_id not in busy)):
            self._usable = calm
        self._split = split_of(self.route, self._usable)  # canary (issue 13)

    def _failure(self) -> GatewayError | None:
        """503 `endpoint_failed` naming the controller's reason, when the route says waiting won't help."""
        route = self.route
        if route.failure is None:
            return None
        if route.failure_retry_at is None:
            retry_after = FAILED_RETRY_AFTER_S
        else:
            retry_after = min(60.0, max(1.0, route.failure_retry_at - self._wall()))
        return unavailable(
            f"endpoint {route.routing_key!r} cannot serve: {route.failure}",
            retry_after=retry_after,
            code="endpoint_failed",
        )

    def close(self, error: GatewayError) -> None:
        """Fail every waiter with `error` (endpoint stopped or deleted); leases in use stay valid."""
        self._closed = error
        self._fail_waiters(error)

    def _fail_waiters(self, error: GatewayError) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.gone and not waiter.future.done():
                self._leave(waiter)
                waiter.future.set_exception(error.clone())

    def deleted(self) -> None:
        self.close(not_found(f"endpoint {self.route.routing_key!r} was deleted"))

    def _maybe_wake(self) -> None:
        if self._woken:
            return
        self._woken = True
        try:
            self._wake(self.route.endpoint_id)
        except Exception:  # a failing hook must not fail the request; the hold still times out
            log.exception("wake hook failed for %s", self.route.endpoint_id)
