"""The reservation rule as a table: min replicas x units must fit next to what others reserved."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.core.errors import Conflict
from podium.core.specs import EndpointSpec
from podium.services.capacity import (
    CPU_REPLICAS_PER_SLOT,
    Demand,
    check_reservation,
    demand_of,
    require_capacity,
    reservations,
)

INV = {"h100": 4, "cpu": 2}


@pytest.mark.parametrize(
    ("demand", "inventory", "reserved", "ok"),
    [
        (Demand("local", "h100", 1, 4), INV, {}, True),  # exactly fits
        (Demand("local", "h100", 1, 5), INV, {}, False),  # one too many
        (Demand("local", "h100", 2, 2), INV, {"h100": 1}, False),  # 4 needed, 3 free
        (Demand("local", "h100", 2, 1), INV, {"h100": 2}, True),  # 2 needed, 2 free
        (Demand("local", "h100", 8, 0), INV, {"h100": 4}, True),  # min 0: nothing reserved
        (Demand("local", "l40s", 1, 1), INV, {}, False),  # type absent from a counted region
        (Demand("local", "cpu", 1, 8), INV, {}, True),  # 2 slots x 4 cpu replicas each
        (Demand("local", "cpu", 1, 9), INV, {}, False),
        (Demand("local", "cpu", 1, 1), INV, {"cpu": 8}, False),
        (Demand("local", "cpu", 1, 50), {"h100": 1}, {}, True),  # cpu slots not counted there
        (Demand("local", "h100", 1, 99), None, {}, True),  # region not counted at all
        (Demand("local", "h100", 1, 1), INV, {"h100": 9}, False),  # over-reserved (inventory shrank)
    ],
)
def test_reservation_table(
    demand: Demand, inventory: dict[str, int] | None, reserved: dict[str, int], ok: bool
) -> None:
    assert check_reservation(demand, inventory, reserved).ok is ok


def test_refusal_names_the_numbers() -> None:
    with pytest.raises(Conflict) as err:
        require_capacity(Demand("local", "h100", 2, 2), INV, {"h100": 1})
    msg = err.value.message
    assert "4 needed" in msg and "capacity 4" in msg and "reserved by other endpoints 1" in msg and "free 3" in msg
    assert err.value.details[0]["free"] == 3


def _spec(**compute: object) -> EndpointSpec:
    scaling = compute.pop("scaling", {"min_replicas": 1, "max_replicas": 3})
    enabled = compute.pop("enabled", True)
    return EndpointSpec.model_validate(
        {"name": "x", "container": {"command": "c"}, "compute": compute, "scaling": scaling, "enabled": enabled}
    )


def test_demand_and_reservations_from_specs() -> None:
    specs = [
        _spec(gpu_type="h100", gpu_count=2, scaling={"min_replicas": 1, "max_replicas": 4}),
        _spec(gpu_type="h100", gpu_count=1, scaling={"min_replicas": 2, "max_replicas": 2}),
        _spec(gpu_type="h100", gpu_count=4, enabled=False),  # stopped: holds nothing
        _spec(gpu_type="cpu", scaling={"min_replicas": 0, "max_replicas": 3}),  # scale to zero: nothing
        _spec(gpu_type="cpu"),
        _spec(gpu_type="h100", gpu_count=1, region="other"),
    ]
    assert demand_of(specs[0]) == Demand("local", "h100", 2, 1)
    assert reservations(specs, "local") == {"h100": 4, "cpu": 1}
    assert reservations(specs, "other") == {"h100": 1}


@given(
    st.lists(st.tuples(st.sampled_from(["h100", "cpu", "l40s"]), st.integers(0, 4), st.integers(0, 3)), max_size=30),
    st.integers(0, 8),
    st.integers(0, 8),
)
@settings(max_examples=200, deadline=None)
def test_accepted_reservations_never_exceed_the_inventory(
    requests: list[tuple[str, int, int]], h100: int, cpu: int
) -> None:
    """Whatever arrives, in whatever order: what was accepted fits the inventory, per resource."""
    inventory = {"h100": h100, "cpu": cpu}
    limit = {"h100": h100, "cpu": cpu * CPU_REPLICAS_PER_SLOT}
    held: dict[str, int] = {}
    for resource, units, replicas in requests:
        demand = Demand("local", resource, max(units, 1) if resource == "cpu" else units, replicas)
        if check_reservation(demand, inventory, held).ok:
            held[resource] = held.get(resource, 0) + demand.total
    assert all(held.get(r, 0) <= limit.get(r, 0) for r in held)
