"""Starting and retiring replicas: the controller's hands.

Draining runs as one task per replica so a long drain never stalls a tick: the replica leaves
routing first (state DRAINING), its in-flight requests finish (up to drain_timeout_s), then the
backend stops it (SIGTERM, then SIGKILL after stop_grace_s).

Starting runs beside the tick too: a container start may first pull an image for minutes, and a
registry that never answers must not freeze every other endpoint. `_start_one` records the replica
PENDING, launches it as a task and waits only `_INLINE_START_S` for it (a local process or a cached
image is running by then, as before); a slower start finishes on its own and hints the controller.
Draining a replica whose start is still running cancels that start first (deleting an endpoint
whose pull hangs). A runtime that cannot be reached (RuntimeUnavailable) fails the start without
counting it against the endpoint: the engine being down says nothing about the endpoint's spec.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from podium.catalog.model_cache import cache_report
from podium.controller.gpu_pool import GpuPool
from podium.controller.launch import References, Workload, launch_spec
from podium.controller.planner import backoff_delay
from podium.controller.ports import RoutePublisher
from podium.core.errors import PodiumError
from podium.core.ids import replica_id
from podium.core.specs import EndpointSpec
from podium.core.states import ReplicaState
from podium.runtime.base import LaunchSpec, RunPhase, RuntimeBackend, RuntimeUnavailable
from podium.settings import ControllerTuning
from podium.store.repos import Store
from podium.store.tables import EndpointRow, ReplicaRow

log = logging.getLogger("podium.controller")

_INLINE_START_S = 0.25  # how long a tick waits for a start before leaving it to finish beside the tick
# A drain asks the gateways for the replica's in-flight count quickly at first (a short request ends
# soon), then ever less often (a long stream need not be asked 20 times a second): 20 ms doubling to 1 s.
_DRAIN_POLL_FIRST_S, _DRAIN_POLL_MAX_S = 0.02, 1.0
_PROGRESS_EVERY_S = 2.0  # at most one progress event per replica this often (a pull reports per layer)


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
        self._starting: dict[str, asyncio.Task[None]] = {}  # replica -> its start, while it runs
        self._progress_at: dict[str, float] = {}  # replica -> when its last progress event was written
        self._gpu_type: dict[str, str] = {}  # replica -> gpu type it holds, for release
        self.unreachable: str | None = None  # a start found the runtime unreachable: the controller reads it
        if hasattr(runtime, "on_progress"):  # a backend with slow starts (image pulls) reports their steps
            runtime.on_progress = self._progress

    def kind(self, region: str) -> str:
        """The runtime that runs `region` (local, docker, ray): a regional backend knows it per region."""
        kind_of = getattr(self.runtime, "kind", None)
        return str(kind_of(region)) if callable(kind_of) else self.runtime.name

    async def start(
        self, row: EndpointRow, spec: EndpointSpec, work: Workload, count: int, generation: int | None = None
    ) -> int:
        """Start up to `count` replicas; how many were started (fewer when GPUs ran out: a rollout then
        goes one replica at a time). `generation`: the revision they run (default: the endpoint's; an
        older one while a canary holds, its spec in `spec`)."""
        places = self.kind(spec.compute.region) == "ray"  # Ray assigns GPUs itself: no local pool
        for started in range(count):
            gpu_type = spec.compute.gpu_type
            gpus = () if places else self.gpus.allocate(gpu_type, spec.compute.gpu_count)
            if gpus is None:
                msg = (
                    f"no free {spec.compute.gpu_type} GPUs for another replica "
                    f"({self.gpus.free(gpu_type)} free of {self.gpus.total(gpu_type)},"
                    f" need {spec.compute.gpu_count}); will retry when capacity frees"
                )
                if row.last_error != msg:
                    await self.store.update_endpoint(row.id, last_error=msg)
                    await self.store.add_event(row.id, "capacity", msg)
                return started
            await self._start_one(row, spec, work, gpus, row.generation if generation is None else generation)
        return count

    async def _start_one(
        self, row: EndpointRow, spec: EndpointSpec, work: Workload, gpus: tuple[int, ...], generation: int
    ) -> None:
        rid = replica_id()
        now = self.clock()
        await self.store.add_replica(
            ReplicaRow(
                id=rid,
                endpoint_id=row.id,
                generation=generation,
                state=ReplicaState.PENDING,
                backend=self.kind(spec.compute.region),
                gpus=",".join(map(str, gpus)),
                detail="",
                created_at=now,
            )
        )
        self._gpu_type[rid] = spec.compute.gpu_type
        task = asyncio.create_task(self._launch(row, spec, work, gpus, rid))
        self._starting[rid] = task
        await asyncio.wait({task}, timeout=_INLINE_START_S)

    async def _launch(
        self, row: EndpointRow, spec: EndpointSpec, work: Workload, gpus: tuple[int, ...], rid: str
    ) -> None:
        """The start itself, as a task: PENDING -> STARTING, or ended FAILED with the reason on the endpoint."""
        now = self.clock()
        try:
            launch = await launch_spec(
                replica_id=rid,
                row=row,
                spec=spec,
                work=work,
                gpus=gpus,
                refs=self.refs,
                container_runtime=self.kind(spec.compute.region) not in ("local", "ray"),
                runtime_places=self.kind(spec.compute.region) == "ray",
            )
            await self._warn_port(row.id, rid, launch)
            obs = await self.runtime.start(launch)
        except PodiumError as exc:
            await self._start_failed(row, rid, gpus, str(exc))
            return
        except RuntimeUnavailable as exc:
            self.unreachable = str(exc)
            await self._start_failed(row, rid, gpus, str(exc), counts=False)
            return
        except Exception as exc:  # never lost in a task: the endpoint says why
            log.exception("start of %s failed", rid)
            await self._start_failed(row, rid, gpus, f"cannot start replica: {exc!r}")
            return
        finally:
            self._starting.pop(rid, None)
            self._progress_at.pop(rid, None)
        if obs.phase != RunPhase.RUNNING:
            await self._start_failed(row, rid, gpus, obs.detail or f"exited with code {obs.exit_code}")
            return
        await self.store.update_replica(
            rid, state=ReplicaState.STARTING, address=obs.address, started_at=obs.started_at or now, node=obs.node
        )
        await self.store.add_event(row.id, "replica_started", f"replica {rid} started at {obs.address}", rid)
        if work.model_cache_dir and work.weights:  # will this start download the weights? (issue 18)
            await self.store.add_event(row.id, "model_cache", cache_report(work.model_cache_dir, work.weights), rid)
        self.on_change()

    async def _warn_port(self, endpoint_id: str, rid: str, launch: LaunchSpec) -> None:
        """A `PORT` in the spec's env is replaced by the replica's port (the server must listen where
        the gateway connects): say so where the user looks, rather than replace it silently."""
        if "PORT" in launch.env:
            msg = (
                f"env.PORT={launch.env['PORT']!r} is replaced by the replica's port "
                f"(container.port {launch.container_port} in a container); set container.port instead"
            )
            log.warning("endpoint %s: %s", endpoint_id, msg)
            await self.store.add_event(endpoint_id, "env_port_replaced", msg, rid)

    async def _progress(self, launch: LaunchSpec, line: str) -> None:
        """A slow start's step (image pull): the replica's detail, and an endpoint event now and then."""
        now = self.clock()
        if now - self._progress_at.get(launch.replica_id, -_PROGRESS_EVERY_S) < _PROGRESS_EVERY_S:
            return
        self._progress_at[launch.replica_id] = now
        await self.store.update_replica(launch.replica_id, detail=line[:500])
        await self.store.add_event(launch.endpoint_id, "replica_progress", line[:500], launch.replica_id)

    async def _start_failed(
        self, row: EndpointRow, rid: str, gpus: tuple[int, ...], reason: str, counts: bool = True
    ) -> None:
        """A start that did not run. `counts`: toward the endpoint's failed starts (a bad image or command
        fails again); not when the runtime was unreachable, which retries after a short backoff only."""
        self.gpus.release(self._gpu_type.pop(rid, "cpu"), gpus)
        await self.store.end_replica(rid, ReplicaState.FAILED, self.clock(), reason)
        fresh = await self.store.get_endpoint(row.id)  # the start ran beside the tick: row may be old
        if fresh is None:
            return
        failures = fresh.consecutive_failures + (1 if counts else 0)
        delay = backoff_delay(max(failures, 1), self.tuning.backoff_base_s, self.tuning.backoff_max_s)
        await self.store.update_endpoint(
            row.id, consecutive_failures=failures, last_error=reason, backoff_until=self.clock() + delay
        )
        await self.store.add_event(row.id, "replica_failed", f"replica {rid} failed to start: {reason}", rid)
        self.on_change()

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
            starting = self._starting.pop(rid, None)
            if starting is not None:  # still pulling or creating: give that up first (it cleans up after itself)
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
            await self.store.update_replica(rid, state=ReplicaState.DRAINING)
            await self.store.add_event(endpoint_id, "replica_draining", f"replica {rid} draining", rid)
            deadline = self.clock() + self.tuning.drain_timeout_s
            # The route without this replica is published on the next tick; wait for in-flight to finish.
            await asyncio.sleep(0)
            pause = _DRAIN_POLL_FIRST_S
            while self.gateway.replica_in_flight(rid) > 0 and self.clock() < deadline:
                await asyncio.sleep(min(pause, max(deadline - self.clock(), 0.0)))
                pause = min(pause * 2, _DRAIN_POLL_MAX_S)
            await self._stop_when_reachable(rid)
            await self._mark_stopped(rid, endpoint_id)
        except Exception:
            log.exception("drain of %s failed", rid)
        finally:
            self._draining.pop(rid, None)
            self.on_change()  # republish routes and the endpoint's state (e.g. idle after the last one)

    async def _stop_when_reachable(self, rid: str) -> None:
        """runtime.stop, retried with backoff while the runtime is unreachable (the replica may still
        run, so it must not be marked stopped); one warning, not one per try."""
        tries = 0
        while True:
            try:
                await self.runtime.stop(rid, self.tuning.stop_grace_s)
                return
            except RuntimeUnavailable as exc:
                tries += 1
                if tries == 1:
                    log.warning("cannot stop %s yet, will retry: %s", rid, exc)
                await asyncio.sleep(backoff_delay(tries, self.tuning.backoff_base_s, 5.0))

    async def _mark_stopped(self, rid: str, endpoint_id: str) -> None:
        rows = [r for r in await self.store.live_replicas(endpoint_id) if r.id == rid]
        await self.store.end_replica(rid, ReplicaState.STOPPED, self.clock())
        for r in rows:
            self.release(r)
        await self.store.add_event(endpoint_id, "replica_stopped", f"replica {rid} stopped", rid)

    @property
    def draining(self) -> set[str]:
        return set(self._draining)

    async def abandon(self) -> None:
        """Stop acting without stopping anything: starts and drains in flight are cancelled, replicas
        keep running. For a controller that lost its leader lease: the next leader adopts them."""
        tasks = [*self._draining.values(), *self._starting.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop_all(self, keep: set[str] | frozenset[str] = frozenset()) -> None:
        """Stop every replica and end its row; `keep`: rows left live (replicas of a region never adopted,
        which this process never touched: the next start adopts them)."""
        for task in [*self._draining.values(), *self._starting.values()]:
            task.cancel()
        await asyncio.gather(*self._starting.values(), return_exceptions=True)
        live = await self.store.live_replicas()
        await self.runtime.close()
        for r in live:
            if r.id not in keep:
                await self.store.end_replica(r.id, ReplicaState.STOPPED, self.clock(), "podium shut down")
