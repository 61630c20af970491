"""Starting and retiring replicas: the controller's hands.

Draining runs as one task per replica so a long drain never stalls a tick: the replica leaves
routing first (state DRAINING), its in-flight requests finish (up to drain_timeout_s), then the
backend stops it (SIGTERM, then SIGKILL after stop_grace_s).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from podium.controller.capacity import GpuPool
from podium.controller.launch import References, Workload, launch_spec
from podium.controller.planner import backoff_delay
from podium.core.errors import PodiumError
from podium.core.ids import replica_id
from podium.core.specs import EndpointSpec
from podium.core.states import ReplicaState
from podium.runtime.base import RunPhase, RuntimeBackend
from podium.settings import ControllerTuning
from podium.store.repos import Store
from podium.store.tables import EndpointRow, ReplicaRow

if TYPE_CHECKING:
    from podium.controller.loop import RoutePublisher

log = logging.getLogger("podium.controller")


class ReplicaManager:
    def __init__(
        self,
        store: Store,
        runtime: RuntimeBackend,
        gateway: RoutePublisher,
        tuning: ControllerTuning,
        gpus: GpuPool,
        refs: References,
        clock: Callable[[], float],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.store, self.runtime, self.gateway, self.tuning = store, runtime, gateway, tuning
        self.on_change = on_change
        self.gpus, self.refs, self.clock = gpus, refs, clock
        self._draining: dict[str, asyncio.Task[None]] = {}
        self._gpu_type: dict[str, str] = {}  # replica -> gpu type it holds, for release

    async def start(self, row: EndpointRow, spec: EndpointSpec, work: Workload, count: int) -> None:
        for _ in range(count):
            gpu_type = spec.compute.gpu_type
            gpus = self.gpus.allocate(gpu_type, spec.compute.gpu_count)
            if gpus is None:
                msg = (
                    f"no free {spec.compute.gpu_type} GPUs for another replica "
                    f"({self.gpus.free(gpu_type)} free of {self.gpus.total(gpu_type)},"
                    f" need {spec.compute.gpu_count}); will retry when capacity frees"
                )
                if row.last_error != msg:
                    await self.store.update_endpoint(row.id, last_error=msg)
                    await self.store.add_event(row.id, "capacity", msg)
                return
            await self._start_one(row, spec, work, gpus)

    async def _start_one(self, row: EndpointRow, spec: EndpointSpec, work: Workload, gpus: tuple[int, ...]) -> None:
        rid = replica_id()
        now = self.clock()
        await self.store.add_replica(
            ReplicaRow(
                id=rid,
                endpoint_id=row.id,
                generation=row.generation,
                state=ReplicaState.PENDING,
                backend=self.runtime.name,
                gpus=",".join(map(str, gpus)),
                detail="",
                created_at=now,
            )
        )
        self._gpu_type[rid] = spec.compute.gpu_type
        try:
            launch = await launch_spec(
                replica_id=rid,
                row=row,
                spec=spec,
                work=work,
                gpus=gpus,
                refs=self.refs,
                container_runtime=self.runtime.name != "local",
            )
            obs = await self.runtime.start(launch)
        except PodiumError as exc:
            await self._start_failed(row, rid, gpus, str(exc))
            return
        if obs.phase != RunPhase.RUNNING:
            await self._start_failed(row, rid, gpus, obs.detail or f"exited with code {obs.exit_code}")
            return
        await self.store.update_replica(
            rid, state=ReplicaState.STARTING, address=obs.address, started_at=obs.started_at or now
        )
        await self.store.add_event(row.id, "replica_started", f"replica {rid} started at {obs.address}", rid)

    async def _start_failed(self, row: EndpointRow, rid: str, gpus: tuple[int, ...], reason: str) -> None:
        self.gpus.release(self._gpu_type.pop(rid, "cpu"), gpus)
        await self.store.end_replica(rid, ReplicaState.FAILED, self.clock(), reason)
        failures = row.consecutive_failures + 1
        delay = backoff_delay(failures, self.tuning.backoff_base_s, self.tuning.backoff_max_s)
        await self.store.update_endpoint(
            row.id, consecutive_failures=failures, last_error=reason, backoff_until=self.clock() + delay
        )
        await self.store.add_event(row.id, "replica_failed", f"replica {rid} failed to start: {reason}", rid)

    def adopted(self, row: ReplicaRow) -> None:
        """Account the GPUs of a replica found running after a restart."""
        if row.gpus:
            ixs = tuple(int(i) for i in row.gpus.split(","))
            gpu_type = self.gpus.type_of(ixs)
            if gpu_type is not None:  # devices the inventory no longer lists are not ours to hand out
                self.gpus.mark_used(gpu_type, ixs)
                self._gpu_type[row.id] = gpu_type
        if row.state == ReplicaState.DRAINING:
            self.drain(row.id, row.endpoint_id)

    def release(self, replica: ReplicaRow) -> None:
        if replica.gpus:
            self.gpus.release(self._gpu_type.pop(replica.id, "cpu"), tuple(int(i) for i in replica.gpus.split(",")))

    def drain(self, rid: str, endpoint_id: str) -> None:
        if rid in self._draining:
            return
        self._draining[rid] = asyncio.create_task(self._drain(rid, endpoint_id))

    async def _drain(self, rid: str, endpoint_id: str) -> None:
        try:
            await self.store.update_replica(rid, state=ReplicaState.DRAINING)
            await self.store.add_event(endpoint_id, "replica_draining", f"replica {rid} draining", rid)
            deadline = self.clock() + self.tuning.drain_timeout_s
            # The route without this replica is published on the next tick; wait for in-flight to finish.
            await asyncio.sleep(0)
            while self.gateway.replica_in_flight(rid) > 0 and self.clock() < deadline:
                await asyncio.sleep(0.05)
            await self.runtime.stop(rid, self.tuning.stop_grace_s)
            await self._mark_stopped(rid, endpoint_id)
        except Exception:
            log.exception("drain of %s failed", rid)
        finally:
            self._draining.pop(rid, None)
            self.on_change()  # republish routes and the endpoint's state (e.g. idle after the last one)

    async def _mark_stopped(self, rid: str, endpoint_id: str) -> None:
        rows = [r for r in await self.store.live_replicas(endpoint_id) if r.id == rid]
        await self.store.end_replica(rid, ReplicaState.STOPPED, self.clock())
        for r in rows:
            self.release(r)
        await self.store.add_event(endpoint_id, "replica_stopped", f"replica {rid} stopped", rid)

    @property
    def draining(self) -> set[str]:
        return set(self._draining)

    async def stop_all(self) -> None:
        for task in list(self._draining.values()):
            task.cancel()
        live = await self.store.live_replicas()
        await self.runtime.close()
        for r in live:
            await self.store.end_replica(r.id, ReplicaState.STOPPED, self.clock(), "podium shut down")
