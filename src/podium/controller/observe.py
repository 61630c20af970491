"""Observation: what each live replica is doing now (runtime poll + health probe).

Readiness probes run every tick while a replica boots; liveness probes of ready replicas run every
`probe_interval_ready_s`; `unhealthy_after` misses in a row take a replica out of routing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from podium.controller.probe import HealthProbe, Prober
from podium.core.states import ReplicaState
from podium.runtime.base import RunPhase, RuntimeBackend
from podium.settings import ControllerTuning
from podium.store.repos import Store
from podium.store.tables import ReplicaRow

OnReady = Callable[[ReplicaRow, float], Awaitable[None]]
OnFailed = Callable[[ReplicaRow, str, bool], Awaitable[None]]


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
    ) -> None:
        self.store, self.runtime, self.tuning, self.clock = store, runtime, tuning, clock
        self.on_ready, self.on_failed = on_ready, on_failed
        self.prober: HealthProbe = prober or Prober(tuning.probe_timeout_s)
        self._last_probe: dict[str, float] = {}
        self._misses: dict[str, int] = {}
        self.busy = False  # a replica is booting: tick fast

    async def observe(self, live: list[ReplicaRow], health_paths: dict[str, str]) -> None:
        todo = [r for r in live if r.state in (ReplicaState.STARTING, ReplicaState.READY, ReplicaState.UNHEALTHY)]
        await asyncio.gather(*(self._one(r, health_paths.get(r.endpoint_id, "/health")) for r in todo))
        self.busy = any(r.state in (ReplicaState.STARTING, ReplicaState.PENDING) for r in live)
        known = {r.id for r in live}
        for rid in list(self._last_probe):
            if rid not in known:
                self._last_probe.pop(rid, None)
                self._misses.pop(rid, None)

    async def _one(self, r: ReplicaRow, path: str) -> None:
        obs = await self.runtime.poll(r.id)
        now = self.clock()
        if obs.phase != RunPhase.RUNNING:
            reason = obs.detail or f"exited with code {obs.exit_code}"
            tail = await self._tail(r.id)
            await self._fail(r, f"{reason}{tail}", counts_as_crash=True)
            return
        if r.state == ReplicaState.STARTING:
            if await self.prober.healthy(r.address or "", path):
                await self.store.update_replica(r.id, state=ReplicaState.READY, ready_at=now)
                took = now - (r.started_at or r.created_at)
                await self.store.add_event(r.endpoint_id, "replica_ready", f"replica {r.id} ready in {took:.2f}s", r.id)
                await self.on_ready(r, took)
            elif now - (r.started_at or r.created_at) > self.tuning.start_timeout_s:
                tail = await self._tail(r.id)
                await self.runtime.kill(r.id)
                await self._fail(r, f"not healthy on {path} within {self.tuning.start_timeout_s:g}s{tail}", True)
            return
        if now - self._last_probe.get(r.id, 0.0) < self.tuning.probe_interval_ready_s:
            return
        self._last_probe[r.id] = now
        if await self.prober.healthy(r.address or "", path):
            self._misses[r.id] = 0
            if r.state == ReplicaState.UNHEALTHY:
                await self.store.update_replica(r.id, state=ReplicaState.READY)
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
        await self.prober.close()
