"""Capacity reservations: an endpoint's *minimum* replicas are reserved in its region's inventory.

Why reserve the minimum only: min replicas are a promise (the endpoint always has them), so a
create/PATCH/start that cannot keep the promise is refused with 409 before anything is written.
Replicas above the minimum are opportunistic: the controller starts them when devices are free.

The decision is the pure function `check_reservation`, tested by a table; `reservations` sums what
other endpoints already hold, from their specs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from podium.core.errors import Conflict
from podium.core.specs import EndpointSpec

CPU = "cpu"
# A CPU slot is a core (the catalog's `cpu_slots`). CPU-only replicas (small models, container
# endpoints' processes) are mostly idle, so each slot holds this many reserved replicas; the 409
# still comes, with the numbers, long before a box is hopelessly oversubscribed.
CPU_REPLICAS_PER_SLOT = 4


@dataclass(frozen=True)
class Demand:
    """What one endpoint holds: `replicas` x `units` of `resource` (a GPU type, or cpu slots)."""

    region: str
    resource: str
    units: int  # per replica: GPUs, or 1 cpu replica share for a CPU-only replica
    replicas: int

    @property
    def total(self) -> int:
        return self.units * self.replicas


def demand_of(spec: EndpointSpec) -> Demand:
    """Minimum replicas of an enabled endpoint; a stopped endpoint holds nothing."""
    c = spec.compute
    replicas = spec.scaling.min_replicas if spec.enabled else 0
    if c.gpu_type == CPU or c.gpu_count == 0:
        return Demand(c.region, CPU, 1, replicas)
    return Demand(c.region, c.gpu_type, c.gpu_count, replicas)


def reservations(specs: Iterable[EndpointSpec], region: str) -> dict[str, int]:
    """Units reserved per resource in a region by these (other) endpoints."""
    out: dict[str, int] = {}
    for spec in specs:
        d = demand_of(spec)
        if d.region == region and d.total:
            out[d.resource] = out.get(d.resource, 0) + d.total
    return out


@dataclass(frozen=True)
class Verdict:
    ok: bool
    needed: int
    capacity: int | None  # None: the region does not count this resource (unlimited)
    reserved: int
    message: str

    @property
    def free(self) -> int | None:
        return None if self.capacity is None else max(0, self.capacity - self.reserved)


def check_reservation(demand: Demand, inventory: Mapping[str, int] | None, reserved: Mapping[str, int]) -> Verdict:
    """Can `demand` be reserved next to `reserved`, in a region with `inventory`?

    `inventory` None means the region does not count (e.g. an elastic cluster): always ok. A GPU
    type missing from a counted inventory has capacity 0; cpu slots missing are not counted.
    """
    held = reserved.get(demand.resource, 0)
    if demand.total == 0:
        return Verdict(True, 0, None, held, "nothing to reserve (min_replicas is 0 or the endpoint is stopped)")
    if inventory is None or (demand.resource == CPU and CPU not in inventory):
        return Verdict(True, demand.total, None, held, "region capacity is not counted")
    if demand.resource == CPU:
        capacity = inventory[CPU] * CPU_REPLICAS_PER_SLOT
        unit, size = "cpu replica", f"capacity {capacity} ({inventory[CPU]} cpu slots x {CPU_REPLICAS_PER_SLOT})"
    else:
        capacity = inventory.get(demand.resource, 0)
        unit, size = f"{demand.resource} GPU", f"capacity {capacity}"
    free = max(0, capacity - held)
    what = (
        f"{demand.replicas} min replica(s) x {demand.units} {unit}(s) = {demand.total} needed in region "
        f"{demand.region!r}; {size}, reserved by other endpoints {held}, free {free}"
    )
    if demand.total > free:
        return Verdict(False, demand.total, capacity, held, f"cannot reserve capacity: {what}")
    return Verdict(True, demand.total, capacity, held, f"reserved: {what}")


def require_capacity(demand: Demand, inventory: Mapping[str, int] | None, reserved: Mapping[str, int]) -> None:
    verdict = check_reservation(demand, inventory, reserved)
    if not verdict.ok:
        raise Conflict(
            verdict.message,
            {
                "field": "scaling.min_replicas",
                "message": verdict.message,
                "region": demand.region,
                "resource": demand.resource,
                "needed": verdict.needed,
                "capacity": verdict.capacity,
                "reserved": verdict.reserved,
                "free": verdict.free,
            },
        )
