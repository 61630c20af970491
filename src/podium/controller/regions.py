"""Per-region outages: one region whose engine or cluster cannot be reached must not pause the others.

The composite backend (runtime/regional.py) answers `list()` for the regions it can reach and names
the others in its `down` map. The controller keeps those regions' endpoints out of its tick (nothing
is known of their replicas: they may still run), says why on each of them once per outage
(`runtime_unavailable`, naming the region's engine), asks again with backoff, and on return adopts
what that region runs (if it was down since start-up) and clears the error (`runtime_available`).
A backend with no regions has no `down` map: its outage is the whole runtime's (controller/loop.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from podium.controller.planner import backoff_delay
from podium.runtime.base import RuntimeBackend
from podium.store.repos import Store
from podium.store.tables import EndpointRow

log = logging.getLogger("podium.controller")

_RECHECK_MAX_S = 5.0  # a down region is asked again at most this long after the last try


class RegionOutages:
    def __init__(self, store: Store, runtime: RuntimeBackend, clock: Callable[[], float], base_s: float) -> None:
        self.store, self.runtime, self.clock, self.base_s = store, runtime, clock, base_s
        self.down: dict[str, str] = {}  # region -> why its runtime cannot be reached
        self.unadopted: set[str] = set()  # regions down since start-up: their replicas are adopted on return
        self._tries = 0
        self._recheck_at = 0.0

    def reported(self) -> dict[str, str]:
        """The regions the backend's last list() could not reach (none for a backend without regions)."""
        return dict(getattr(self.runtime, "down", None) or {})

    def default_region(self) -> str:
        return str(getattr(self.runtime, "default", "local"))

    def region_of_replica(self, replica_id: str) -> str | None:
        region_of = getattr(self.runtime, "region_of", None)
        return region_of(replica_id) if callable(region_of) else None

    def due(self) -> bool:
        """Time to ask the down regions again (backoff from the base up to a few seconds)."""
        return bool(self.down) and self.clock() >= self._recheck_at

    def update(self) -> dict[str, str]:
        """Take the backend's view after a list(): returns the regions back since (region -> old reason)."""
        now = self.reported()
        back = {region: reason for region, reason in self.down.items() if region not in now}
        for region, reason in now.items():
            if region not in self.down:
                log.warning("region %s unreachable, its endpoints wait (others go on): %s", region, reason)
        for region in back:
            log.warning("region %s reachable again", region)
        self.down = now
        self._tries = self._tries + 1 if now else 0
        self._recheck_at = self.clock() + backoff_delay(max(self._tries, 1), self.base_s, _RECHECK_MAX_S)
        return back

    async def note(self, row: EndpointRow, region: str) -> None:
        """An endpoint of a down region: the reason as last_error and one event, once per distinct reason."""
        reason = self.down[region]
        if row.last_error != reason:
            await self.store.update_endpoint(
                row.id, last_error=reason, updated_at=row.updated_at, event=("runtime_unavailable", reason)
            )

    async def recovered(self, rows: list[EndpointRow], reason: str) -> None:
        """The endpoints of a region back again: the outage's error is cleared, with an event."""
        for row in rows:
            if row.last_error == reason:
                back = ("runtime_available", "runtime reachable again")
                await self.store.update_endpoint(row.id, last_error=None, updated_at=row.updated_at, event=back)
