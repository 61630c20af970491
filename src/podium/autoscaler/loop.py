"""The autoscaler loop: gather stats from every gateway, decide per endpoint, write desired counts.

It is the only writer of desired replica counts. Each tick it reads the scaling targets from the
store, merges the stats of all gateways (`EndpointStats.merge`), runs the pure `decide` per
endpoint with the state it keeps for that endpoint, writes the counts that changed, and wakes the
controller once. A failing endpoint or gateway is logged and skipped; the tick goes on.

`wake()` is the gateway's fast path for a request that arrives at zero replicas: it returns at
once, writes desired >= 1 in a task (one per endpoint at a time), and wakes the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from podium.autoscaler.context import Decision, ScalingContext, Tuning
from podium.autoscaler.decide import ScalerState, decide, note_wake
from podium.core.specs import ScalePolicyKind, Scaling
from podium.core.stats import EndpointStats, EngineLoad

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.25  # a breach is seen within 0.25 s, written and hinted well inside 1 s
# While no endpoint has traffic or replicas (all at 0, min 0, no gateway stats) nothing can breach: the
# first request comes through `wake`, at once. Tick this often then (an idle `podium up` costs less).
QUIET_INTERVAL_S = 1.0
SOURCE_TIMEOUT_FACTOR = 2.0  # a gateway slower than 2 ticks counts as missing for that tick


@dataclass(frozen=True)
class ScalingTarget:
    """One endpoint as the store knows it: its scaling spec and the replica counts right now."""

    endpoint_id: str
    scaling: Scaling
    enabled: bool
    desired_replicas: int
    live_replicas: int
    ready_replicas: int


class ScalingStore(Protocol):
    async def scaling_targets(self) -> list[ScalingTarget]:
        """Every endpoint that is not being deleted."""
        ...

    async def set_desired(self, endpoint_id: str, desired: int, reason: str) -> None:
        """Record the desired count and why (the lead's store also writes an event)."""
        ...


StatsSource = Callable[[], Awaitable[Mapping[str, EndpointStats]]]
EngineSource = Callable[[str], EngineLoad | None]  # endpoint id -> its engines' load now (engine_metrics.py)


class Autoscaler:
    def __init__(
        self,
        store: ScalingStore,
        sources: Sequence[StatsSource],
        on_change: Callable[[], None],
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        tuning: Tuning = Tuning(),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        engine: EngineSource | None = None,
        replica_engine: Callable[[str], dict[str, Any] | None] | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._replica_engine = replica_engine
        self._sources = list(sources)
        self._on_change = on_change
        self._interval_s = interval_s
        self._tuning = tuning
        self._clock = clock
        self._wall = wall
        self._states: dict[str, ScalerState] = {}
        self._decisions: dict[str, Decision] = {}
        self._targets: dict[str, ScalingTarget] = {}
        self._waking: dict[str, asyncio.Task[None]] = {}
        self._failed_reads = 0  # consecutive ticks with a missing gateway: log the first, then every 10 s
        self.quiet = False  # the last tick found nothing to scale: see QUIET_INTERVAL_S
        self._woken = asyncio.Event()  # a wake-up ends a quiet pause

    def engine_queue_limit(self, endpoint_id: str) -> float | None:
        """The endpoint's `engine-queue=N` (the gateway avoids replicas with N waiting), else None."""
        target = self._targets.get(endpoint_id)
        policy = target.scaling.scale_policy if target is not None else None
        return policy.value if policy is not None and policy.kind is ScalePolicyKind.ENGINE_QUEUE else None

    def replica_engine(self, replica_id: str) -> dict[str, Any] | None:
        """The replica's latest engine sample (for `endpoint get`), when engine metrics are scraped here."""
        return self._replica_engine(replica_id) if self._replica_engine is not None else None

    def endpoint_engine(self, endpoint_id: str) -> EngineLoad | None:
        """The endpoint's engines together, as the policies read them (for `endpoint get`)."""
        return self._engine(endpoint_id) if self._engine is not None else None

    def last_decision(self, endpoint_id: str) -> Decision | None:
        """The latest decision and its reason, for `endpoint get` (None before the first tick)."""
        return self._decisions.get(endpoint_id)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every `interval_s` until `stop` is set; a failing tick is logged, never fatal."""
        while not stop.is_set():
            started = self._clock()
            try:
                await self.tick()
            except Exception:
                log.exception("autoscaler tick failed")
            every = max(self._interval_s, QUIET_INTERVAL_S) if self.quiet else self._interval_s
            pause = max(0.0, every - (self._clock() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pause(stop), timeout=pause)
        for task in list(self._waking.values()):
            task.cancel()

    async def _pause(self, stop: asyncio.Event) -> None:
        """Until stopped, or until a wake-up (traffic is coming: tick at the usual pace). A wake-up during
        a tick ends the pause after it at once."""
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._woken.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            self._woken.clear()

    async def tick(self) -> None:
        """One pass over all endpoints."""
        stats, complete = await self._gather_stats()
        targets = await self._store.scaling_targets()
        now, wall_now = self._clock(), self._wall()
        changed = False
        for target in targets:
            try:
                changed |= await self._tick_one(target, stats.get(target.endpoint_id), complete, now, wall_now)
            except Exception:
                log.exception("autoscaler: endpoint %s failed this tick", target.endpoint_id)
        self._forget_missing({t.endpoint_id for t in targets})
        self.quiet = complete and all(_quiet(t) and _untouched(stats.get(t.endpoint_id)) for t in targets)
        if changed:
            self._on_change()

    def wake(self, endpoint_id: str) -> None:
        """A request is held at zero replicas: ask for one now. Returns at once; deduplicated."""
        now = self._clock()
        self.quiet = False
        self._woken.set()
        self._states[endpoint_id] = note_wake(self._states.get(endpoint_id), now, self._tuning)
        known = self._targets.get(endpoint_id)
        if known is not None and known.desired_replicas >= 1:
            # Already asked for. A gateway holding requests with replicas desired means they are not
            # answering (crashed, still booting): let the controller look now rather than at its resync.
            self._on_change()
            return
        if endpoint_id in self._waking:
            return
        task = asyncio.get_running_loop().create_task(self._wake(endpoint_id))
        self._waking[endpoint_id] = task
        task.add_done_callback(lambda _t: self._waking.pop(endpoint_id, None))

    async def _wake(self, endpoint_id: str) -> None:
        try:
            target = self._targets.get(endpoint_id)
            if target is None:
                found = [t for t in await self._store.scaling_targets() if t.endpoint_id == endpoint_id]
                target = found[0] if found else None
            if target is None or not target.enabled or target.scaling.max_replicas < 1:
                return
            if target.desired_replicas >= 1:
                return
            reason = "cold start: a request is waiting at 0 replicas -> 1"
            await self._store.set_desired(endpoint_id, 1, reason)
            self._targets[endpoint_id] = replace(target, desired_replicas=1)
            self._decisions[endpoint_id] = Decision(1, reason, 1)
            self._on_change()
        except Exception:
            log.exception("autoscaler: wake of %s failed", endpoint_id)

    async def _tick_one(
        self, target: ScalingTarget, stats: EndpointStats | None, complete: bool, now: float, wall_now: float
    ) -> bool:
        known = self._decisions.get(target.endpoint_id)
        if _untouched(stats) and _quiet(target) and known is not None and known.desired == 0:
            # Never requested through any gateway, at 0 with min 0: nothing to decide (a first request
            # wakes it through `wake`, and brings stats). Deciding 100 such endpoints 4 times a second
            # was most of an idle `podium up`'s CPU.
            self._targets[target.endpoint_id] = target
            return False
        stats = stats or EndpointStats()
        since = None if stats.last_request_at is None else max(0.0, wall_now - stats.last_request_at)
        ctx = ScalingContext(
            endpoint_id=target.endpoint_id,
            scaling=target.scaling,
            stats=stats,
            current=target.desired_replicas,
            ready=target.ready_replicas,
            live=target.live_replicas,
            enabled=target.enabled,
            since_last_request_s=since,
            stats_complete=complete,
            engine=self._engine(target.endpoint_id) if self._engine is not None else None,
        )
        decision, state = decide(ctx, self._states.get(target.endpoint_id), now, self._tuning)
        self._states[target.endpoint_id] = state
        self._decisions[target.endpoint_id] = decision
        if decision.desired == target.desired_replicas:
            self._targets[target.endpoint_id] = target
            return False
        await self._store.set_desired(target.endpoint_id, decision.desired, decision.reason)
        self._targets[target.endpoint_id] = replace(target, desired_replicas=decision.desired)
        return True

    async def _gather_stats(self) -> tuple[dict[str, EndpointStats], bool]:
        """Merge every gateway's stats; `complete` is False when one failed or was too slow."""
        timeout = max(self._interval_s * SOURCE_TIMEOUT_FACTOR, 0.05)

        async def read(source: StatsSource) -> Mapping[str, EndpointStats]:
            return await asyncio.wait_for(source(), timeout)  # a source raising at call time is caught too

        results = await asyncio.gather(*(read(source) for source in self._sources), return_exceptions=True)
        merged: dict[str, EndpointStats] = {}
        complete = True
        for result in results:
            if isinstance(result, BaseException):
                if complete and self._failed_reads % 40 == 0:
                    log.warning("autoscaler: a gateway's stats are missing (no scale-down meanwhile): %r", result)
                complete = False
                continue
            for endpoint_id, stats in result.items():
                seen = merged.get(endpoint_id)
                merged[endpoint_id] = stats if seen is None else seen.merge(stats)
        self._failed_reads = 0 if complete else self._failed_reads + 1
        return merged, complete

    def _forget_missing(self, present: set[str]) -> None:
        for table in (self._states, self._decisions, self._targets):
            for endpoint_id in [k for k in table if k not in present]:
                del table[endpoint_id]


def _quiet(target: ScalingTarget) -> bool:
    return target.desired_replicas == 0 and target.live_replicas == 0 and target.scaling.min_replicas == 0


def _untouched(stats: EndpointStats | None) -> bool:
    """No gateway has seen a request for it (a gateway lists every routed endpoint, with zeros)."""
    return stats is None or (stats.in_flight == 0 and stats.queued == 0 and stats.last_request_at is None)
