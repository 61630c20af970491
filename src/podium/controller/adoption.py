"""Adoption: what a controller starting (or starting to lead) makes of the replicas that already run.

Split from the loop (controller/loop.py) because it is the one place where the runtime's view and the
database's are reconciled wholesale rather than replica by replica: after a restart, a failover or a
hand-off, replicas the database knows are kept (a ready one only if it still answers its health
check), processes it does not know (orphans) are ended, and rows whose replica is gone are failed,
for the planner to replace. A region that cannot be reached is left for when it answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from podium.controller.probe import HealthProbe
from podium.controller.regions import RegionOutages
from podium.controller.replicas import ReplicaManager
from podium.core.states import ReplicaState
from podium.runtime.base import ReplicaObservation, RuntimeBackend
from podium.store.repos import Store
from podium.store.tables import EndpointRow, ReplicaRow

log = logging.getLogger("podium.controller")


class Adoption:
    """`probe_path`: an endpoint's health path; `region_of`: the region an endpoint runs in (the
    backend's default for none or an unreadable spec) — both the controller's, from its spec cache."""

    def __init__(
        self,
        store: Store,
        runtime: RuntimeBackend,
        regions: RegionOutages,
        replicas: ReplicaManager,
        prober: HealthProbe,
        probe_path: Callable[[EndpointRow], str],
        region_of: Callable[[EndpointRow | None], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.runtime, self.regions, self.replicas = store, runtime, regions, replicas
        self.prober, self.probe_path, self.region_of, self.clock = prober, probe_path, region_of, clock

    async def adopt(self, listed: list[ReplicaObservation] | None = None, only: str | None = None) -> None:
        """Keep what still runs (re-probed before routing), end orphans, forget the lost. Replicas of a
        region that cannot be reached are left for later (`only`: that region, once back)."""
        if listed is None:
            listed = await self.runtime.list()
            self.regions.update()
            self.regions.unadopted = set(self.regions.down)
        running = {o.replica_id: o for o in listed}
        rows = {row.id: row for row in await self.store.list_endpoints()}
        known = {r.id: r for r in await self.store.live_replicas()}
        waiting = self.regions.unadopted - ({only} if only else set())

        def ours(region: str | None) -> bool:
            return region not in waiting and (only is None or region == only)

        for rid in running:
            if rid not in known and ours(self.regions.region_of_replica(rid) or only):
                log.info("ending orphan replica %s", rid)
                await self.runtime.kill(rid)
        known = {rid: r for rid, r in known.items() if ours(self.region_of(rows.get(r.endpoint_id)))}
        checks = []
        for rid, row in known.items():
            obs = running.get(rid)
            if obs is None or obs.phase != "running":
                await self.store.end_replica(rid, ReplicaState.FAILED, self.clock(), "lost while Podium was down")
                continue
            checks.append(self._adopt_one(row, obs.address or row.address or "", rows.get(row.endpoint_id)))
        await asyncio.gather(*checks)
        self.regions.unadopted.discard(only or "")

    async def _adopt_one(self, row: ReplicaRow, address: str, endpoint: EndpointRow | None) -> None:
        """Adopt a replica found running: a ready one must still answer its health check, else it ends;
        a booting one goes on booting (its start timeout still applies); a draining one finishes draining."""
        rid = row.id
        if row.state == ReplicaState.READY and endpoint is not None:
            path = self.probe_path(endpoint)
            healthy = False
            for _ in range(3):
                if healthy := await self.prober.healthy(address, path):
                    break
                await asyncio.sleep(0.2)
            if not healthy:
                await self.runtime.kill(rid)
                await self.store.end_replica(rid, ReplicaState.FAILED, self.clock(), "not healthy after restart")
                await self.store.add_event(
                    row.endpoint_id, "replica_failed", f"replica {rid} ended: unhealthy after Podium restarted", rid
                )
                return
        self.replicas.adopted(row)
        await self.store.update_replica(rid, address=address)
        await self.store.add_event(row.endpoint_id, "replica_adopted", f"replica {rid} adopted after restart", rid)

    async def unadopted_replicas(self) -> set[str]:
        """Live replicas of the regions never adopted (down since start): a shutdown leaves them alone."""
        if not self.regions.unadopted:
            return set()
        rows = {row.id: row for row in await self.store.list_endpoints()}
        live = await self.store.live_replicas()
        return {r.id for r in live if self.region_of(rows.get(r.endpoint_id)) in self.regions.unadopted}
