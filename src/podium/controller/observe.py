"""Observation: what each live replica is doing now (runtime poll + health probe).

Readiness probes run every tick while a replica boots; liveness probes of ready replicas run every
`probe_interval_ready_s`; `unhealthy_after` misses in a row take a replica out of routing.

Crash loops: a replica that passes readiness and then dies (typically on its first request) is a
crash like a failed start. The endpoint's crash count is cleared only once a replica has stayed
ready for `stable_after_s` (`on_stable`), not when it becomes ready: otherwise a replica that
dies on every first request would restart forever while the endpoint shows `serving`.
Engine templates also need one real completion before they are ready (`ProbeTarget`); that probe
runs as a task beside the tick, since a first token on a CPU can take seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from podium.controller.probe import HealthProbe, Prober, ProbeTarget
from podium.core.states import ReplicaState
from podium.runtime.base import RunPhase, RuntimeBackend
from podium.settings import ControllerTuning
from podium.store.repos import Store
from podium.store.tables import ReplicaRow

OnReady = Callable[[ReplicaRow, float], Awaitable[None]]
OnFailed = Callable[[ReplicaRow, str, bool], Awaitable[None]]
OnStable = Callable[[ReplicaRow], Awaitable[None]]


class Observer:
    def __init__(
        self,
        store: Store,
        runtime: RuntimeBackend,
        tuning: ControllerTuning,
        clock: Callable[[], float],
        on_ready: OnReady,
        on_failed: OnFailed,
        prober: HealthProbe | None = None,
        on_stable: OnStable | None = None,
    ) -> None:
        self.store, self.runtime, self.tuning, self.clock = store, runtime, tuning, clock
        self.on_ready, self.on_failed = on_ready, on_failed
        self.on_stable = on_stable
        self.prober: HealthProbe = prober or Prober(tuning.probe_timeout_s, tuning.start_timeout_s)
        self._last_probe: dict[str, float] = {}
        self._misses: dict[str, int] = {}
        self._generating: dict[str, asyncio.Task[bool]] = {}  # replica -> its readiness completion
        self._stable: set[str] = set()  # replicas already reported stable
        self.busy = False  # a replica is booting: tick fast

    async def observe(self, live: list[ReplicaRow], targets: dict[str, ProbeTarget]) -> None:
        todo = [r for r in live if r.state in (ReplicaState.STARTING, ReplicaState.READY, ReplicaState.UNHEALTHY)]
        await asyncio.gather(*(self._one(r, targets.get(r.endpoint_id, ProbeTarget())) for r in todo))
        # PENDING replicas are still being started beside the tick (an image pull can take minutes):
        # their start hints the controller when done, so they need no 50 ms ticks meanwhile.
        self.busy = any(r.state == ReplicaState.STARTING for r in live)
        known = {r.id for r in live}
        for rid in list(self._last_probe):
            if rid not in known:
                self._last_probe.pop(rid, None)
                self._misses.pop(rid, None)
        for rid in list(self._generating):
            if rid not in known:
                self._generating.pop(rid).cancel()
        self._stable &= known

    def _start_limit(self, target: ProbeTarget) -> float:
        """A template's own start timeout (sized to its weights) or the server's."""
        return target.start_timeout_s or self.tuning.start_timeout_s

    async def _one(self, r: ReplicaRow, target: ProbeTarget) -> None:
        path = target.path
        obs = await self.runtime.poll(r.id)
        now = self.clock()
        if obs.phase != RunPhase.RUNNING:
            reason = obs.detail or f"exited with code {obs.exit_code}"
            tail = await self._tail(r.id)
            await self._fail(r, f"{reason}{tail}", counts_as_crash=True)
            return
        if r.state == ReplicaState.STARTING:
            if await self.prober.healthy(r.address or "", path) and self._generated(r, target):
                await self.store.update_replica(r.id, state=ReplicaState.READY, ready_at=now)
                took = now - (r.started_at or r.created_at)
                await self.store.add_event(r.endpoint_id, "replica_ready", f"replica {r.id} ready in {took:.2f}s", r.id)
                await self.on_ready(r, took)
            elif now - (r.started_at or r.created_at) > (limit := self._start_limit(target)):
                tail = await self._tail(r.id)
                await self.runtime.kill(r.id)
                await self._fail(r, f"not healthy on {path} within {limit:g}s{tail}", True)
            return
        if now - self._last_probe.get(r.id, 0.0) < self.tuning.probe_interval_ready_s:
            return
        self._last_probe[r.id] = now
        if await self.prober.healthy(r.address or "", path):
            self._misses[r.id] = 0
            if r.state == ReplicaState.UNHEALTHY:
                await self.store.update_replica(r.id, state=ReplicaState.READY)
            await self._maybe_stable(r, now)
            return
        self._misses[r.id] = self._misses.get(r.id, 0) + 1
        if self._misses[r.id] >= self.tuning.unhealthy_after and r.state == ReplicaState.READY:
            await self.store.update_replica(r.id, state=ReplicaState.UNHEALTHY)
            await self.store.add_event(
                r.endpoint_id,
                "replica_unhealthy",
                f"replica {r.id} failed {self._misses[r.id]} health checks; replacing",
                r.id,
            )
            self.busy = True  # the planner drains it and starts a replacement on the next tick

    def _generated(self, r: ReplicaRow, target: ProbeTarget) -> bool:
        """True once the replica has completed one token (or needs not). The completion runs as a
        task beside the tick; a failed one is retried on a later tick (the engine may still warm up;
        an engine that crashed on it is seen exited by the next poll)."""
        if target.generate_model is None:
            return True
        task = self._generating.get(r.id)
        if task is None:
            self._generating[r.id] = asyncio.create_task(self.prober.generates(r.address or "", target.generate_model))
            return False
        if not task.done():
            return False
        del self._generating[r.id]
        return not task.cancelled() and task.exception() is None and task.result()

    async def _maybe_stable(self, r: ReplicaRow, now: float) -> None:
        if self.on_stable is None or r.id in self._stable or r.ready_at is None:
            return
        if now - r.ready_at >= self.tuning.stable_after_s:
            self._stable.add(r.id)
            await self.on_stable(r)

    async def _fail(self, r: ReplicaRow, reason: str, counts_as_crash: bool) -> None:
        await self.store.end_replica(r.id, ReplicaState.FAILED, self.clock(), reason)
        await self.store.add_event(r.endpoint_id, "replica_failed", f"replica {r.id} failed: {reason}", r.id)
        await self.on_failed(r, reason, counts_as_crash)

    async def _tail(self, rid: str, lines: int = 10) -> str:
        tail_text = getattr(self.runtime, "tail_text", None)
        if tail_text is None:
            return ""
        try:
            text = tail_text(rid, lines)
            if asyncio.iscoroutine(text):
                text = await text
        except Exception:
            return ""
        return f"\nlast log lines:\n{text}" if text else ""

    async def close(self) -> None:
        for task in self._generating.values():
            task.cancel()
        await self.prober.close()
