"""The autoscaler's window on the database: which endpoints to scale, and where decisions go.

The autoscaler is the only writer of `desired_replicas`; this adapter is the only code that
writes it, and it writes an event only when the count actually changes.
"""

from __future__ import annotations

from podium.autoscaler.loop import ScalingTarget
from podium.core.errors import UnreadableSpec
from podium.core.specs import EndpointSpec, stored_spec
from podium.core.states import ReplicaState
from podium.store.repos import Store
from podium.store.tables import ReplicaRow


class StoreScalingAdapter:
    def __init__(self, store: Store) -> None:
        self.store = store
        # endpoint -> (spec JSON, its parsed spec): the autoscaler reads every 0.25 s, and parsing every
        # spec each time was most of an idle `podium up`'s CPU
        self._specs: dict[str, tuple[str, EndpointSpec]] = {}

    def _spec(self, endpoint_id: str, spec_json: str) -> EndpointSpec:
        cached = self._specs.get(endpoint_id)
        if cached is None or cached[0] != spec_json:
            cached = (spec_json, stored_spec(spec_json))  # UnreadableSpec: not cached, the caller skips it
            self._specs[endpoint_id] = cached
        return cached[1]

    async def scaling_targets(self) -> list[ScalingTarget]:
        rows = await self.store.list_endpoints()
        by_endpoint: dict[str, list[ReplicaRow]] = {}
        for r in await self.store.live_replicas():
            if r.state != ReplicaState.DRAINING:
                by_endpoint.setdefault(r.endpoint_id, []).append(r)
        for gone in self._specs.keys() - {row.id for row in rows}:
            del self._specs[gone]
        out = []
        for row in rows:
            if row.deleting:
                continue
            try:
                spec = self._spec(row.id, row.spec_json)
            except UnreadableSpec:
                continue  # shown failed by the controller; nothing to scale
            mine = by_endpoint.get(row.id, [])
            desired = row.desired_replicas if row.desired_replicas is not None else spec.scaling.min_replicas
            out.append(
                ScalingTarget(
                    endpoint_id=row.id,
                    scaling=spec.scaling,
                    enabled=spec.enabled,
                    desired_replicas=desired,
                    live_replicas=len(mine),
                    ready_replicas=sum(1 for r in mine if r.state == ReplicaState.READY),
                )
            )
        return out

    async def set_desired(self, endpoint_id: str, desired: int, reason: str) -> None:
        row = await self.store.get_endpoint(endpoint_id)
        if row is None:
            return
        before = row.desired_replicas
        await self.store.update_endpoint(
            endpoint_id, desired_replicas=desired, desired_reason=reason, updated_at=row.updated_at
        )
        if before != desired:
            await self.store.add_event(
                endpoint_id, "scaled", f"desired replicas {_count(before)} -> {desired}: {reason}"
            )


def _count(desired: int | None) -> str:
    """A desired count for people: None (never decided yet) reads as the minimum it stands for."""
    return "min" if desired is None else str(desired)
