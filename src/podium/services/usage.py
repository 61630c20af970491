"""Metering: replica-seconds and GPU-seconds per endpoint, counted only while replicas run.

Finished stretches are booked in `usage` when a replica ends; running replicas are counted up to
now. A window [since, until) clips both, so the numbers for adjacent windows add up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from podium.store.repos import Store


@dataclass
class EndpointUsage:
    endpoint_id: str
    name: str
    replica_seconds: float = 0.0
    gpu_seconds: float = 0.0
    running_replicas: int = 0


@dataclass
class UsageReport:
    since: float
    until: float
    endpoints: list[EndpointUsage] = field(default_factory=list)

    @property
    def replica_seconds(self) -> float:
        return sum(e.replica_seconds for e in self.endpoints)

    @property
    def gpu_seconds(self) -> float:
        return sum(e.gpu_seconds for e in self.endpoints)


def _overlap(start: float, end: float, since: float, until: float) -> float:
    return max(0.0, min(end, until) - max(start, since))


class UsageService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def report(
        self, since: float | None = None, until: float | None = None, endpoint_id: str | None = None
    ) -> UsageReport:
        until = until if until is not None else time.time()
        since = since if since is not None else 0.0
        out: dict[str, EndpointUsage] = {}
        for u in await self.store.usage_rows(since, endpoint_id):
            e = out.setdefault(u.endpoint_id, EndpointUsage(u.endpoint_id, u.endpoint_name))
            secs = _overlap(u.started_at, u.ended_at, since, until)
            e.replica_seconds += secs
            e.gpu_seconds += secs * u.gpu_count
        names = {row.id: row.name for row in await self.store.list_endpoints()}
        now = time.time()
        for r in await self.store.live_replicas(endpoint_id):
            if r.started_at is None:
                continue
            e = out.setdefault(r.endpoint_id, EndpointUsage(r.endpoint_id, names.get(r.endpoint_id, "")))
            secs = _overlap(r.started_at, now, since, until)
            e.replica_seconds += secs
            e.gpu_seconds += secs * (len(r.gpus.split(",")) if r.gpus else 0)
            e.running_replicas += 1
        return UsageReport(since, until, sorted(out.values(), key=lambda e: -e.replica_seconds))
