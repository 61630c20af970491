"""The reconcile plan as a pure function of (endpoint, replicas, now).

Nothing here does I/O, so every rule — rolling updates, scale-down order, backoff, failure —
is tested as a table of inputs and expected actions (tests/controller/test_planner.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podium.core.states import ReplicaState


@dataclass(frozen=True)
class EndpointInput:
    endpoint_id: str
    enabled: bool
    deleting: bool
    target: int  # the autoscaler's desired count, already clamped to [min, max]
    generation: int  # current spec generation: replicas of older ones are rolled
    failed: bool  # too many failed starts: start nothing until the user changes something
    backoff_until: float  # no new start before this time (crash backoff)


@dataclass(frozen=True)
class ReplicaInput:
    replica_id: str
    state: ReplicaState
    generation: int
    created_at: float


@dataclass(frozen=True)
class Plan:
    start: int = 0  # how many new replicas to start now
    drain: tuple[str, ...] = ()  # replicas to take out of routing, drain, then stop
    delete_endpoint: bool = False  # deleting and nothing is left running
    waiting_for_backoff: bool = False  # wanted to start, but a crash backoff holds it
    reasons: list[str] = field(default_factory=list)


_SERVING = (ReplicaState.PENDING, ReplicaState.STARTING, ReplicaState.READY)


def plan(ep: EndpointInput, replicas: list[ReplicaInput], now: float) -> Plan:
    target = ep.target if ep.enabled and not ep.deleting else 0
    live = [r for r in replicas if r.state.is_live]
    if ep.deleting and not live:
        return Plan(delete_endpoint=True, reasons=["deleted: no replica left"])

    drain: list[str] = [r.replica_id for r in live if r.state == ReplicaState.UNHEALTHY]
    current = [r for r in live if r.state in _SERVING and r.generation == ep.generation]
    old = [r for r in live if r.state in _SERVING and r.generation != ep.generation]
    reasons: list[str] = []

    if len(current) > target:
        # Scale down: boot-in-progress replicas first (they serve nobody yet), then the newest.
        order = sorted(current, key=lambda r: (r.state == ReplicaState.READY, -r.created_at))
        excess = order[: len(current) - target]
        drain += [r.replica_id for r in excess]
        reasons.append(f"scale down {len(current)} -> {target}")
        current = [r for r in current if r not in excess]

    # Rolling update: old-generation replicas keep serving until enough new ones are ready.
    ready_now = sum(1 for r in current if r.state == ReplicaState.READY)
    for r in old:
        if target == 0 or ready_now >= target or r.state != ReplicaState.READY:
            drain.append(r.replica_id)
    if old:
        reasons.append(f"rolling {len(old)} replica(s) to generation {ep.generation}")

    missing = target - len(current)
    start, waiting = 0, False
    if missing > 0 and not ep.failed:
        if now >= ep.backoff_until:
            start = missing
            reasons.append(f"start {missing} to reach {target}")
        else:
            waiting = True
            reasons.append(f"restart backoff: {ep.backoff_until - now:.1f}s left")
    return Plan(start=start, drain=tuple(dict.fromkeys(drain)), waiting_for_backoff=waiting, reasons=reasons)


def backoff_delay(failures: int, base_s: float, max_s: float) -> float:
    """Exponential backoff after consecutive failures: base, 2*base, 4*base ... capped."""
    if failures <= 0:
        return 0.0
    return float(min(max_s, base_s * (2 ** (failures - 1))))
