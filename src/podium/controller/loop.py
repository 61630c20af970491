"""The controller loop: load -> observe -> plan -> apply, once per tick.

Woken at once by `hint()` (the API's writes, the autoscaler's decisions, the gateway's wake-ups),
and on its own every `resync_interval_s` (to notice exits) or every `probe_interval_starting_s`
while a replica boots (readiness is latency). Every step is idempotent: the database holds the
desired state and what was started, so after a crash the next process resumes from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from podium.controller.adoption import Adoption
from podium.controller.failures import FailureBook
from podium.controller.gpu_pool import GpuPool
from podium.controller.launch import NoReferences, RecipeResolver, References, Workload, route_of, workload_of
from podium.controller.observe import Observer
from podium.controller.planner import backoff_delay, plan
from podium.controller.ports import RoutePublisher
from podium.controller.probe import HealthProbe, ProbeTarget
from podium.controller.regions import RegionOutages
from podium.controller.replicas import ReplicaManager
from podium.controller.rollout import Rollouts
from podium.core.errors import PodiumError, UnreadableSpec
from podium.core.specs import EndpointSpec, stored_spec
from podium.core.states import EndpointState, ReplicaState
from podium.gateway.routes import EndpointRoute
from podium.runtime.base import ReplicaObservation, RuntimeBackend, RuntimeUnavailable
from podium.settings import ControllerTuning
from podium.store.repos import Store
from podium.store.tables import EndpointRow, ReplicaRow

log = logging.getLogger("podium.controller")


class Controller:
    def __init__(
        self,
        store: Store,
        runtime: RuntimeBackend,
        gateway: RoutePublisher,
        *,
        tuning: ControllerTuning,
        catalog: RecipeResolver | None = None,
        refs: References | None = None,
        gpus: GpuPool | None = None,
        clock: Callable[[], float] = time.time,
        prober: HealthProbe | None = None,
    ) -> None:
        self.store, self.runtime, self.gateway, self.tuning = store, runtime, gateway, tuning
        self.catalog, self.clock = catalog, clock
        self.replicas = ReplicaManager(
            store, runtime, gateway, tuning, gpus or GpuPool({}), refs or NoReferences(), clock, on_change=self.hint
        )
        self.failures = FailureBook(store, tuning, clock, self.replicas, self.hint)  # crash counts, backoff
        self.observer = Observer(
            store,
            runtime,
            tuning,
            clock,
            on_ready=self.failures.on_ready,
            on_failed=self.failures.on_failed,
            prober=prober,
            on_stable=self.failures.on_stable,
        )
        self._wake = asyncio.Event()
        self._published: dict[str, EndpointRoute] = {}  # endpoint -> the route last handed to the gateway
        self._specs: dict[str, tuple[tuple[str, int], EndpointSpec, Workload | None]] = {}
        self.ticks = 0  # ticks started
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []  # (tick number, resolved when it ends)
        self.adopted = False  # adopt() has run: until then shutdown leaves replicas and their rows alone
        self.regions = RegionOutages(store, runtime, clock, tuning.backoff_base_s)  # regions down (regional.py)
        self.rollouts = Rollouts(store, clock)  # revisions rolling, canaries, rollbacks (rollout.py)
        self.adoption = Adoption(
            store,
            runtime,
            self.regions,
            self.replicas,
            self.observer.prober,
            lambda row: self._probe_target(row).path,
            self._region_of,
            clock,
        )

    def hint(self, endpoint_id: str | None = None) -> None:
        """Something changed: reconcile now. Cheap and safe to call from anywhere on the loop."""
        self._wake.set()

    async def sync(self, timeout_s: float = 2.0) -> None:
        """Wait until a tick that starts after this call has finished: what the caller wrote before is then
        reflected in the gateway's routes (an endpoint just created answers at once, held, not 404)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self.ticks + 1, fut))
        self._wake.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)

    def _tick_done(self, number: int) -> None:
        keep = []
        for target, fut in self._waiters:
            if target <= number:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((target, fut))
        self._waiters = keep

    async def run(self, stop: asyncio.Event) -> None:
        """Adopt, then tick until stopped. A runtime that cannot be reached (engine down at start-up or
        later) never ends this loop: it retries with backoff, without ticking (nothing is known of the
        replicas), says why on every endpoint, and resumes, adopting first if it never could.
        One region down of several (controller/regions.py) pauses only that region's endpoints."""
        down: str | None = None
        tries = 0
        while not stop.is_set():
            try:
                if not self.adopted:
                    await self.adopt()
                elif down is not None:
                    # a cheap question: does the runtime answer again? (and which regions, if several)
                    await self._regions_changed(await self.runtime.list())
                elif self.regions.due():
                    await self._regions_changed(await self.runtime.list())
                await self.tick()
                if self.replicas.unreachable:
                    raise RuntimeUnavailable(self.replicas.unreachable)
                if down is not None:
                    await self.failures.runtime_back(down, lambda row: self._region_of(row) in self.regions.down)
                    down, tries = None, 0
            except RuntimeUnavailable as exc:
                self.replicas.unreachable = None
                if not (down is None and self.adopted and await self._region_outage()):
                    tries += 1
                    down = await self.failures.runtime_down(str(exc), down)
                    self._tick_done(self.ticks)
                    with contextlib.suppress(asyncio.TimeoutError):  # hints do not shorten the wait
                        await asyncio.wait_for(stop.wait(), backoff_delay(tries, self.tuning.backoff_base_s, 5.0))
                    continue
                log.info("tick ended by a region found down, the next leaves it out: %s", exc)
            except Exception:  # one bad tick must not end the controller
                log.exception("controller tick failed")
            self._tick_done(self.ticks)
            delay = self.tuning.probe_interval_starting_s if self.observer.busy else self.tuning.resync_interval_s
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()

    async def _region_outage(self) -> bool:
        """A tick met RuntimeUnavailable: is it one region's (others answer), not the whole runtime's?"""
        try:
            running = await self.runtime.list()
        except RuntimeUnavailable:
            return False
        await self._regions_changed(running)
        return bool(self.regions.down)

    async def _regions_changed(self, running: list[ReplicaObservation]) -> None:
        """After a list(): note the regions down now; a region back is adopted (if it never was) and
        its endpoints' outage error cleared."""
        for region, reason in self.regions.update().items():
            if region in self.regions.unadopted:
                await self.adopt(running, only=region)
            rows = [row for row in await self.store.list_endpoints() if self._region_of(row) == region]
            await self.regions.recovered(rows, reason)

    def _region_of(self, row: EndpointRow | None) -> str:
        """The region an endpoint runs in (the backend's default when its spec names none or is unreadable)."""
        if row is not None:
            with contextlib.suppress(UnreadableSpec):
                region = self._parsed(row)[0].compute.region
                if region:
                    return region
        return self.regions.default_region()

    async def adopt(self, listed: list[ReplicaObservation] | None = None, only: str | None = None) -> None:
        """After a restart, a failover or a hand-off: take over what runs (controller/adoption.py)."""
        await self.adoption.adopt(listed, only)
        self.adopted = True

    async def tick(self) -> None:
        self.ticks += 1
        rows = await self.store.list_endpoints()
        paths = {row.id: self._probe_target(row) for row in rows}
        live = self._reachable(rows, await self.store.live_replicas())
        await self.observer.observe(live, paths)
        if live:  # observation may have failed replicas and changed endpoints' failure counts: reload both
            rows = await self.store.list_endpoints()
            live = self._reachable(rows, await self.store.live_replicas())
        by_ep: dict[str, list[ReplicaRow]] = {}
        for r in live:
            by_ep.setdefault(r.endpoint_id, []).append(r)
        for row in rows:
            if (region := self._region_of(row)) in self.regions.down:
                await self.regions.note(row, region)  # nothing known of its replicas: wait for the region
                continue
            try:
                await self._reconcile(row, by_ep.get(row.id, []))
            except Exception as exc:  # isolate endpoints from each other
                log.exception("reconcile %s failed", row.id)
                await self.store.update_endpoint(row.id, last_error=str(exc), updated_at=row.updated_at)
        for gone in self._published.keys() - {row.id for row in rows}:
            self._unpublish(gone)
            self._specs.pop(gone, None)
            self.rollouts.forget(gone)

    def _reachable(self, rows: list[EndpointRow], live: list[ReplicaRow]) -> list[ReplicaRow]:
        """The live replicas outside the regions that cannot be reached (theirs wait for the region)."""
        if not self.regions.down:
            return live
        by_id = {row.id: row for row in rows}
        return [r for r in live if self._region_of(by_id.get(r.endpoint_id)) not in self.regions.down]

    def _parsed(self, row: EndpointRow) -> tuple[EndpointSpec, Workload | None]:
        """Spec and its runnable form (None: the catalog cannot resolve it), cached by the spec's JSON
        text: ticks run every 50 ms while replicas boot, and a recipe lookup need not run every time.
        And by the revision: one with the same spec (an adapter of its model registered) resolves anew."""
        cached = self._specs.get(row.id)
        if cached is None or cached[0] != (row.spec_json, row.generation):
            spec = stored_spec(row.spec_json)  # UnreadableSpec: see _unreadable
            work = None
            with contextlib.suppress(PodiumError):
                work = workload_of(spec, row.routing_key, self.catalog)
            cached = ((row.spec_json, row.generation), spec, work)
            self._specs[row.id] = cached
        return cached[1], cached[2]

    def _probe_target(self, row: EndpointRow) -> ProbeTarget:
        try:
            spec, work = self._parsed(row)
        except UnreadableSpec:
            return ProbeTarget()  # the default health path; _reconcile marks the endpoint failed
        if work is None:
            return ProbeTarget(spec.health_check_path)
        model = work.served_model_name if work.ready_by_generating else None
        return ProbeTarget(work.health_check_path, model, work.start_timeout_s)

    async def _reconcile(self, row: EndpointRow, replicas: list[ReplicaRow]) -> None:
        try:
            spec, work = self._parsed(row)
        except UnreadableSpec as exc:
            await self._unreadable(row, replicas, exc.message)
            return
        s = spec.scaling
        target = row.desired_replicas if row.desired_replicas is not None else s.min_replicas
        target = max(s.min_replicas, min(s.max_replicas, target))
        failed = row.consecutive_failures >= self.tuning.max_failures
        inputs, reps = await self.rollouts.plan_inputs(row, spec, replicas, target, failed, self.replicas.draining)
        p = plan(inputs, reps, self.clock())
        if p.delete_endpoint:
            await self.store.delete_endpoint(row.id)
            self._unpublish(row.id)
            return
        if await self.rollouts.after(row, spec, p, replicas, target):
            self.hint(row.id)  # rolled back: the next tick plans the revision that still serves
            return
        for rid in p.drain:
            self.replicas.drain(rid, row.id)
        if p.start:
            if work is None:
                raise PodiumError("cannot build the replica's command from the spec")
            if await self.replicas.start(row, spec, work, p.start) < p.start and p.progress:
                await self.rollouts.no_room(row)
        if p.start_stable and await self.rollouts.refill(row, spec, p, self.replicas, self.catalog):
            self.observer.busy = True  # a canary's old revision back at the target (rollout.py)
            replicas = await self.store.live_replicas(row.id)  # with the new ones (or without a start that failed)
        await self._publish_and_state(row, spec, work, replicas, target, failed)

    async def _unreadable(self, row: EndpointRow, replicas: list[ReplicaRow], reason: str) -> None:
        """A row whose spec no longer parses: `failed` with the reason (once), nothing started or
        stopped (its wishes are unknown), no new route; a delete still drains and removes it."""
        if row.deleting:
            self._unpublish(row.id)
            for r in replicas:
                self.replicas.drain(r.id, row.id)
            if not replicas:
                await self.store.delete_endpoint(row.id)
            return
        if row.state != EndpointState.FAILED or row.last_error != reason:
            log.error("endpoint %s: %s", row.id, reason)
            await self.store.update_endpoint(
                row.id, state=EndpointState.FAILED, last_error=reason, event=("failed", reason)
            )

    async def _publish_and_state(
        self,
        row: EndpointRow,
        spec: EndpointSpec,
        work: Workload | None,
        replicas: list[ReplicaRow],
        target: int,
        failed: bool,
    ) -> None:
        """Publish the endpoint's route if it differs from the last one published (a tick runs every
        50 ms while a replica boots: the gateways, and remote ones' long-polls, hear only of changes),
        and record the state the replicas imply."""
        leaving = self.replicas.draining  # out of routing now, even before their DRAINING state is written
        ready = [(r.id, r.address or "") for r in replicas if r.state == ReplicaState.READY and r.id not in leaving]
        revs = {r.id: r.generation for r in replicas}
        route = route_of(row, spec, work, ready, revs, self.rollouts.split(row, spec), self._published.get(row.id))
        if not ready and route.enabled:
            failure, retry_at = await self.failures.start_failure(row, replicas, failed)
            route = replace(route, failure=failure, failure_retry_at=retry_at)
        if self._published.get(row.id) != route:
            self.gateway.set_route(route)
            self._published[row.id] = route
        state = derive_state(row, spec, replicas, target, failed)
        if state != row.state:
            await self.store.update_endpoint(row.id, state=state)
            await self.store.add_event(row.id, "state", f"{row.state} -> {state}")

    def _unpublish(self, endpoint_id: str) -> None:
        self.gateway.remove_route(endpoint_id)
        self._published.pop(endpoint_id, None)

    async def leave(self) -> None:
        """Handing off (SIGTERM of a leader on a shared database): act no more, stop nothing; the replicas
        keep running and their rows stay live, so the next leader adopts them unrestarted."""
        await self.replicas.abandon()
        await self.observer.close()

    async def shutdown(self) -> None:
        """SIGTERM of `podium up`: stop every replica; desired state stays, so a restart brings them back.
        With the runtime unreachable they may still run: they stay live in the database, to be adopted.
        Never adopted (the runtime was down since start-up): replicas of an earlier process may run
        unseen, so the database is left as it is and the next start adopts them."""
        try:
            if self.adopted:  # a region never adopted keeps its replicas and their rows for the next start
                await self.replicas.stop_all(await self.adoption.unadopted_replicas())
            else:
                log.warning("shutdown before the runtime was reachable: live replicas left to the next start")
                await self.runtime.close()
        except RuntimeUnavailable as exc:
            log.warning("shutdown: replicas left as they are, adopted on the next start: %s", exc)
        finally:
            await self.observer.close()


def derive_state(
    row: EndpointRow, spec: EndpointSpec, replicas: list[ReplicaRow], target: int, failed: bool
) -> EndpointState:
    if row.deleting:
        return EndpointState.DELETING
    if not spec.enabled:
        return EndpointState.STOPPED
    ready = sum(1 for r in replicas if r.state == ReplicaState.READY)
    if failed and ready == 0:
        return EndpointState.FAILED
    if ready:
        moving = any(r.state != ReplicaState.READY for r in replicas) or ready != target
        return EndpointState.SCALING if moving else EndpointState.SERVING
    return EndpointState.IDLE if target == 0 else EndpointState.PROVISIONING
